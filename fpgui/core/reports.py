"""Evidence reports of one check: a JSON document and a self-contained HTML page.

Both are built from :func:`build_report`, so they always say the same thing. The HTML page embeds
the query and every match as base64 JPEG thumbnails (no external files, no scripts) and escapes
every string it shows. Files are written atomically.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from fpgui import __version__
from fpgui.core.atomic import atomic_write_text
from fpgui.core.errors import ImageLoadError
from fpgui.core.images import load_image
from fpgui.core.library import Library
from fpgui.core.matching import CheckResult

REPORT_FORMAT = 1
THUMBNAIL_SIDE = 320  # px, long side of the embedded thumbnails
THUMBNAIL_QUALITY = 82


def verdict_text(result: CheckResult) -> str:
    """The one-line verdict with the numbers that decided it, worded as the check view words it:
    "Copy of beach.jpg: distance 0.12 (threshold 0.21)"."""
    if result.nearest is None:
        return "No match - the library has no fingerprinted images"
    return f"{result.headline()}: {result.evidence_text()}"


def build_report(result: CheckResult, library: Library, query_image: Image.Image) -> dict[str, Any]:
    """The report as plain JSON-able data (no images); the HTML page renders this same dict.

    ``added_at`` of each match comes from the library; a match no longer in the library (removed
    since the check) has ``in_library`` false and no file details.
    """
    protected = library.images_by_ids([m.image_id for m in result.matches], check_files=True)
    matches: list[dict[str, Any]] = []
    for match in result.matches:
        entry: dict[str, Any] = {
            "rank": match.rank,
            "image_id": match.image_id,
            "path": match.path,
            "name": Path(match.path).name,
            "sha256": match.sha256,
            "distance": match.distance,
            "below_threshold": match.distance < result.threshold,
            "in_library": match.image_id in protected,
        }
        image = protected.get(match.image_id)
        if image is not None:
            entry.update(
                added_at=image.added_at.isoformat(timespec="seconds"),
                size_bytes=image.size,
                width=image.width,
                height=image.height,
                file_missing=image.missing,
            )
        matches.append(entry)
    query_path = Path(result.query)
    query_size = query_path.stat().st_size if query_path.is_file() else None
    nearest = result.nearest
    return {
        "format": REPORT_FORMAT,
        "fpgui_version": __version__,
        "report_created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "checked_at": result.checked_at.isoformat(timespec="seconds"),
        "model_id": result.model_id,
        "threshold": result.threshold,
        "is_copy": result.is_copy,
        "verdict": verdict_text(result),
        "verdict_level": result.verdict.value,
        "nearest_distance": nearest.distance if nearest else None,
        "second_distance": result.second_distance,
        "ratio": result.ratio,
        "ratio_threshold": result.ratio_threshold,
        "possible_threshold": result.possible_threshold,
        "possible_ratio_threshold": result.possible_ratio_threshold,
        "reference_distance": result.reference_distance,
        "not_compared": result.not_compared,
        "library": {"folder": str(library.folder), "images": library.count()},
        "query": {
            "name": result.query,
            "sha256": result.sha256,
            "width": query_image.width,
            "height": query_image.height,
            "size_bytes": query_size,
        },
        "matches": matches,
    }


def write_json_report(
    result: CheckResult, library: Library, query_image: Image.Image, path: Path
) -> None:
    """Write :func:`build_report` as indented JSON to ``path``, atomically."""
    report = build_report(result, library, query_image)
    atomic_write_text(Path(path), json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def write_html_report(
    result: CheckResult, library: Library, query_image: Image.Image, path: Path
) -> None:
    """Write a self-contained HTML page of the check to ``path``, atomically.

    Decodes every match's file for its thumbnail, so call it off the GUI thread.
    """
    report = build_report(result, library, query_image)
    atomic_write_text(Path(path), render_html(report, query_image))


def thumbnail_data_uri(image: Image.Image, side: int = THUMBNAIL_SIDE) -> str:
    """``data:image/jpeg;base64,...`` of ``image`` shrunk to ``side`` px on its long side."""
    thumb = image.convert("RGB")
    thumb.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumb.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _match_thumbnail(path: str) -> str | None:
    try:
        return thumbnail_data_uri(load_image(path, min_size=THUMBNAIL_SIDE))
    except ImageLoadError:
        return None


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _size_text(size: int | None) -> str:
    if size is None:
        return "-"
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB ({size:,} bytes)"
    return f"{size / (1024 * 1024):.1f} MiB ({size:,} bytes)"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.4em; }
.verdict { padding: .8em 1em; border-radius: 6px; font-size: 1.2em; font-weight: 600; }
.copy { background: #fde2e1; border: 2px solid #c62828; color: #8e1c1c; }
.possible { background: #fff4d6; border: 2px dashed #b26a00; color: #6d4100; }
.nomatch { background: #e3f4e4; border: 2px solid #2e7d32; color: #1b5e20; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .35em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
code { font-family: ui-monospace, monospace; font-size: .85em; word-break: break-all; }
img { max-width: 320px; max-height: 320px; border: 1px solid #999; }
.below { color: #c62828; font-weight: 600; }
footer { margin-top: 2em; color: #666; font-size: .85em; }
"""


def _decision_rows(report: dict[str, Any]) -> str:
    """Table rows for the verdict's calibrated values beyond the distance threshold."""
    rows = []
    possible = report["possible_threshold"]
    if possible is not None and possible > report["threshold"]:
        rows.append(
            f"<tr><th>Possible-copy threshold</th><td>{possible:.4f} "
            "(L2 distance; below it is a possible copy)</td></tr>"
        )
    strict_ratio, possible_ratio = report["ratio_threshold"], report["possible_ratio_threshold"]
    if strict_ratio is not None or possible_ratio is not None:
        ratio, second, cap = (
            report["ratio"],
            report["second_distance"],
            report["reference_distance"],
        )
        limits = [] if strict_ratio is None else [f"below {strict_ratio:.4f} is a copy"]
        if possible_ratio is not None and (strict_ratio is None or possible_ratio > strict_ratio):
            limits.append(f"below {possible_ratio:.4f} a possible copy")
        explained = (
            "the nearest distance over that of the next distinct library image ("
            + ("none in the library" if second is None else f"{second:.4f}")
            + ("" if cap is None else f", capped at {cap:.4f}")
            + f"); {', '.join(limits)}"
        )
        value = "-" if ratio is None else f"{ratio:.4f}"
        rows.append(f"<tr><th>Distance ratio</th><td>{value}: {_e(explained)}</td></tr>")
    return "".join(f"{row}\n" for row in rows)


def render_html(report: dict[str, Any], query_image: Image.Image) -> str:
    """The HTML page for ``report`` (from :func:`build_report`); every string is escaped."""
    query = report["query"]
    verdict_class = {"copy": "copy", "possible": "possible"}.get(report["verdict_level"], "nomatch")
    rows = []
    for match in report["matches"]:
        thumb = _match_thumbnail(match["path"])
        picture = (
            f'<img src="{thumb}" alt="{_e(match["name"])}">'
            if thumb
            else "<em>image file not readable</em>"
        )
        distance_class = ' class="below"' if match["below_threshold"] else ""
        dimensions = f"{match['width']} x {match['height']}" if "width" in match else "-"
        missing = " (file missing)" if match.get("file_missing") else ""
        rows.append(
            "<tr>"
            f"<td>{_e(match['rank'])}</td>"
            f"<td>{picture}</td>"
            f"<td>{_e(match['name'])}{_e(missing)}<br><code>{_e(match['path'])}</code></td>"
            f"<td{distance_class}>{match['distance']:.4f}</td>"
            f"<td><code>{_e(match['sha256'])}</code></td>"
            f"<td>{_e(match.get('added_at', 'no longer in the library'))}</td>"
            f"<td>{_e(dimensions)}<br>{_e(_size_text(match.get('size_bytes')))}</td>"
            "</tr>"
        )
    match_table = (
        "<table><tr><th>Rank</th><th>Library image</th><th>Name and path</th><th>Distance</th>"
        "<th>SHA-256</th><th>Added to the library</th><th>Details</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else "<p>The library has no fingerprinted images to compare with.</p>"
    )
    not_compared = (
        f"<p>{_e(report['not_compared'])} library images had no fingerprint from this model "
        "yet and were not compared.</p>"
        if report["not_compared"]
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fpgui evidence report: {_e(Path(query["name"]).name)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Evidence report: {_e(Path(query["name"]).name)}</h1>
<p class="verdict {verdict_class}">{_e(report["verdict"])}</p>
<table>
<tr><th>Checked at</th><td>{_e(report["checked_at"])}</td></tr>
<tr><th>Model</th><td><code>{_e(report["model_id"])}</code></td></tr>
<tr><th>Threshold</th><td>{report["threshold"]:.4f} (L2 distance; below it is a copy)</td></tr>
{_decision_rows(report)}<tr><th>Library</th><td>{_e(report["library"]["folder"])}
 ({_e(report["library"]["images"])} images)</td></tr>
</table>
<h2>Query image</h2>
<table>
<tr><td rowspan="4"><img src="{thumbnail_data_uri(query_image)}" alt="query"></td>
<th>Name</th><td>{_e(query["name"])}</td></tr>
<tr><th>SHA-256</th><td><code>{_e(query["sha256"])}</code></td></tr>
<tr><th>Dimensions</th><td>{_e(query["width"])} x {_e(query["height"])}</td></tr>
<tr><th>File size</th><td>{_e(_size_text(query["size_bytes"]))}</td></tr>
</table>
<h2>Closest library images</h2>
{match_table}
{not_compared}
<footer>Made by fpgui {_e(report["fpgui_version"])} on {_e(report["report_created_at"])}.</footer>
</body>
</html>
"""
