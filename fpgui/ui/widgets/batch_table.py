"""Batch check results: one row per query, sortable, exportable as CSV or JSON.

The "Verdict" column says Copy, Possible copy, No match or Error; its colours come in a light and a
dark variant, chosen by the palette, so they stay legible on both.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette

if TYPE_CHECKING:
    from fpgui.core.matching import CheckResult

COLUMNS = ("Query", "Verdict", "Best match", "Distance")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
# Verdict -> (colour on a light palette, colour on a dark one).
VERDICT_COLOURS = {
    "Copy": (QColor("#b3261e"), QColor("#f28b82")),
    "Possible copy": (QColor("#8a5a00"), QColor("#fdd663")),
    "No match": (QColor("#1e7b34"), QColor("#81c995")),
    "Error": (QColor("#6b4fbb"), QColor("#c6a8ff")),
}

_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class BatchRow:
    """One checked query: a result, or the reason it could not be checked."""

    query: str
    result: CheckResult | None = None
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.result is None:
            return "Error"
        return self.result.verdict_label

    @property
    def best_match(self) -> str:
        if self.result is None:
            return self.error or ""
        nearest = self.result.nearest
        return nearest.path if nearest is not None else "(library is empty)"

    @property
    def distance(self) -> float | None:
        if self.result is None or self.result.nearest is None:
            return None
        return self.result.nearest.distance


class BatchTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[BatchRow] = []

    def clear(self) -> None:
        self.beginResetModel()
        self.rows = []
        self.endResetModel()

    def append(self, row: BatchRow) -> None:
        self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows))
        self.rows.append(row)
        self.endInsertRows()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(  # noqa: N802
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return os.path.basename(row.query) or row.query
            if column == 1:
                return row.verdict
            if column == 2:
                return os.path.basename(row.best_match) if row.result else row.best_match
            distance = row.distance
            return "" if distance is None else f"{distance:.3f}"
        if role == SORT_ROLE:
            if column == 3:
                return row.distance if row.distance is not None else float("inf")
            return str(self.data(index, Qt.ItemDataRole.DisplayRole)).lower()
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.query if column == 0 else row.best_match
        if role == Qt.ItemDataRole.ForegroundRole and column == 1:
            light, dark = VERDICT_COLOURS[row.verdict]
            return dark if _dark_palette() else light
        if role == Qt.ItemDataRole.FontRole and column == 1 and row.verdict != "No match":
            from PySide6.QtGui import QFont

            font = QFont()
            font.setBold(True)
            return font
        return None


def _dark_palette() -> bool:
    return QGuiApplication.palette().color(QPalette.ColorRole.Base).lightness() < 128


def rows_to_csv(rows: list[BatchRow]) -> str:
    """One line per row; ``ratio`` and ``ratio_threshold`` are empty when not calibrated."""

    def number(value: float | None) -> str:
        return "" if value is None else f"{value:.6f}"

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["query", "verdict", "best_match", "distance", "threshold", "sha256", "error", "ratio",
         "ratio_threshold"]
    )  # fmt: skip
    for row in rows:
        result = row.result
        writer.writerow(
            [
                row.query,
                row.verdict,
                row.best_match if result else "",
                number(row.distance),
                "" if result is None else number(result.threshold),
                "" if result is None else result.sha256,
                row.error or "",
                "" if result is None else number(result.ratio),
                "" if result is None else number(result.ratio_threshold),
            ]
        )
    return out.getvalue()


def rows_to_json(rows: list[BatchRow]) -> str:
    """The command line's ``check --json`` objects, as one JSON array."""
    items: list[dict[str, Any]] = []
    for row in rows:
        if row.result is not None:
            items.append(row.result.to_json_dict() | {"query": row.query})
        else:
            items.append({"query": row.query, "error": row.error or "unknown error"})
    return json.dumps(items, indent=2) + "\n"
