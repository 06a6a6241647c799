"""sgmmq.files: complete-or-absent writes with ordinary permissions, for every file a user relies on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sgmmq import files


@pytest.fixture()
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_files_get_ordinary_permissions_not_mkstemps_0600(tmp_path: Path, umask_022: None) -> None:
    from sgmmq.study import record, runner

    files.write_json_atomic(tmp_path / "a.json", {"x": 1})
    result = record.RunRecord(id="r", status="ok", settings={}, task="T", label="m", config="m default", seed=0,
                              model="models/r.zip")
    runner._save(tmp_path, {"result": result, "model_zip": b"zip"})  # noqa: SLF001 -- the sweep's writer
    for path in (tmp_path / "a.json", tmp_path / "runs" / "r.json", tmp_path / "models" / "r.zip"):
        assert path.stat().st_mode & 0o777 == 0o644, path
    assert record.read(tmp_path / "runs" / "r.json") == result


def test_a_failed_write_leaves_the_old_file_and_no_leftover(tmp_path: Path) -> None:
    path = tmp_path / "model.zip"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), files.atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.zip"]


def test_leftovers_of_a_killed_writer_are_removed_by_the_next_write(tmp_path: Path) -> None:
    leftover = tmp_path / ".curve.csv.12345.tmp"
    leftover.write_text("half")
    files.write_text_atomic(tmp_path / "curve.csv", "step,return\n")
    assert not leftover.exists() and (tmp_path / "curve.csv").read_text() == "step,return\n"


def test_figures_are_written_atomically_in_their_format(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    files.save_figure(fig, tmp_path / "f.png")
    plt.close(fig)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and len(list(tmp_path.iterdir())) == 1
