"""The run record: one typed format, versioned, written and read by sgmmq.study.record."""

import json
import pathlib

import pytest

from sgmmq.study import record
from sgmmq.study.record import FORMAT_VERSION, RunRecord

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_a_record_round_trips_and_carries_its_format_version(tmp_path: pathlib.Path) -> None:
    run = RunRecord(id="T__sgmmq__k4__s0", status="ok", settings={"seed": 0}, task="T", label="sgmmq", config="sgmmq k4",
                    seed=0, method="sgmmq", budget_key="n_components", budget=4, score_mean=1.5, params={"inference": 3},
                    curve=[{"step": 0, "score": 1.0, "live_params": 3}], extra={"note": "kept"})
    record.write(tmp_path / "r.json", run)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["format_version"] == FORMAT_VERSION and data["note"] == "kept"
    assert "model" not in data and "error" not in data  # fields a run does not have are not written
    assert record.read(tmp_path / "r.json") == run


def test_files_written_before_the_version_read_as_version_0() -> None:
    path = ROOT / "results/study/runs/CartPole-v1__dqn_zoo__w256x256__s0.json"  # a baseline run, written before the version field
    if not path.exists():
        pytest.skip("the committed study is not in this checkout")
    data = json.loads(path.read_text())
    assert "format_version" not in data
    run = record.read(path)
    assert run.format_version == 0 and run.ok and run.score_mean == data["score_mean"] and run.model == data.get("model")
    assert run.to_json() == {**data, "format_version": 0}  # nothing lost, nothing added but the version


def test_a_newer_format_or_a_non_record_is_refused_in_one_line(tmp_path: pathlib.Path) -> None:
    (tmp_path / "new.json").write_text(json.dumps({"id": "x", "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ValueError, match=f"has run-record format {FORMAT_VERSION + 1}; this sgmmq reads formats up to"):
        record.read(tmp_path / "new.json")
    (tmp_path / "bad.json").write_text(json.dumps({"id": "x"}))
    with pytest.raises(ValueError, match="is not a run record"):
        record.read(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match="not a JSON object"):
        record.read(tmp_path / "list.json")
