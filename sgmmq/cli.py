"""The ``sgmmq`` command line: train, eval, render, inspect, export, tune, experiments (bench, report) and the RL Zoo launcher.

    sgmmq train CartPole-v1 --steps 50000 --seed 0 --out runs/cp
    sgmmq train CartPole-v1 --seeds 0-9 --out runs/cp10  (10 agents in one process: sgmmq.batched)
    sgmmq eval runs/cp/model.zip --episodes 20
    sgmmq render runs/cp/model.zip --out cartpole.gif
    sgmmq inspect runs/cp/model.zip
    sgmmq export runs/cp/model.zip --format onnx  (or npz: plain arrays for sgmmq.numpy_policy)
    sgmmq tune CartPole-v1 --trials 20 --steps 20000
    sgmmq zoo --env CartPole-v1 -n 50000          (rl_zoo3's trainer with --algo sgmmq)
    sgmmq bench studies/smoke.yml --out /tmp/smoke (a sweep; sgmmq.study)
    sgmmq report /tmp/smoke                       (its tables, plots and README.md)

Commands that open a model file never unpickle from it; --trust-file allows that for a file from a
source you trust (see README, Sharing models).

Bad input (an unknown task, a foreign or newer model file, a folder that already holds a run, an
unsupported space, a bad hyperparameter, a number out of range, a study config with a mistake, a
checkpoint whose parts do not belong together) prints one line ``error: <message>`` and exits 2;
docs/errors.md lists every case tried.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import sys
import time
from typing import Any

EXIT_USAGE = 2
TRUST_HELP = "allow unpickling from the model file (runs code it may carry): only for a file from a source you trust"


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one ``error:`` line (exit 2), like every other error of sgmmq."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _at_least(minimum: int) -> Any:
    """An argparse type: an int >= ``minimum`` (``--steps 0`` is a mistake, not "the default")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


POSITIVE, NATURAL = _at_least(1), _at_least(0)


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="sgmmq", description=__doc__, formatter_class=formatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str, example: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_, description=f"{help_}\n\nexample:\n  {example}", formatter_class=formatter)

    train = command("train", "Train S-GMM-QF on a task; save model, logs and checkpoints in a folder.",
                    "sgmmq train CartPole-v1 --steps 50000 --seed 0 --out runs/cp --set policy_kwargs.n_components=16")
    train.add_argument("task", nargs="?", help="task id (sgmmq.envs.TASKS, or any registered Gymnasium id); omit with --resume")
    train.add_argument("--steps", type=POSITIVE, default=None, help="environment steps (default: the task's budget)")
    train.add_argument("--seed", type=NATURAL, default=None, help="random seed (default 0)")
    train.add_argument("--seeds", default=None, metavar="SEEDS",
                       help="train one agent per seed, all in lockstep in this process (sgmmq.batched), e.g. 0-9 or 0,3,5-7; "
                            "--out then holds one run folder per seed, TASK-sSEED (default --out: runs)")
    train.add_argument("--compile", action="store_true",
                       help="with --seeds: the batched update through torch.compile (compiles at the first update, then faster steps)")
    train.add_argument("--out", type=pathlib.Path, default=None, help="output folder (default: runs/TASK-sSEED)")
    train.add_argument("--config", default=None, help="JSON/YAML file of hyperparameters (e.g. written by sgmmq tune)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="hyperparameter override, repeatable; dotted keys reach policy_kwargs")
    train.add_argument("--continuous", action="store_true",
                       help="Box-action tasks (Pendulum-v1, ...): act on the native continuous actions, not the declared bins")
    train.add_argument("--checkpoint-every", type=POSITIVE, default=None, help="steps between checkpoints (default 10000)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run checkpointed in --out, with the settings in its run.json")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--eval-episodes", type=POSITIVE, default=None, help="deterministic evaluation episodes (default: the task's)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--stop-after", type=POSITIVE, default=None, help=argparse.SUPPRESS)  # simulates an interruption (tests)

    evaluate = command("eval", "Evaluate a saved model: mean and std of the return over deterministic episodes.",
                       "sgmmq eval runs/cp/model.zip --episodes 20")
    evaluate.add_argument("model")
    evaluate.add_argument("--episodes", type=POSITIVE, default=None, help="default: the task's evaluation episodes")
    evaluate.add_argument("--seed", type=NATURAL, default=0)
    evaluate.add_argument("--task", default=None, help="task id, if the model does not record one")
    evaluate.add_argument("--trust-file", action="store_true", help=TRUST_HELP)

    render = command("render", "Render one deterministic episode of a saved model to a GIF (or MP4), headless.",
                     "sgmmq render runs/cp/model.zip --out cartpole.gif")
    render.add_argument("model")
    render.add_argument("--out", type=pathlib.Path, default=None, help="a .gif or .mp4 path (default: next to the model)")
    render.add_argument("--seed", type=NATURAL, default=0)
    render.add_argument("--fps", type=POSITIVE, default=30)
    render.add_argument("--max-frames", type=POSITIVE, default=1000)
    render.add_argument("--task", default=None, help="task id, if the model does not record one")
    render.add_argument("--trust-file", action="store_true", help=TRUST_HELP)

    inspect = command("inspect", "Show a saved model's live Gaussians (weights, means, std devs) and draw them to a PNG.",
                      "sgmmq inspect runs/cp/model.zip --png cp.png")
    inspect.add_argument("model")
    inspect.add_argument("--png", type=pathlib.Path, default=None, help="picture path (default: MODEL_gaussians.png)")
    inspect.add_argument("--visited", type=NATURAL, default=0, metavar="EPISODES",
                         help="roll the greedy policy out for EPISODES episodes, draw the states it visits under the Gaussians "
                              "and print how far each Gaussian sits from them (default 0: off)")
    inspect.add_argument("--seed", type=NATURAL, default=0, help="seed of the --visited episodes")
    inspect.add_argument("--task", default=None, help="task id, if the model does not record one (for --visited)")
    inspect.add_argument("--trust-file", action="store_true", help=TRUST_HELP)

    export = command("export", "Export a saved model's greedy policy to ONNX or to plain numpy arrays (sgmmq.numpy_policy).",
                     "sgmmq export runs/cp/model.zip --format onnx --out cp.onnx")
    export.add_argument("model")
    export.add_argument("--format", choices=("onnx", "npz"), required=True)
    export.add_argument("--out", type=pathlib.Path, default=None, help="output path (default: the model's path with .onnx/.npz)")
    export.add_argument("--trust-file", action="store_true", help=TRUST_HELP)

    tune = command("tune", "Search S-GMM-QF hyperparameters with Optuna; write the best as a config for train --config.",
                   "sgmmq tune CartPole-v1 --trials 30 --steps 20000 --seeds 2 --out tune/cp")
    tune.add_argument("task")
    tune.add_argument("--trials", type=POSITIVE, default=20, help="trials this invocation adds to the study")
    tune.add_argument("--steps", type=POSITIVE, default=None, help="steps per training run (default: the task's budget)")
    tune.add_argument("--seeds", type=POSITIVE, default=2, help="training seeds per trial (scores are averaged)")
    tune.add_argument("--eval-episodes", type=POSITIVE, default=5)
    tune.add_argument("--out", type=pathlib.Path, default=None, help="folder for the journal and best.json (default: tune/TASK)")
    tune.add_argument("--storage", default=None, help="Optuna storage URL (e.g. postgresql://...) for trials on several machines; "
                      "default: a journal file in --out")
    tune.add_argument("--study", default=None, help="study name (default: sgmmq-TASK)")
    tune.add_argument("--timeout", type=_positive_float, default=None, help="stop after this many seconds")
    tune.add_argument("--sampler-seed", type=NATURAL, default=None,
                      help="seed of the sampler, offset by the trials already in the study so that a continued study "
                           "draws new points (default: fresh randomness)")
    tune.add_argument("--continuous", action="store_true", help="Box-action tasks: tune on the native continuous actions")

    bench = command("bench", "Run an experiment (tasks x methods x budgets x seeds) from a config file under studies/; resumable.",
                    "sgmmq bench studies/smoke.yml --out /tmp/smoke --workers 2   (then: sgmmq report /tmp/smoke)")
    bench.add_argument("config", type=pathlib.Path, help="sweep config (.yml/.yaml/.json/.toml), see sgmmq.study.config")
    bench.add_argument("--out", type=pathlib.Path, required=True, help="results folder (runs/<id>.json, models/<id>.zip)")
    bench.add_argument("--backend", choices=("local", "ray"), default="local",
                       help="local: a process pool on this machine (default); ray: Ray tasks")
    bench.add_argument("--workers", type=POSITIVE, default=None, help="runs in parallel (default: all cores; ray: local instance CPUs)")
    bench.add_argument("--address", default=None, help="Ray cluster address (e.g. auto, ray://head:10001); default: a local Ray instance")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.add_argument("--no-batch", action="store_true",
                       help="one process per S-GMM-QF seed (default: a (task, config)'s seeds train as one batched job; config key batch)")

    report = command("report", "Turn a sweep's results folder into tables (IQM with 95-percent intervals), plots and its README.md.",
                     "sgmmq report /tmp/smoke      (writes /tmp/smoke/README.md and its PNGs)")
    report.add_argument("results", type=pathlib.Path)
    report.add_argument("--reps", type=POSITIVE, default=2000, help="bootstrap resamples for tables (default 2000)")
    report.add_argument("--curve-reps", type=POSITIVE, default=500, help="bootstrap resamples for learning curves (default 500)")
    report.add_argument("--readme", type=pathlib.Path, default=None,
                        help="write the README here instead of RESULTS/README.md (e.g. results/README.md); PNGs stay in RESULTS")
    report.add_argument("--summary", type=pathlib.Path, default=None,
                        help="also rewrite the block between the summary markers of this file (e.g. README.md) "
                             "with the per-task verdicts and compute ratios; nothing else in it changes")
    report.add_argument("--trust-file", action="store_true", help=TRUST_HELP)
    command("zoo", "Run rl_zoo3's trainer with SGMMQ registered (arguments go to the Zoo; --algo sgmmq is implied);\n"
            "sgmmq zoo enjoy ... runs the Zoo's enjoy on a trained model (add --trust-file to allow unpickling).",
            "sgmmq zoo --env CartPole-v1 -n 50000 --seed 0 -f logs   (then: sgmmq zoo enjoy --env CartPole-v1 -f logs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["zoo"] and not {"-h", "--help"} & set(argv[1:2]):
        from sgmmq import zoo

        return zoo.main(argv[1:])
    args = _parser().parse_args(argv)
    args.argv = argv  # for the commands that record how they were called
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import torch

    torch.set_num_threads(1)  # small models: one thread is faster and immune to a busy neighbour
    try:
        return {"train": cmd_train, "eval": cmd_eval, "render": cmd_render, "inspect": cmd_inspect, "export": cmd_export, "tune": cmd_tune,
                "bench": cmd_bench, "report": cmd_report}[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


# --- commands ---------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from sgmmq import files, runs

    if args.seeds is not None:
        return _train_seeds(args)
    if args.compile:
        raise ValueError("--compile is for --seeds (the batched trainer); a single agent trains without it")
    if args.resume:
        out, task, run, model, curve = _resume(args)
    else:
        if not args.task:
            raise ValueError("give a task, e.g. sgmmq train CartPole-v1 (or --resume --out FOLDER)")
        task = runs.resolve_task(args.task)
        seed = 0 if args.seed is None else args.seed
        out = args.out or pathlib.Path("runs") / f"{task.env_id}-s{seed}"
        if runs.holds_run(out) and not args.overwrite:
            raise FileExistsError(f"{out} already holds a run; pass --overwrite to replace it or --resume to continue it")
        hyperparameters = runs.read_config(args.config) if args.config else {}
        hyperparameters = runs.merge(hyperparameters, runs.parse_overrides(args.overrides))
        model = runs.build_model(task, seed, hyperparameters, continuous=args.continuous)
        if args.overwrite:
            _clear_run(out)
        out.mkdir(parents=True, exist_ok=True)
        run = {"task": task.env_id, "steps": task.budget if args.steps is None else args.steps, "seed": seed,
               "checkpoint_every": args.checkpoint_every or 10_000, "hyperparameters": hyperparameters,
               **({"continuous": True} if args.continuous else {})}
        files.write_json_atomic(out / runs.RUN_FILE, run, indent=2)
        curve = []
    finished = runs.train_run(model, out, run["steps"], run["checkpoint_every"], curve,
                              stop_after=args.stop_after, progress_bar=not args.no_progress, run=run)
    if not finished:
        print(f"stopped at step {model.num_timesteps:,}; continue with: sgmmq train --resume --out {out}")
        return 0
    with files.atomic_path(out / runs.MODEL_FILE) as tmp:
        model.save(tmp)
    run["final_evaluation"] = _print_score(model, task, run["seed"], args.eval_episodes)
    files.write_json_atomic(out / runs.RUN_FILE, run, indent=2)
    print(f"live components: {model.live_components}, parameters: {model.num_parameters():,}")
    print(f"saved to {out / runs.MODEL_FILE} (logs: {out / 'logs'}, curve: {out / runs.CURVE_FILE})")
    return 0


def _train_seeds(args: argparse.Namespace) -> int:
    """``sgmmq train TASK --seeds 0-9``: one batched job, then one run folder per seed as ``sgmmq train`` writes it."""
    from sgmmq import batched, files, runs

    for given, option in ((args.seed is not None, "--seed"), (args.resume, "--resume"), (args.checkpoint_every is not None, "--checkpoint-every"), (args.stop_after is not None, "--stop-after")):
        if given:
            raise ValueError(f"--seeds trains the seeds in one batched job, which does not take {option} (yet); "
                             "train those seeds one at a time with --seed")
    if not args.task:
        raise ValueError("give a task, e.g. sgmmq train CartPole-v1 --seeds 0-9")
    seeds = batched.parse_seeds(args.seeds)
    task = runs.resolve_task(args.task)
    out = args.out or pathlib.Path("runs")
    folders = {seed: out / f"{task.env_id}-s{seed}" for seed in seeds}
    taken = [str(folder) for folder in folders.values() if runs.holds_run(folder)]
    if taken and not args.overwrite:
        raise FileExistsError(f"{', '.join(taken)} already hold{'s' if len(taken) == 1 else ''} a run; pass --overwrite to replace")
    hyperparameters = runs.read_config(args.config) if args.config else {}
    hyperparameters = runs.merge(hyperparameters, runs.parse_overrides(args.overrides))
    steps = task.budget if args.steps is None else args.steps
    trainer = batched.BatchedSGMMQ(task.env_id, seeds, continuous=args.continuous, compile=args.compile, **hyperparameters)
    for folder in folders.values():
        if args.overwrite:
            _clear_run(folder)
        folder.mkdir(parents=True, exist_ok=True)
    records = {seed: {"task": task.env_id, "steps": steps, "seed": seed, "checkpoint_every": steps, "hyperparameters": hyperparameters,
                      "batched": {"seeds": seeds, "command": "sgmmq " + shlex.join(args.argv)},
                      **({"continuous": True} if args.continuous else {})} for seed in seeds}
    for seed, folder in folders.items():
        files.write_json_atomic(folder / runs.RUN_FILE, records[seed], indent=2)
    start = time.perf_counter()
    trainer.learn(steps, progress_bar=not args.no_progress)
    seconds = time.perf_counter() - start
    print(f"trained {len(seeds)} seeds x {steps:,} steps in {seconds:.1f} s ({len(seeds) * steps / seconds:,.0f} environment steps/s in all)")
    for seed, model, curve in zip(seeds, trainer.models(), trainer.curves):
        folder = folders[seed]
        with files.atomic_path(folder / runs.MODEL_FILE) as tmp:
            model.save(tmp)
        runs.write_curve(folder / runs.CURVE_FILE, curve)
        records[seed]["batched"]["wall_clock_s"] = round(seconds, 3)
        print(f"seed {seed}: live components {model.live_components}, parameters {model.num_parameters():,}; ", end="")
        records[seed]["final_evaluation"] = _print_score(model, task, seed, args.eval_episodes)
        files.write_json_atomic(folder / runs.RUN_FILE, records[seed], indent=2)
    print(f"saved to {out}/{task.env_id}-s{{{','.join(map(str, seeds))}}}/{runs.MODEL_FILE}")
    return 0


def _resume(args: argparse.Namespace) -> tuple[pathlib.Path, Any, dict[str, Any], Any, list]:
    """The run in ``--out`` at its last checkpoint; options that would change the run are refused."""
    from sgmmq import runs

    if args.out is None and not args.task:
        raise ValueError("--resume needs the run's folder: sgmmq train --resume --out FOLDER")
    out = args.out or pathlib.Path("runs") / f"{args.task}-s{0 if args.seed is None else args.seed}"
    if not (out / runs.RUN_FILE).exists():
        raise FileNotFoundError(f"No run to resume in {out} (give the run's folder with --out)")
    if args.overwrite:
        raise ValueError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    if args.config or args.overrides:
        raise ValueError("--resume continues with the run's recorded hyperparameters: --config and --set cannot change them")
    try:
        run = json.loads((out / runs.RUN_FILE).read_text())
        recorded = {"task": str(run["task"]), "steps": int(run["steps"]), "seed": int(run["seed"]),
                    "checkpoint_every": int(run["checkpoint_every"])}
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{out / runs.RUN_FILE} is not a readable run record ({error!r})") from None
    if "batched" in run:
        raise ValueError(f"{out} was trained by sgmmq train --seeds (one batched job), which writes no checkpoints: "
                         "it cannot be resumed (start it again with --overwrite)")
    given = {"task": args.task, "steps": args.steps, "seed": args.seed, "checkpoint_every": args.checkpoint_every}
    for key, value in given.items():
        if value is not None and value != recorded[key]:
            option = key if key == "task" else "--" + key.replace("_", "-")
            raise ValueError(f"--resume continues the run as recorded in {out / runs.RUN_FILE} ({key} {recorded[key]}); "
                             f"{option} {value} would make it another run (start one with a new --out)")
    if args.continuous and not run.get("continuous"):
        raise ValueError(f"--resume continues the run as recorded in {out / runs.RUN_FILE} (discrete actions); "
                         "--continuous would make it another run (start one with a new --out)")
    task = runs.resolve_task(run["task"])
    try:
        model, curve, exact = runs.load_checkpoint(out / runs.CHECKPOINT_DIR, task, run["seed"], run)
    except FileNotFoundError:
        raise FileNotFoundError(f"{out} has no checkpoint yet: the run was stopped before its first one (step "
                                f"{min(recorded['checkpoint_every'], recorded['steps']):,}); start it again with --overwrite") from None
    print(f"resuming {out} at step {model.num_timesteps:,} of {run['steps']:,}"
          + ("" if exact else " (env state not picklable: continuing from a fresh episode, not bit-identical)"))
    return out, task, run, model, curve


def cmd_eval(args: argparse.Namespace) -> int:
    model, task = _load(args.model, args.task, trusted=args.trust_file)
    _print_score(model, task, args.seed, args.episodes)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    import imageio.v2 as imageio

    from sgmmq.envs.factory import is_continuous, make_env

    model, task = _load(args.model, args.task, trusted=args.trust_file)
    out = args.out or pathlib.Path(args.model).with_suffix(".gif")
    if out.suffix not in (".gif", ".mp4"):
        raise ValueError(f"render writes .gif or .mp4, got {out}")
    if out.suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise ValueError("writing MP4 needs imageio-ffmpeg (pip install imageio-ffmpeg); or write a .gif") from None
    continuous = task.has_continuous_form and is_continuous(model.action_space)
    env = make_env(task, seed=args.seed, render_mode="rgb_array", continuous=continuous)
    obs, _ = env.reset(seed=args.seed)
    frames, total, done = [env.render()], 0.0, False
    while not done and len(frames) < args.max_frames:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
        frames.append(env.render())
    env.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".gif":
        imageio.mimsave(out, frames, duration=1000 / args.fps, loop=0)
    else:
        imageio.mimsave(out, frames, fps=args.fps)
    print(f"{task.env_id}: one episode, return {total:.1f}, {len(frames)} frames -> {out}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from sgmmq import inspection

    model, task = _load(args.model, args.task, need_task=args.visited > 0, trusted=args.trust_file)
    png = args.png or pathlib.Path(args.model).with_name(pathlib.Path(args.model).stem + "_gaussians.png")
    inspection.print_table(model, task)
    states = None
    if args.visited:
        states = inspection.visited_states(model, task, episodes=args.visited, seed=args.seed)
        distances = inspection.coverage(model, states)
        near = sum(distance <= 2.0 for distance in distances)
        print(f"visited: {len(states):,} states in {args.visited} greedy episodes (seed {args.seed})")
        print(f"{near} of {len(distances)} components within 2 std of a visited state (Mahalanobis distance of each state "
              f"mean to its nearest visited state, under its state marginal, largest |xi| first: "
              f"{' '.join(f'{distance:.2f}' for distance in distances)})")
    inspection.draw(model, png, f"{task.env_id if task else pathlib.Path(args.model).name}, {model.num_parameters():,} parameters",
                    states=states)
    print(f"picture: {png}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sgmmq.export import export

    out = export(args.model, args.format, args.out, trusted=args.trust_file)
    print(f"exported the greedy policy of {args.model} -> {out} ({out.stat().st_size:,} bytes)")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from sgmmq import runs, tuning

    task = runs.resolve_task(args.task)
    out = args.out or pathlib.Path("tune") / task.env_id
    best = tuning.tune(task, out, n_trials=args.trials, steps=task.budget if args.steps is None else args.steps,
                       n_seeds=args.seeds, eval_episodes=args.eval_episodes, storage=args.storage, study_name=args.study,
                       timeout=args.timeout, sampler_seed=args.sampler_seed,
                       continuous=args.continuous)
    added = best["added"]
    print(f"this invocation added {len(added)} trial(s): {', '.join(f'{n} ({state})' for n, state in added) or 'none'}; "
          f"the study holds {best['n_trials']}")
    print(f"best normalized score {best['score']:.3f} (trial {best['trial']}); config: {best['config']}")
    print(f"train with it: sgmmq train {task.env_id} --config {best['config']}" + (" --continuous" if args.continuous else ""))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from sgmmq.study import config, runner

    sweep = config.read(args.config)
    runner.log_command(args.out, "sgmmq " + shlex.join(args.argv))
    try:
        counts = runner.sweep(sweep, args.out, backend=args.backend, workers=args.workers, address=args.address,
                              progress=not args.no_progress, batch=False if args.no_batch else None)
    except KeyboardInterrupt:
        print(f"interrupted: finished runs are saved in {args.out}; rerun the same command to resume", file=sys.stderr)
        return 130
    print(f"{counts['runs']} runs: {counts['skipped']} already done, {counts['ok']} finished now, {counts['failed']} failed"
          f" -> {args.out}" + (f"; report: sgmmq report {args.out}" if counts["ok"] or counts["skipped"] else ""))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sgmmq.study import report

    readme = report.report(args.results, reps=args.reps, curve_reps=args.curve_reps, readme=args.readme,
                           command="sgmmq " + shlex.join(args.argv), summary=args.summary, trusted=args.trust_file)
    print(f"wrote {readme} and {len(list(args.results.glob('*.png')))} PNGs in {args.results}"
          + (f"; updated the summary in {args.summary}" if args.summary else ""))
    return 0


# --- helpers ----------------------------------------------------------------------------------
def _load(path: str, task_id: str | None, need_task: bool = True, trusted: bool = False) -> tuple[Any, Any]:
    from sgmmq import SGMMQ, runs

    model = SGMMQ.load(path, trusted=trusted)
    task_id = task_id or getattr(model, "task_id", None)
    if task_id is None and need_task:
        raise ValueError(f"{path} does not record its task; pass --task")
    return model, runs.resolve_task(task_id) if task_id else None


def _print_score(model: Any, task: Any, seed: int, episodes: int | None) -> dict[str, Any]:
    """Print the final evaluation and return it as ``run.json`` records it (``final_evaluation``)."""
    from sgmmq.evaluation import evaluate

    returns = evaluate(model, task, seed, n_episodes=episodes)
    print(f"{task.env_id}: score {returns.mean():.1f} +- {returns.std():.1f} over {len(returns)} deterministic episodes")
    return {"score_mean": float(returns.mean()), "score_std": float(returns.std()), "episode_returns": [float(r) for r in returns],
            "live_components": int(model.live_components), "parameters": int(model.num_parameters())}


def _clear_run(out: pathlib.Path) -> None:
    import shutil

    from sgmmq import runs

    for name in (runs.RUN_FILE, runs.MODEL_FILE, runs.CURVE_FILE):
        (out / name).unlink(missing_ok=True)
    for name in (runs.CHECKPOINT_DIR, "logs"):
        shutil.rmtree(out / name, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
