"""The README's table of options and defaults says what the code's signatures say."""

import ast
import inspect
import pathlib
import re

from stable_baselines3.common.utils import LinearSchedule

from sgmmq import SGMMQ, GMMPolicy, GMMQFunction

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _signature_defaults() -> dict:
    return {name: p.default for cls in (SGMMQ, GMMPolicy, GMMQFunction)
            for name, p in inspect.signature(cls.__init__).parameters.items() if p.default is not inspect.Parameter.empty}


def _table_rows() -> list[tuple[list[str], str]]:
    """(option names, default cell) of each row of the table under "| option | default | alternatives |"."""
    lines = README.read_text().splitlines()
    start = lines.index("| option | default | alternatives |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        option, default = (cell.strip() for cell in line.strip("|").split("|")[:2])
        names = ["optimizer_class"] if "optimizer_class" in option else re.findall(r"`(\w+)`", option)
        rows.append((names, default))
    return rows


def _leading_values(cell: str) -> list:
    """The value each comma-separated part of a default cell starts with (``1,000 updates`` -> 1000)."""
    parts = re.split(r",\s+(?![^(]*\))", cell)  # commas outside parentheses
    values = []
    for part in parts:
        token = re.match(r"\([^)]*\)|\S+", part.replace("`", "")).group(0)
        values.append(ast.literal_eval(token.replace(",", "") if not token.startswith("(") else token))
    return values


def test_every_default_in_the_readme_table_is_the_signatures() -> None:
    defaults = _signature_defaults()
    checked = set()
    for names, cell in _table_rows():
        if names == ["learning_rate"]:  # a schedule: "linear decay 1e-2 -> 1e-3"
            schedule = defaults["learning_rate"]
            assert isinstance(schedule, LinearSchedule) and (schedule.start, schedule.end) == (1e-2, 1e-3), schedule
            assert cell.startswith("linear decay 1e-2 -> 1e-3")
        elif names == ["optimizer_class"]:
            assert cell.startswith(f'`"{defaults["optimizer_class"]}"`')
        elif names:
            values = _leading_values(cell)
            assert len(values) == len(names), (names, cell)
            for name, value in zip(names, values):
                expected = defaults[name]
                assert value == (tuple(expected) if isinstance(expected, list) else expected), (name, value, expected)
        checked |= set(names)
    # the exploration row states the schedule in words: check its numbers too
    assert (defaults["exploration_initial_eps"], defaults["exploration_final_eps"], defaults["exploration_fraction"]) == (1.0, 0.02, 0.2)
    assert {"window_size", "batch_size", "target", "n_components", "pool", "loss", "n_steps", "std_bounds"} <= checked


def test_the_checker_reads_the_cells_it_is_given() -> None:
    assert _leading_values('0.5, (0.02, 5.0) in the scaled space') == [0.5, (0.02, 5.0)]
    assert _leading_values('1e-3, 1e-2, 1,000 updates, 3 checks') == [1e-3, 1e-2, 1000, 3]
    assert _leading_values('`"fixed"` (the papers\': it only shrinks)') == ["fixed"]
