"""Every bad input in docs/errors.md gets its one ``error:`` line and exit 2, and nothing is written.

The commands run in this process through ``sgmmq.cli.main`` (the entry point's function), so that
the whole table costs seconds; ``RUN`` stands for a finished run's folder and ``DIR`` for a folder
of prepared files. Each command must appear verbatim in docs/errors.md.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from sgmmq import cli

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
BASE = {"tasks": ["CartPole-v1"], "steps": 300, "methods": [{"method": "sgmmq", "n_components": [4]}]}
STUDIES = {  # DIR/<name>.yml: BASE with one mistake
    "method-typo": {**BASE, "methods": [{"method": "dqn_zooo", "net_arch": [[8]]}]},
    "sgmmq-typo": {**BASE, "methods": [{"method": "sgmmqq", "n_components": [4]}]},
    "key-typo": {**BASE, "methods": [{"method": "sgmmq", "overrides": {"gama": 0.9}}]},
    "dqn-key-typo": {**BASE, "methods": [{"method": "dqn_zoo", "overrides": {"learning_rat": 1e-3}}]},
    "policy-key-typo": {**BASE, "methods": [{"method": "sgmmq", "overrides": {"policy_kwargs": {"n_component": 8}}}]},
    "wrong-type": {**BASE, "methods": [{"method": "sgmmq", "overrides": {"batch_size": "32"}}]},
    "negative-steps": {**BASE, "steps": -5},
    "zero-seeds": {**BASE, "seeds": 0},
    "per-task-typo": {**BASE, "steps": {"CartPol-v1": 100}},
    "budget-type": {**BASE, "methods": [{"method": "sgmmq", "n_components": ["8"]}]},
    "sparse-no-budget": {**BASE, "methods": [{"method": "dqn_rigl"}]},
    "ars-key-typo": {**BASE, "methods": [{"method": "ars_linear", "overrides": {"n_deltas": 2}}]},
    "ars-linear-width": {**BASE, "methods": [{"method": "ars_linear", "net_arch": [[16]]}]},
    "stray-task": {**BASE, "methods": [{"method": "sgmmq", "tasks": ["Acrobot-v1"]}]},
    "unknown-key": {**BASE, "typo": 1},
    "unknown-task": {**BASE, "tasks": ["Foo-v0"]},
    "not-a-mapping": ["CartPole-v1"],
}
CASES = [
    # train: numbers
    ("sgmmq train CartPole-v1 --steps 0", "argument --steps: must be >= 1, got 0"),
    ("sgmmq train CartPole-v1 --steps -5", "argument --steps: must be >= 1, got -5"),
    ("sgmmq train CartPole-v1 --steps abc", "argument --steps: expected an integer, got 'abc'"),
    ("sgmmq train CartPole-v1 --checkpoint-every 0", "argument --checkpoint-every: must be >= 1, got 0"),
    ("sgmmq train CartPole-v1 --checkpoint-every -100", "argument --checkpoint-every: must be >= 1, got -100"),
    ("sgmmq train CartPole-v1 --eval-episodes 0", "argument --eval-episodes: must be >= 1, got 0"),
    ("sgmmq train CartPole-v1 --seed -1", "argument --seed: must be >= 0, got -1"),
    # train: hyperparameters and configs
    ("sgmmq train CartPole-v1 --out DIR/x --set gamma=abc", "gamma must be a number in [0.0, 1.0], got gamma='abc'"),
    ("sgmmq train CartPole-v1 --out DIR/x --set \"learning_rate='0.01'\"", "learning_rate must be a number > 0 or a schedule"),
    ("sgmmq train CartPole-v1 --out DIR/x --set batch_size=0", "batch_size must be an integer >= 1, got batch_size=0"),
    ("sgmmq train CartPole-v1 --out DIR/x --set gama=0.9", "unexpected keyword argument 'gama'"),
    ("sgmmq train CartPole-v1 --out DIR/x --set batch_size", "--set needs key=value"),
    ("sgmmq train CartPole-v1 --out DIR/x --config DIR/broken.yml", "DIR/broken.yml is not valid YAML"),
    ("sgmmq train CartPole-v1 --out DIR/x --config DIR/missing.yml", "No config file at DIR/missing.yml"),
    ("sgmmq train CartPole-v1 --out DIR/x --config DIR/not-a-mapping.yml", "must hold a mapping of hyperparameters"),
    ("sgmmq train NoSuchTask-v0 --out DIR/x", "Unknown task"),
    ("sgmmq train CartPole-v1 --continuous --out DIR/x", "no continuous form"),
    ("sgmmq train CartPole-v1 --out RUN", "already holds a run; pass --overwrite"),
    ("sgmmq train", "give a task"),
    # train --seeds (sgmmq.batched)
    ("sgmmq train CartPole-v1 --seeds 3-1 --out DIR/x", "--seeds range '3-1' runs backwards"),
    ("sgmmq train CartPole-v1 --seeds 0,0 --out DIR/x", "seeds must be distinct"),
    ("sgmmq train CartPole-v1 --seeds x --out DIR/x", "--seeds takes integers and ranges"),
    ("sgmmq train CartPole-v1 --seeds 0-1 --seed 2 --out DIR/x", "does not take --seed"),
    ("sgmmq train CartPole-v1 --seeds 0-1 --out DIR/x --set pool=adaptive", "pool='adaptive' is not supported by the batched trainer yet"),
    ("sgmmq train NoSuchTask-v0 --seeds 0-1 --out DIR/x", "Unknown task"),
    # train --resume
    ("sgmmq train --resume", "--resume needs the run's folder"),
    ("sgmmq train --resume --out DIR/nothing", "No run to resume in DIR/nothing"),
    ("sgmmq train --resume --out RUN --steps 1000", "--steps 1000 would make it another run"),
    ("sgmmq train Acrobot-v1 --resume --out RUN", "task Acrobot-v1 would make it another run"),
    ("sgmmq train --resume --out RUN --seed 3", "--seed 3 would make it another run"),
    ("sgmmq train --resume --out RUN --checkpoint-every 50", "--checkpoint-every 50 would make it another run"),
    ("sgmmq train --resume --out RUN --set gamma=0.9", "--config and --set cannot change them"),
    ("sgmmq train --resume --out RUN --overwrite", "--overwrite replaces it: give one of them"),
    ("sgmmq train --resume --out DIR/no-checkpoint", "has no checkpoint yet: the run was stopped before its first one"),
    ("sgmmq train --resume --out DIR/tampered", "does not match the hash in the manifest"),
    ("sgmmq train --resume --out DIR/legacy", "has no manifest.json"),
    ("sgmmq train --resume --out DIR/other-run", "was written for another run"),
    # eval, render, inspect
    ("sgmmq eval RUN/model.zip --episodes 0", "argument --episodes: must be >= 1, got 0"),
    ("sgmmq eval DIR/missing.zip", "No saved model at DIR/missing.zip"),
    ("sgmmq eval DIR/junk.zip", "not an SB3/SGMMQ save file"),
    ("sgmmq render RUN/model.zip --fps 0", "argument --fps: must be >= 1, got 0"),
    ("sgmmq render RUN/model.zip --out DIR/e.png", "render writes .gif or .mp4"),
    ("sgmmq inspect RUN/model.zip --visited -1", "argument --visited: must be >= 0, got -1"),
    ("sgmmq inspect RUN/model.zip --visited many", "argument --visited: expected an integer, got 'many'"),
    # tune
    ("sgmmq tune CartPole-v1 --trials 0", "argument --trials: must be >= 1, got 0"),
    ("sgmmq tune CartPole-v1 --seeds 0", "argument --seeds: must be >= 1, got 0"),
    ("sgmmq tune CartPole-v1 --steps -5", "argument --steps: must be >= 1, got -5"),
    ("sgmmq tune CartPole-v1 --timeout 0", "argument --timeout: must be > 0, got 0"),
    ("sgmmq tune NoSuchTask-v0", "Unknown task"),
    # bench and report
    ("sgmmq bench DIR/broken.yml --out DIR/o", "DIR/broken.yml is not valid YAML"),
    ("sgmmq bench DIR/missing.yml --out DIR/o", "DIR/missing.yml: no such config file"),
    ("sgmmq bench DIR/method-typo.yml --out DIR/o", "methods[0].method: unknown method 'dqn_zooo' (did you mean 'dqn_zoo'?)"),
    ("sgmmq bench DIR/sgmmq-typo.yml --out DIR/o", "unknown method 'sgmmqq' (did you mean 'sgmmq'?)"),
    ("sgmmq bench DIR/key-typo.yml --out DIR/o", "methods[0].overrides: 'gama' is not a hyperparameter of sgmmq (did you mean 'gamma'?)"),
    ("sgmmq bench DIR/dqn-key-typo.yml --out DIR/o", "'learning_rat' is not a hyperparameter of dqn_zoo (did you mean 'learning_rate'?)"),
    ("sgmmq bench DIR/policy-key-typo.yml --out DIR/o", "'n_component' is not an argument of GMMPolicy (did you mean 'n_components'?)"),
    ("sgmmq bench DIR/wrong-type.yml --out DIR/o", "methods[0].overrides: batch_size must be an integer >= 1, got batch_size='32'"),
    ("sgmmq bench DIR/negative-steps.yml --out DIR/o", "steps must be an integer >= 1 or null, got -5"),
    ("sgmmq bench DIR/zero-seeds.yml --out DIR/o", "seeds must be a count >= 1 or a list of distinct seeds >= 0 or null, got 0"),
    ("sgmmq bench DIR/per-task-typo.yml --out DIR/o", "steps.CartPol-v1: 'CartPol-v1' is not one of this config's tasks"),
    ("sgmmq bench DIR/budget-type.yml --out DIR/o", "methods[0].n_components must be a non-empty list of integers >= 1"),
    ("sgmmq bench DIR/sparse-no-budget.yml --out DIR/o", "dqn_rigl needs live_budget"),
    ("sgmmq bench DIR/ars-key-typo.yml --out DIR/o", "'n_deltas' is not a hyperparameter of ars_linear (did you mean 'n_delta'?)"),
    ("sgmmq bench DIR/ars-linear-width.yml --out DIR/o", "ars_linear is a linear policy of one size (obs_dim x n_actions)"),
    ("sgmmq bench DIR/stray-task.yml --out DIR/o", "methods[0].tasks: ['Acrobot-v1'] not among this config's tasks"),
    ("sgmmq bench DIR/unknown-key.yml --out DIR/o", "unknown keys ['typo']"),
    ("sgmmq bench DIR/unknown-task.yml --out DIR/o", "Unknown task"),
    ("sgmmq bench DIR/not-a-mapping.yml --out DIR/o", "expected a mapping at the top level"),
    ("sgmmq bench DIR/smoke.yml --out DIR/o --workers 0", "argument --workers: must be >= 1, got 0"),
    ("sgmmq report DIR/o --reps 0", "argument --reps: must be >= 1, got 0"),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    run = folder / "run"
    assert cli.main(["train", "CartPole-v1", "--out", str(run), "--steps", "300", "--checkpoint-every", "300",
                     "--eval-episodes", "1", "--no-progress", "--set", "learning_starts=100",
                     "--set", "policy_kwargs.n_components=4"]) == 0
    for name, study in STUDIES.items():
        (folder / f"{name}.yml").write_text(yaml.safe_dump(study))
    (folder / "broken.yml").write_text("tasks: [CartPole-v1\nmethods: x\n")
    (folder / "junk.zip").write_bytes(b"not a zip")
    (folder / "no-checkpoint").mkdir()
    shutil.copy(run / "run.json", folder / "no-checkpoint" / "run.json")
    shutil.copytree(run, folder / "tampered")
    manifest = json.loads((run / "checkpoint" / "manifest.json").read_text())
    buffer = folder / "tampered" / "checkpoint" / manifest["folder"] / "replay_buffer.pkl"
    buffer.write_bytes(buffer.read_bytes()[:-10])
    (folder / "legacy" / "checkpoint").mkdir(parents=True)
    shutil.copy(run / "run.json", folder / "legacy" / "run.json")
    for name in ("model.zip", "replay_buffer.pkl", "state.pkl"):
        shutil.copy(run / "checkpoint" / manifest["folder"] / name, folder / "legacy" / "checkpoint" / name)
    shutil.copytree(run, folder / "other-run")
    other = json.loads((run / "run.json").read_text())
    (folder / "other-run" / "run.json").write_text(json.dumps({**other, "hyperparameters": {"gamma": 0.5}}))
    return {"RUN": run, "DIR": folder}


def resolve(text: str, places: dict[str, Path]) -> str:
    for token, path in places.items():
        text = text.replace(token, str(path))
    return text


@pytest.mark.parametrize("command, message", CASES, ids=[c for c, _ in CASES])
def test_bad_input_gets_one_error_line_and_exit_2(command: str, message: str, places: dict[str, Path],
                                                  capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from sgmmq import batched, runs

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{command} was accepted and started training")

    monkeypatch.setattr(runs, "train_run", no_training)
    monkeypatch.setattr(batched.BatchedSGMMQ, "learn", no_training)
    before = sorted(p.relative_to(places["DIR"]) for p in places["DIR"].rglob("*"))
    try:
        code = cli.main(shlex.split(resolve(command, places))[1:])
    except SystemExit as exit_:  # argparse's errors
        code = exit_.code
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert resolve(message, places) in lines[0]
    assert sorted(p.relative_to(places["DIR"]) for p in places["DIR"].rglob("*")) == before  # nothing written


def test_every_case_is_in_the_table_of_docs_errors_md() -> None:
    table = DOC.read_text()
    missing = [command for command, _ in CASES if f"`{command}`" not in table]
    assert not missing, f"add these to {DOC}: {missing}"
