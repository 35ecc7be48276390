from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_training.__main__ import main
from model_training.compare import ReportError, comparison_table, load_report


def figures(f1: float, crop_recall: float) -> dict[str, object]:
    return {
        "f1": f1,
        "top1": 0.97,
        "threshold": 0.75,
        "per_modification": {"crop": {"top1": 1.0, "recall": crop_recall}},
    }


def write_report(path: Path, f1: float, crop_recall: float, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "seed": seed,
        "runs": 3,
        "queries": 1000,
        "holdout-photos": {"library": 100, "results": {"model": figures(f1, crop_recall)}},
    }
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def test_reports_are_shown_side_by_side_in_argument_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_report(tmp_path / "bundled" / "evaluation.json", 0.928, 0.96)
    other = write_report(tmp_path / "candidate.json", 0.923, 0.88)
    assert main(["compare", str(tmp_path / "bundled"), str(other)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "== holdout-photos =="
    assert lines[1].split() == ["metric", "bundled", "candidate"]
    assert next(line for line in lines if line.startswith("f1 ")).split() == [
        "f1",
        "0.9280",
        "0.9230",
    ]
    crop = next(line for line in lines if line.startswith("crop"))
    assert crop.split() == ["crop", "1.00", "/", "0.96", "1.00", "/", "0.88"]
    # A metric a report lacks is a dash, not a zero; a set no report has is left out.
    assert next(line for line in lines if line.startswith("micro_ap")).split()[1:] == ["-", "-"]
    assert "corpus-test" not in "\n".join(lines)


def test_reports_from_different_queries_are_flagged(tmp_path: Path) -> None:
    first = load_report(write_report(tmp_path / "a.json", 0.9, 0.9, seed=0))
    second = load_report(write_report(tmp_path / "b.json", 0.9, 0.9, seed=1))
    table = comparison_table([first, second])
    assert table.splitlines()[0] == "warning: different seed: a 0, b 1"
    assert "warning" not in comparison_table([first, first])


def test_unusable_reports_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ReportError, match="no such report"):
        load_report(tmp_path / "missing.json")
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json", encoding="utf-8")
    with pytest.raises(ReportError, match="not a readable evaluation report"):
        load_report(corrupt)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"seed": 0}), encoding="utf-8")
    with pytest.raises(ReportError, match="holds no model figures"):
        load_report(empty)
    assert main(["compare", str(corrupt)]) == 2
    assert "corrupt.json" in capsys.readouterr().out
