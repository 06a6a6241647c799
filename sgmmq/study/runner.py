"""Run a sweep: every run of a config, resumable, on a local process pool or on Ray.

    sgmmq bench studies/smoke.yml --out /tmp/smoke                 # all cores of this machine
    sgmmq bench studies/full.yml --out results/study --backend ray --address auto   # a Ray cluster

Layout of ``OUT``: ``runs/<id>.json`` (one per run, written atomically by the driver),
``models/<id>.zip`` (S-GMM-QF's final model, for the report's pictures), ``config.json`` (the
sweep as read) and ``commands.txt`` (every invocation).

Resuming: a run whose file (a :class:`sgmmq.study.record.RunRecord`) says ok with exactly this run's settings is skipped;
a missing, truncated, failed or differently-configured one is (re)done, and leftover ``*.tmp``
files of a killed sweep are removed. Results are written as runs finish, so a killed sweep loses
at most the runs in flight. A run that raises is recorded as failed, with its traceback, and the
sweep goes on.

Batched jobs: the unfinished seeds of an S-GMM-QF (task, config) whose options the batched trainer
follows (:func:`sgmmq.batched.check_supported`) train as one job, in one process (:func:`execute_seeds`),
and still write one run file (and model) per seed; ``--no-batch`` (config ``batch: false``) runs one
process per seed. A batched agent's randomness is its own (:func:`sgmmq.batched.agent_rng`), so its run
depends on its seed, not on the seeds trained with it (the record's ``batched.seeds``); a lone unfinished
seed of such a config is a batched job of one, so a seed redone on resume repeats its earlier score.

Workers train with one torch thread each (the models are small: one thread per run and one run
per core is the fastest use of a machine). Runs are seeded, and the worker (not the backend)
does all the work, so the local pool and Ray give the same results.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import platform
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

from sgmmq.files import write_bytes_atomic, write_json_atomic
from sgmmq.methods import SGMMQ_METHODS
from sgmmq.study import record
from sgmmq.study.config import Run, expand
from sgmmq.study.record import FAILED, OK, RunRecord

RUNS_DIR, MODELS_DIR = "runs", "models"


# --- one run (executed in a worker) --------------------------------------------------------------
def _eval_curve_callback(task: Any, run: Run, evaluate: Any, count_parameters: Any) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class EvalCurve(BaseCallback):
        """Every ``eval_every`` steps (and at step 0): deterministic episodes on the evaluation env."""

        def __init__(self) -> None:
            super().__init__()
            self.points: list[dict[str, Any]] = []
            self.seconds = 0.0
            self.next_eval = 0

        def record(self) -> None:
            start = time.perf_counter()
            returns = evaluate(self.model, task, run.seed, n_episodes=run.eval_episodes)
            point = {"step": int(self.model.num_timesteps), "score": float(returns.mean()),
                     "live_params": count_parameters(self.model)["inference"]}
            if hasattr(self.model, "live_components"):
                point["live_components"] = int(self.model.live_components)
            self.points.append(point)
            self.seconds += time.perf_counter() - start

        def _on_training_start(self) -> None:
            self.record()
            self.next_eval = run.eval_every

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_eval:
                if self.num_timesteps < run.steps:  # the final point is the final evaluation
                    self.record()
                self.next_eval += run.eval_every
            return True

    return EvalCurve()


def _build(run: Run, task: Any) -> tuple[Any, dict[str, Any]]:
    """The model (with a silent logger) and the hyperparameters it was built with."""
    from stable_baselines3.common.logger import Logger

    from sgmmq.methods import build

    return build(run.method, task, run.seed, run.budget_key, run.budget, run.overrides, steps=run.steps,
                 logger=Logger(folder=None, output_formats=[]), task_defaults=run.task_defaults)


def _finish(run: Run, task: Any, model: Any, curve: list[dict[str, Any]], train_seconds: float, curve_seconds: float,
            hyperparameters: dict[str, Any], **fields: Any) -> tuple[RunRecord, bytes | None]:
    """A trained model's final evaluation and its run record (and S-GMM-QF's saved model)."""
    from sgmmq.evaluation import count_parameters, evaluate, score_summary

    start = time.perf_counter()
    returns = evaluate(model, task, run.seed, n_episodes=run.final_eval_episodes)
    eval_s = time.perf_counter() - start
    params = count_parameters(model)
    scores = score_summary(task, returns)
    final_point = {"step": int(model.num_timesteps), "score": scores["score_mean"], "live_params": params["inference"]}
    result = RunRecord(
        status=OK, method=run.method, budget_key=run.budget_key, budget=run.budget, **_identity(run),
        n_timesteps=int(model.num_timesteps), **scores, params=params, curve=[*curve, final_point],
        train_seconds=train_seconds, eval_seconds=eval_s + curve_seconds, hyperparameters=hyperparameters, **fields,
    )
    model_zip = None
    if run.method in SGMMQ_METHODS:
        final_point["live_components"] = result.live_components = int(model.live_components)
        result.prune_events = [list(event) for event in model.prune_events]
        result.pool_events = [list(event) for event in model.pool_events]  # (step, born, moved, live)
        with tempfile.TemporaryDirectory() as folder:
            model.save(pathlib.Path(folder) / "model.zip")
            model_zip = (pathlib.Path(folder) / "model.zip").read_bytes()
        result.model = f"{MODELS_DIR}/{run.id}.zip"
    if hasattr(model, "masks"):
        result.sparsity = model.sparsity()
    return result, model_zip


def _identity(run: Run) -> dict[str, Any]:
    return dict(id=run.id, settings=run.settings(), task=run.task, label=run.label, config=run.config_name, seed=run.seed)


def _provenance() -> dict[str, Any]:
    return {"host": platform.node(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def execute(settings: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one run; never raises. ``{"result": RunRecord, "model_zip": bytes | None}``."""
    wall = time.perf_counter()
    run = Run(**settings)
    provenance = _provenance()
    try:
        import torch

        from sgmmq.envs.tasks import get_task
        from sgmmq.evaluation import count_parameters, evaluate
        from sgmmq.provenance import machine, versions

        torch.set_num_threads(1)
        provenance.update(versions=versions(), machine=machine())
        task = get_task(run.task)
        model, hyperparameters = _build(run, task)
        curve = _eval_curve_callback(task, run, evaluate, count_parameters)
        start = time.perf_counter()
        model.learn(total_timesteps=run.steps, callback=curve)
        learn_s = time.perf_counter() - start
        result, model_zip = _finish(run, task, model, curve.points, learn_s - curve.seconds,  # training only: not the curve's evaluations
                                    curve.seconds, hyperparameters)
        return {"result": dataclasses.replace(result, **provenance, wall_seconds=time.perf_counter() - wall), "model_zip": model_zip}
    except Exception:  # noqa: BLE001 -- a failing run is data: record it, let the sweep go on
        failed = RunRecord(status=FAILED, **_identity(run), error=traceback.format_exc(), **provenance,
                           wall_seconds=time.perf_counter() - wall)
        return {"result": failed, "model_zip": None}


def execute_seeds(settings: list[dict[str, Any]], compile: bool = False) -> list[dict[str, Any]]:
    """Train the seeds of one (task, config) as one batched job (:class:`sgmmq.batched.BatchedSGMMQ`) and
    evaluate each as :func:`execute` would; never raises. One outcome per seed, as :func:`execute` returns.

    Each run file is the one its single run would write (id, settings, curve every ``eval_every`` steps,
    final evaluation, model), evaluated from the agents written back as ``SGMMQ`` models. ``train_seconds``
    and ``wall_seconds`` are the job's divided by its seeds; ``batched`` records the seeds and the job's
    whole wall-clock (and ``compiled: true`` with ``compile``: the update through ``torch.compile``). A job
    that raises fails every one of its seeds, each with the traceback."""
    wall = time.perf_counter()
    runs = [Run(**item) for item in settings]
    first = runs[0]
    provenance = _provenance()
    try:
        import torch

        from sgmmq.batched import BatchedSGMMQ
        from sgmmq.envs.tasks import get_task
        from sgmmq.evaluation import count_parameters, evaluate
        from sgmmq.methods import sgmmq_hyperparameters
        from sgmmq.provenance import machine, versions
        from sgmmq.runs import with_task_gamma

        if any({**run.settings(), "seed": first.seed} != first.settings() for run in runs) or first.method not in SGMMQ_METHODS:
            raise ValueError("a batched job takes the seeds of one S-GMM-QF (task, config): runs that differ only by seed")
        torch.set_num_threads(1)
        provenance.update(versions=versions(), machine=machine())
        task = get_task(first.task)
        hyperparameters = sgmmq_hyperparameters(first.budget_key, first.budget, first.overrides, first.task, first.task_defaults)
        batched = BatchedSGMMQ(first.task, [run.seed for run in runs], continuous=first.method == "sgmmq_continuous", compile=compile,
                               **hyperparameters)
        curves: list[list[dict[str, Any]]] = [[] for _ in runs]
        curve_seconds = [0.0] * len(runs)

        def evaluate_all() -> None:
            """Every agent's curve point, from the agents written back (the single run's EvalCurve.record)."""
            start = time.perf_counter()
            models = batched.models()
            share = (time.perf_counter() - start) / len(runs)
            for i, (run, model) in enumerate(zip(runs, models)):
                start = time.perf_counter()
                returns = evaluate(model, task, run.seed, n_episodes=run.eval_episodes)
                curves[i].append({"step": int(batched.num_timesteps), "score": float(returns.mean()),
                                  "live_params": count_parameters(model)["inference"], "live_components": int(model.live_components)})
                curve_seconds[i] += time.perf_counter() - start + share

        next_eval = first.eval_every

        def on_step(job: BatchedSGMMQ) -> None:
            nonlocal next_eval
            if job.num_timesteps >= next_eval:
                if job.num_timesteps < first.steps:  # the final point is the final evaluation
                    evaluate_all()
                next_eval += first.eval_every

        evaluate_all()  # step 0
        before = sum(curve_seconds)
        start = time.perf_counter()
        batched.learn(first.steps, callback=on_step)
        train_s = time.perf_counter() - start - (sum(curve_seconds) - before)  # training only: not the curve's evaluations
        results = []
        for i, (run, model) in enumerate(zip(runs, batched.models())):
            results.append(_finish(run, task, model, curves[i], train_s / len(runs), curve_seconds[i], with_task_gamma(task, hyperparameters)))
        job_wall = time.perf_counter() - wall
        job_record = {"seeds": [run.seed for run in runs], "wall_seconds": job_wall, **({"compiled": True} if compile else {})}
        extra = dict(**provenance, wall_seconds=job_wall / len(runs), batched=job_record)
        return [{"result": dataclasses.replace(result, **extra), "model_zip": model_zip} for result, model_zip in results]
    except Exception:  # noqa: BLE001 -- as execute: every seed of the job is recorded failed, the sweep goes on
        error, job_wall = traceback.format_exc(), time.perf_counter() - wall
        return [{"result": RunRecord(status=FAILED, **_identity(run), error=error, **provenance, wall_seconds=job_wall / len(runs),
                                     batched={"seeds": [r.seed for r in runs], "wall_seconds": job_wall}),
                 "model_zip": None} for run in runs]


@dataclasses.dataclass
class Job:
    """What one worker process does: ``batched``: the seeds of one S-GMM-QF (task, config) with the batched
    trainer (one seed or more); otherwise one single run."""

    runs: list[Run]
    batched: bool = False
    compile: bool = False  # a batched job through torch.compile


def execute_job(settings: list[dict[str, Any]], batched: bool = False, compile: bool = False) -> list[dict[str, Any]]:
    """One task of the pool (or one Ray call): a single run, or the seeds of one batched job."""
    return execute_seeds(settings, compile) if batched else [execute(settings[0])]


def _init_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if platform.system() == "Linux":  # die with the driver, even when it is SIGKILLed
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    import torch

    torch.set_num_threads(1)


# --- the sweep (driver) -------------------------------------------------------------------------
def is_complete(out: pathlib.Path, run: Run) -> bool:
    """A finished run: its file reads, says ok, has this run's settings (and its model, if any)."""
    try:
        result = record.read(out / RUNS_DIR / f"{run.id}.json")
    except (OSError, ValueError):
        return False
    if not result.ok or result.settings != run.settings():
        return False
    return result.model is None or (out / result.model).exists()


def _save(out: pathlib.Path, outcome: dict[str, Any]) -> RunRecord:
    result = outcome["result"]
    if outcome.get("model_zip") is not None:  # the model first: a file that says ok has its model
        write_bytes_atomic(out / result.model, outcome["model_zip"])
    record.write(out / RUNS_DIR / f"{result.id}.json", result)
    return result


def _local(jobs: list[Job], workers: int) -> Iterator[dict[str, Any]]:
    """Outcomes as jobs finish, at most ``workers`` jobs in flight; a crashed worker fails only its runs.
    Interrupted (Ctrl-C, SIGTERM, or the consumer stops), it kills its workers rather than waiting
    for the runs in flight: they are redone on the next sweep."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    queue = list(jobs)
    context = multiprocessing.get_context("spawn")  # no inherited torch/thread state
    while queue:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker)
        in_flight: dict[Any, Job] = {}
        broken = False
        try:
            while (queue or in_flight) and not broken:
                while queue and len(in_flight) < workers:
                    job = queue.pop(0)
                    in_flight[pool.submit(execute_job, [run.settings() for run in job.runs], job.batched, job.compile)] = job
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    job = in_flight.pop(future)
                    try:
                        outcomes = future.result()
                    except BrokenProcessPool:
                        broken = True
                        outcomes = [_died(run, "the worker process died (killed, or out of memory) during this run") for run in job.runs]
                    yield from outcomes
            if broken:  # the pool is unusable: its other runs died with it; go on with a fresh pool
                for future, job in in_flight.items():
                    for run in job.runs:
                        yield _died(run, "its worker pool broke while it ran (another run's worker died)")
        except BaseException:
            for process in list((pool._processes or {}).values()):  # noqa: SLF001 -- no public way to stop a busy worker
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


def _died(run: Run, why: str) -> dict[str, Any]:
    return {"result": RunRecord(id=run.id, status=FAILED, settings=run.settings(), task=run.task, label=run.label,
                                config=run.config_name, seed=run.seed, error=why), "model_zip": None}


def _ray(jobs: list[Job], workers: int, address: str | None) -> Iterator[dict[str, Any]]:
    """Outcomes as Ray tasks finish (one remote call and one CPU per job). ``address``: an existing cluster
    ("auto", "ray://host:10001", ...); None uses the Ray instance this process already holds, or starts a
    local one with ``workers`` CPUs."""
    import ray

    started_here = False
    if address is not None:
        ray.init(address=address, log_to_driver=False)
        started_here = True
    elif not ray.is_initialized():
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started_here = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(execute_job)
        pending = {remote.remote([run.settings() for run in job.runs], job.batched, job.compile): job for job in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    outcomes = ray.get(ref)
                except Exception as error:  # noqa: BLE001 -- a dead worker or node
                    outcomes = [_died(run, f"Ray could not run it: {error!r}") for run in job.runs]
                yield from outcomes
    finally:
        if started_here:
            ray.shutdown()


def _batchable(run: Run) -> bool:
    """Whether the batched trainer follows this S-GMM-QF run's configuration (its model, built here, passes
    :func:`sgmmq.batched.check_supported`); a model that does not build runs singly and records why."""
    if run.method not in SGMMQ_METHODS:
        return False
    from stable_baselines3.common.logger import Logger

    from sgmmq.batched import check_supported
    from sgmmq.methods import build

    try:
        model, _ = build(run.method, run.task, run.seed, run.budget_key, run.budget, run.overrides,
                         logger=Logger(folder=None, output_formats=[]), task_defaults=run.task_defaults)
    except Exception:  # noqa: BLE001 -- the single run will record the error
        return False
    try:
        check_supported(model)
    except ValueError:
        return False
    finally:
        model.env.close()
    return True


def plan(todo: list[Run], batch: bool = True, compile: bool = False) -> list[Job]:
    """The jobs of a sweep: ``batch``: the unfinished seeds of each S-GMM-QF (task, config) the batched
    trainer supports as one batched job (a lone seed too: a redone seed trains as it did in its first
    batch; ``compile``: through torch.compile), every other run alone; in the order of ``todo`` (a group
    where its first seed is)."""
    jobs: list[list[Run]] = []
    groups: dict[str, list[Run]] = {}
    for run in todo:
        if not batch or run.method not in SGMMQ_METHODS:
            jobs.append([run])
            continue
        key = json.dumps({**run.settings(), "seed": None}, sort_keys=True)  # everything but the seed
        if key not in groups:
            groups[key] = []
            jobs.append(groups[key])
        groups[key].append(run)
    planned: list[Job] = []
    for job in jobs:
        if batch and _batchable(job[0]):
            planned.append(Job(job, batched=True, compile=compile))
        else:
            planned.extend(Job([run]) for run in job)
    return planned


def sweep(
    config: dict[str, Any],
    out: str | pathlib.Path,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
    batch: bool | None = None,
) -> dict[str, int]:
    """Run every unfinished run of ``config`` into ``out``; counts of skipped, ok and failed runs.
    ``batch``: S-GMM-QF's seeds as batched jobs (:func:`plan`); None: the config's ``batch`` (default true)."""
    from tqdm import tqdm

    out = pathlib.Path(out)
    (out / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    for leftover in [*(out / RUNS_DIR).glob("*.tmp"), *(out / MODELS_DIR).glob("*.tmp")]:
        leftover.unlink()  # half-written files of a killed sweep (hidden .NAME.PID.tmp, or mkstemp's of older versions)
    write_json_atomic(out / "config.json", config)
    runs = expand(config)
    todo = [run for run in runs if not is_complete(out, run)]
    jobs = plan(todo, config.get("batch", True) if batch is None else batch, config.get("compile", False))
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    counts = {"runs": len(runs), "skipped": len(runs) - len(todo), "ok": 0, "failed": 0}
    if not todo:
        return counts
    os.environ.setdefault("SB3_LOGDIR", tempfile.mkdtemp(prefix="sb3_"))
    if backend == "local":
        outcomes = _local(jobs, workers)
    elif backend == "ray":
        outcomes = _ray(jobs, workers, address)
    else:
        raise ValueError(f"unknown backend {backend!r}; use 'local' or 'ray'")
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:  # `kill` stops the sweep the way Ctrl-C does: workers killed, nothing half-written
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        desc = f"{config.get('name', 'sweep')} ({counts['skipped']} of {len(runs)} already done)"
        with tqdm(total=len(todo), desc=desc, unit="run", disable=not progress, smoothing=0.1) as bar:
            for outcome in outcomes:
                result = _save(out, outcome)
                counts[result.status] += 1
                if result.ok:
                    line = f"{result.id}: {result.score_mean:.1f}, {result.params['inference']:,} live params, {result.train_seconds:.0f} s"
                else:
                    line = f"{result.id}: FAILED ({result.error.strip().splitlines()[-1]})"
                bar.write(line)
                bar.update(1)
    finally:
        outcomes.close()  # an interrupted sweep stops its workers now
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return counts


def log_command(out: pathlib.Path, command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "commands.txt", "a") as log:
        log.write(f"{time.strftime('%Y-%m-%d %H:%M')} {command}\n")
