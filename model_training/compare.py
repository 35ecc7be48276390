"""``python -m model_training compare A B ...``: saved evaluation reports side by side.

Each argument is a model folder (its ``evaluation.json``, as ``export`` writes it) or a report
file. The model's figures of every report are printed in one table per set, so a candidate can
be judged against the bundled model without embedding anything again. Reports are only
comparable when they were made from the same seed, runs and query count; a mismatch is named.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPORT_FILE = "evaluation.json"
SETS = ("holdout-photos", "corpus-test")
METRICS = (
    "precision",
    "recall",
    "f1",
    "balanced_f1",
    "top1",
    "top5",
    "micro_ap",
    "published_f1",
    "published_balanced_f1",
    "published_top5",
    "threshold",
)
PROTOCOL_KEYS = ("seed", "runs", "queries")


class ReportError(ValueError):
    """A report that cannot be read or holds no model figures."""


@dataclass(frozen=True)
class Report:
    label: str
    raw: dict[str, Any]

    def model(self, set_name: str) -> dict[str, Any] | None:
        found = self.raw.get(set_name, {}).get("results", {}).get("model")
        return found if isinstance(found, dict) else None


def load_report(path: Path) -> Report:
    """The report at ``path`` (a file, or a folder holding ``evaluation.json``)."""
    file = path / REPORT_FILE if path.is_dir() else path
    label = file.parent.name if file.name == REPORT_FILE else file.stem
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{file}: no such report") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{file}: not a readable evaluation report ({exc})") from None
    if not isinstance(raw, dict) or not any(
        Report(label, raw).model(name) is not None for name in SETS
    ):
        raise ReportError(f"{file}: holds no model figures for {' or '.join(SETS)}")
    return Report(label, raw)


def protocol_mismatches(reports: list[Report]) -> list[str]:
    """One line per protocol key whose value differs between the reports."""
    lines = []
    for key in PROTOCOL_KEYS:
        values = [r.raw.get(key) for r in reports]
        if len(set(map(repr, values))) > 1:
            shown = ", ".join(f"{r.label} {v}" for r, v in zip(reports, values, strict=True))
            lines.append(f"different {key}: {shown}")
    return lines


def _cell(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def comparison_table(reports: list[Report]) -> str:
    """The side-by-side text: per set, the metrics, then top-1 / strict recall per modification."""
    width = max(14, *(len(r.label) + 2 for r in reports))
    out: list[str] = [f"warning: {line}" for line in protocol_mismatches(reports)]
    for set_name in SETS:
        models = [r.model(set_name) for r in reports]
        if all(m is None for m in models):
            continue
        out.append(f"== {set_name} ==")
        out.append("metric".ljust(24) + "".join(r.label.rjust(width) for r in reports))
        for metric in METRICS:
            cells = [_cell(m.get(metric)) if m else "-" for m in models]
            out.append(metric.ljust(24) + "".join(c.rjust(width) for c in cells))
        tables = [m.get("per_modification", {}) if m else {} for m in models]
        names = sorted(set().union(*tables))
        if names:
            out.append("per modification: top-1 / strict recall")
        for name in names:
            cells = []
            for table in tables:
                row = table.get(name)
                cells.append(f"{row['top1']:.2f} / {row['recall']:.2f}" if row else "-")
            out.append(name.ljust(24) + "".join(c.rjust(width) for c in cells))
        out.append("")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    try:
        reports = [load_report(Path(p)) for p in args.reports]
    except ReportError as exc:
        print(f"error: {exc}")
        return 2
    print(comparison_table(reports))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("compare", help="saved evaluation reports side by side")
    parser.add_argument("reports", nargs="+", help="model folders or evaluation.json files")
    parser.set_defaults(func=run)
