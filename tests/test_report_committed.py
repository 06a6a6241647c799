"""The report regenerates the committed study's README byte for byte (the refactoring guard)."""

import pathlib
import shutil

import pytest

from sgmmq.study import report

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
COMMAND = "sgmmq report results/study --readme results/README.md --summary README.md"


@pytest.mark.skipif(not (RESULTS / "study" / "runs").is_dir(), reason="the committed study is not in this checkout")
def test_the_committed_study_reports_exactly_the_committed_readme(tmp_path: pathlib.Path) -> None:
    """``results/README.md`` and the summary block of ``README.md`` are what the report writes from
    ``results/study`` today: tables, verdicts and links unchanged (the PNGs go to the copy)."""
    results = tmp_path / "results"
    shutil.copytree(RESULTS / "study", results / "study", ignore=shutil.ignore_patterns("*.png"))
    for other in RESULTS.iterdir():  # the folders the README lists beside the study
        if other.name != "study" and (other / "README.md").is_file():
            (results / other.name).mkdir()
            shutil.copy(other / "README.md", results / other.name / "README.md")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    report.report(results / "study", readme=results / "README.md", command=COMMAND, summary=tmp_path / "README.md")
    assert (results / "README.md").read_text() == (RESULTS / "README.md").read_text()
    assert (tmp_path / "README.md").read_text() == (ROOT / "README.md").read_text()
