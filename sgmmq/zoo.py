"""Train SGMMQ with the RL Zoo's own trainer (rl_zoo3), as the Zoo's guide does for SBX.

    python -m sgmmq.zoo --algo sgmmq --env CartPole-v1 -n 50000 --seed 0 -f logs
    sgmmq zoo --env CartPole-v1                      (same; --algo sgmmq is implied)
    python -m sgmmq.zoo enjoy --env CartPole-v1 -f logs --no-render   (rl_zoo3.enjoy on the trained model)

Registers :class:`sgmmq.SGMMQ` as ``"sgmmq"`` in ``rl_zoo3.ALGOS`` before the Zoo parses its
arguments, and points ``--conf-file`` at ``sgmmq/hyperparams/sgmmq.yml`` (the suite's tasks, the
continuous ones with their action discretization; with ``--continuous``, ``sgmmq_continuous.yml``:
their native Box actions) unless one is given. Everything else (evaluation callback, saving under
``-f``, ``--n-timesteps``, Optuna) is the Zoo's. ``enjoy`` runs the Zoo's ``rl_zoo3.enjoy`` the same
way; it opens the model with the safe loader (``--trust-file`` allows unpickling, see README,
Sharing models). The Zoo itself still reads the run folder's ``args.yml`` and ``config.yml`` with its
own (unsafe) YAML loader: share model files, not Zoo log folders.
"""

from __future__ import annotations

import pathlib
import sys

HYPERPARAMS = pathlib.Path(__file__).with_name("hyperparams") / "sgmmq.yml"
CONTINUOUS_HYPERPARAMS = HYPERPARAMS.with_name("sgmmq_continuous.yml")


def register(trusted: bool = False) -> None:
    """Make ``--algo sgmmq`` known to every rl_zoo3 module that keeps its own ALGOS reference."""
    import rl_zoo3
    import rl_zoo3.enjoy
    import rl_zoo3.exp_manager
    import rl_zoo3.train

    from sgmmq import SGMMQ

    rl_zoo3.ALGOS["sgmmq"] = _trusting(SGMMQ) if trusted else SGMMQ
    for module in (rl_zoo3.train, rl_zoo3.exp_manager, rl_zoo3.enjoy):
        module.ALGOS = rl_zoo3.ALGOS


def _trusting(base: type) -> type:
    """SGMMQ whose ``load`` unpickles (``--trust-file``): the Zoo calls ``load`` without our keyword."""

    class TrustedSGMMQ(base):  # type: ignore[misc, valid-type]
        @classmethod
        def load(cls, *args, **kwargs):  # type: ignore[override]
            return base.load(*args, trusted=True, **kwargs)

    return TrustedSGMMQ


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    enjoy = argv[:1] == ["enjoy"]
    trusted = "--trust-file" in argv
    argv = [a for a in argv[1 if enjoy else 0:] if a != "--trust-file"]
    try:
        register(trusted)
    except ImportError as error:
        print(f"error: the RL Zoo is not installed ({error}); pip install rl_zoo3", file=sys.stderr)
        return 2
    continuous = "--continuous" in argv
    argv = [a for a in argv if a != "--continuous"]
    if "--algo" not in argv:
        argv = ["--algo", "sgmmq", *argv]
    if enjoy:
        from rl_zoo3.enjoy import enjoy as zoo_enjoy

        sys.argv = ["rl_zoo3.enjoy", *argv]
        try:
            zoo_enjoy()
        except (ValueError, FileNotFoundError) as error:  # an unsafe or unreadable model file: one line
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    if "-conf" not in argv and "--conf-file" not in argv and argv[argv.index("--algo") + 1] == "sgmmq":
        argv += ["--conf-file", str(CONTINUOUS_HYPERPARAMS if continuous else HYPERPARAMS)]
    from rl_zoo3.train import train

    sys.argv = ["rl_zoo3.train", *argv]
    train()
    return 0


if __name__ == "__main__":
    sys.exit(main())
