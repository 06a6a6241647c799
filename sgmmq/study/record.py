"""The run record: what one run of a sweep wrote, typed, written and read only here.

``runs/<id>.json`` is :meth:`RunRecord.to_json` of the record the worker returned. Files carry a
``format_version``; files written before it existed (no version) hold the same fields and read as
version 0. Fields this version does not know (e.g. ``converted_from`` and ``legacy`` of converted
legacy runs) are kept in ``extra`` and written back unchanged. Optional fields added later without a
version bump (``batched``) are absent from older files and read as None; an older sgmmq keeps them in ``extra``. A file of a newer format is refused
with a one-line error rather than misread.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from dataclasses import dataclass, field
from typing import Any

from sgmmq.files import write_json_atomic

FORMAT_VERSION = 1
OK, FAILED = "ok", "failed"


@dataclass
class RunRecord:
    """One run: its identity and settings, and (``status == "ok"``) the numbers it measured, or
    (``"failed"``) the error. Optional fields that a run does not have stay None and are not written
    (but a finished run always writes its ``budget_key`` and ``budget``, null for the default size)."""

    id: str
    status: str  # OK or FAILED
    settings: dict[str, Any]  # the Run's settings, exactly: a rerun skips a run whose settings match
    task: str
    label: str
    config: str  # "<label> <budget tag>": the (method, budget) this run is a seed of
    seed: int
    method: str | None = None
    budget_key: str | None = None
    budget: Any = None
    n_timesteps: int | None = None
    score_mean: float | None = None
    score_std: float | None = None
    normalized_score: float | None = None
    success: bool | None = None
    episode_returns: list[float] | None = None
    params: dict[str, int] | None = None  # sgmmq.evaluation.count_parameters
    curve: list[dict[str, Any]] | None = None  # {"step", "score", "live_params"[, "live_components"]} per evaluation
    train_seconds: float | None = None
    eval_seconds: float | None = None
    hyperparameters: dict[str, Any] | None = None
    live_components: int | None = None  # S-GMM-QF only
    prune_events: list[list[int]] | None = None
    pool_events: list[list[int]] | None = None
    model: str | None = None  # S-GMM-QF's saved model, relative to the results folder
    sparsity: float | None = None  # sparse DQN only
    error: str | None = None  # failed runs: the traceback or why the worker died
    host: str | None = None
    pid: int | None = None
    started: str | None = None
    versions: str | None = None
    machine: str | None = None
    wall_seconds: float | None = None
    # a seed of a batched job (sgmmq.batched): {"seeds": the job's seeds, "wall_seconds": the whole job's};
    # train_seconds and wall_seconds are then the job's divided by its number of seeds
    batched: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("extra", "format_version")}
        kept = ("budget_key", "budget") if self.ok else ()  # a finished run says it has no budget (null): the default size
        data = {key: value for key, value in data.items() if value is not None or key in kept}
        return {**data, **self.extra, "format_version": self.format_version}

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "run record") -> RunRecord:
        version = data.get("format_version", 0)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(f"{where} has run-record format {version!r}; this sgmmq reads formats up to {FORMAT_VERSION}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra", "format_version"}
        try:
            return cls(**{k: v for k, v in data.items() if k in known},
                       extra={k: v for k, v in data.items() if k not in known and k != "format_version"},
                       format_version=version)
        except TypeError as error:  # a required field missing
            raise ValueError(f"{where} is not a run record ({error})") from None


def write(path: str | pathlib.Path, record: RunRecord) -> None:
    """The record as JSON, atomically (a killed sweep leaves the old file or the new one)."""
    write_json_atomic(path, record.to_json())


def read(path: str | pathlib.Path) -> RunRecord:
    """A run file as a record; OSError or ValueError (unreadable, truncated, not a record, newer format)."""
    path = pathlib.Path(path)
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a run record (not a JSON object)")
    return RunRecord.from_json(data, str(path))
