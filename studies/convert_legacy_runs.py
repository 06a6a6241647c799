"""Run once: the retired runners' results as the study engine's run files (nothing re-run).

    python studies/convert_legacy_runs.py

``python -m sgmmq.benchmark --ablation`` (results/ablation/per_run) and
``python -m sgmmq.baselines.benchmark_cartpole`` (results/baselines_cartpole/per_run) wrote one JSON
per run in their own formats. Each becomes ``runs/<id>.json`` of ``studies/ablation.yml`` /
``studies/cartpole_baselines.yml``, with the settings that config plans (so ``sgmmq bench`` skips
it), the final evaluation's numbers as measured, ``hyperparameters`` as the engine records them
(S-GMM-QF: checked against the legacy record's; baselines: rebuilt by ``sgmmq.methods.build`` and
checked against the legacy spec), a one-point curve (the final evaluation: the old runners recorded
no curve), and the legacy record itself under ``legacy``. The ablation's defaults were the runs of
``results/agent``, which reappear with the same scores in ``results/study``: those run files (and
models) are copied. The legacy folders are then removed.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys

from sgmmq.envs import get_task
from sgmmq.files import write_json_atomic
from sgmmq.runs import with_task_gamma
from sgmmq.study import config as study_config
from sgmmq.study.runner import log_command

ROOT = pathlib.Path(__file__).resolve().parents[1]
VERSIONS = "stable-baselines3 2.9.2, gymnasium 1.4.0, torch 2.13.0+cpu, geoopt 0.5.1, numpy 2.4.6"  # the legacy READMEs'
MACHINE = "Linux-6.18.44-fc-v669-x86_64-with-glibc2.36, AMD EPYC, 2 logical cores, Python 3.11.7"
CONVERTER = "python studies/convert_legacy_runs.py"
SCORES = ("score_mean", "score_std", "normalized_score", "success", "episode_returns")


def _record(run: study_config.Run, old: dict, source: pathlib.Path, command: str, hyperparameters: dict) -> dict:
    if old["n_timesteps"] != run.steps or old["seed"] != run.seed or old["env_id"] != run.task:
        raise ValueError(f"{source} is not run {run.id}")
    final = {"step": old["n_timesteps"], "score": old["score_mean"], "live_params": old["params"]["inference"]}
    record = {"id": run.id, "status": "ok", "settings": run.settings(), "task": run.task, "method": run.method,
              "label": run.label, "config": run.config_name, "budget_key": run.budget_key, "budget": run.budget,
              "seed": run.seed, "n_timesteps": old["n_timesteps"], **{key: old[key] for key in SCORES},
              "params": old["params"], "curve": [final], "train_seconds": old["train_seconds"],
              "hyperparameters": hyperparameters}
    if "eval_seconds" in old:
        record["eval_seconds"] = old["eval_seconds"]
    if "live_components" in old:
        final["live_components"] = record["live_components"] = old["live_components"]
        record["prune_events"] = old["prune_events"]
    if "sparsity" in old:
        record["sparsity"] = old["sparsity"]
    record.update(versions=VERSIONS, machine=MACHINE,
                  converted_from={"file": str(source.relative_to(ROOT)), "command": command, "converter": CONVERTER},
                  legacy=old)
    return record


def ablation() -> None:
    out, legacy = ROOT / "results/ablation", ROOT / "results/ablation/per_run"
    study = ROOT / "results/study"
    for run in study_config.expand(study_config.read(ROOT / "studies/ablation.yml")):
        if run.label == "sgmmq":  # the defaults: the study's run file and model, same settings and id
            record = json.loads((study / "runs" / f"{run.id}.json").read_text())
            if record["settings"] != run.settings():
                raise ValueError(f"results/study's {run.id} has other settings than studies/ablation.yml plans")
            (out / "models").mkdir(parents=True, exist_ok=True)
            shutil.copy(study / record["model"], out / record["model"])
        else:
            source = legacy / f"{run.label}_s{run.seed}.json"
            old = json.loads(source.read_text())
            hyperparameters = with_task_gamma(get_task(run.task), json.loads(json.dumps(run.overrides)))
            if {k: repr(v) for k, v in hyperparameters.items()} != old["hyperparameters"]:
                raise ValueError(f"{source} was run with {old['hyperparameters']}, not {run.label}'s overrides")
            hyperparameters.setdefault("policy_kwargs", {})["n_components"] = run.budget  # 32, the default it ran with
            record = _record(run, old, source, "python -m sgmmq.benchmark --ablation", hyperparameters)
        write_json_atomic(out / "runs" / f"{run.id}.json", record)
    shutil.rmtree(legacy)


def _legacy_id(run: study_config.Run) -> str:  # the retired benchmark_cartpole.run_id
    parts = [run.method]
    if run.budget_key == "net_arch":
        parts.append("w" + "x".join(map(str, run.budget)))
    if run.budget_key == "live_budget":
        parts.append(f"live{run.budget}")
    return "_".join([*parts, f"s{run.seed}"])


def baselines() -> None:
    from sgmmq.methods import build

    out = ROOT / "results/baselines_cartpole"
    command = "python -m sgmmq.baselines.benchmark_cartpole --seeds 0 1 2 --budgets 250 500 1000"
    for run in study_config.expand(study_config.read(ROOT / "studies/cartpole_baselines.yml")):
        source = out / "per_run" / f"{_legacy_id(run)}.json"
        old = json.loads(source.read_text())
        _, spec = build(run.method, run.task, run.seed, run.budget_key, run.budget, run.overrides, steps=run.steps)
        if spec["algo_kwargs"] != old["spec"]["algo_kwargs"] | {"n_timesteps": run.steps}:
            raise ValueError(f"{source}: the engine builds {run.id} with other hyperparameters than the legacy run had")
        write_json_atomic(out / "runs" / f"{run.id}.json", _record(run, old, source, command, spec))
    shutil.rmtree(out / "per_run")


def main() -> None:
    for folder, config, legacy_command, convert in (
        ("results/ablation", "studies/ablation.yml", "python -m sgmmq.benchmark --ablation", ablation),
        ("results/baselines_cartpole", "studies/cartpole_baselines.yml",
         "python -m sgmmq.baselines.benchmark_cartpole --seeds 0 1 2 --budgets 250 500 1000", baselines),
    ):
        out = ROOT / folder
        convert()
        write_json_atomic(out / "config.json", study_config.read(ROOT / config))
        (out / "commands.txt").write_text(f"2026-11-27 (legacy) {legacy_command}\n")
        log_command(out, CONVERTER + "  (the legacy run files converted, nothing re-run)")
        print(f"{folder}: {len(list((out / 'runs').glob('*.json')))} run files")


if __name__ == "__main__":
    sys.exit(main())
