"""Train SGMMQ with the RL Zoo's own trainer (rl_zoo3), as the Zoo's guide does for SBX.

    python -m sgmmq.zoo --algo sgmmq --env CartPole-v1 -n 50000 --seed 0 -f logs
    sgmmq zoo --env CartPole-v1                      (same; --algo sgmmq is implied)

Registers :class:`sgmmq.SGMMQ` as ``"sgmmq"`` in ``rl_zoo3.ALGOS`` before the Zoo parses its
arguments, and points ``--conf-file`` at ``sgmmq/hyperparams/sgmmq.yml`` (the suite's tasks, the
continuous ones with their action discretization; with ``--continuous``, ``sgmmq_continuous.yml``:
their native Box actions) unless one is given. Everything else (evaluation callback, saving under
``-f``, ``--n-timesteps``, Optuna) is the Zoo's.
"""

from __future__ import annotations

import pathlib
import sys

HYPERPARAMS = pathlib.Path(__file__).with_name("hyperparams") / "sgmmq.yml"
CONTINUOUS_HYPERPARAMS = HYPERPARAMS.with_name("sgmmq_continuous.yml")


def register() -> None:
    """Make ``--algo sgmmq`` known to every rl_zoo3 module that keeps its own ALGOS reference."""
    import rl_zoo3
    import rl_zoo3.exp_manager
    import rl_zoo3.train

    from sgmmq import SGMMQ

    rl_zoo3.ALGOS["sgmmq"] = SGMMQ
    rl_zoo3.train.ALGOS = rl_zoo3.ALGOS
    rl_zoo3.exp_manager.ALGOS = rl_zoo3.ALGOS


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        register()
    except ImportError as error:
        print(f"error: the RL Zoo is not installed ({error}); pip install rl_zoo3", file=sys.stderr)
        return 2
    continuous = "--continuous" in argv
    argv = [a for a in argv if a != "--continuous"]
    if "--algo" not in argv:
        argv = ["--algo", "sgmmq", *argv]
    if "-conf" not in argv and "--conf-file" not in argv and argv[argv.index("--algo") + 1] == "sgmmq":
        argv += ["--conf-file", str(CONTINUOUS_HYPERPARAMS if continuous else HYPERPARAMS)]
    from rl_zoo3.train import train

    sys.argv = ["rl_zoo3.train", *argv]
    train()
    return 0


if __name__ == "__main__":
    sys.exit(main())
