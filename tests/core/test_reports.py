"""Evidence reports: what a photographer hands over must be complete, readable and safe to open."""

from __future__ import annotations

import base64
import io
import json
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from fpgui import __version__
from fpgui.core.images import load_image
from fpgui.core.library import Library
from fpgui.core.matching import CheckResult, check
from fpgui.core.reports import build_report, write_html_report, write_json_report
from fpgui.core.verdict import Verdict


@pytest.fixture
def library(filled_library: Library) -> Library:
    return filled_library


@pytest.fixture
def checked(library: Library, photo_folder: Path) -> tuple[CheckResult, Image.Image]:
    query = photo_folder / "photo_3.jpg"
    return check(library, query), load_image(query)


def test_json_report_holds_everything_a_claim_needs(
    library: Library, checked: tuple[CheckResult, Image.Image], tmp_path: Path
) -> None:
    result, image = checked
    path = tmp_path / "out" / "report.json"
    write_json_report(result, library, image, path)
    report = json.loads(path.read_text(encoding="utf-8"))

    assert report["is_copy"] is True
    assert report["verdict"] == "Copy of photo_3.jpg: distance 0.00 (threshold 0.05)"
    assert report["verdict_level"] == "copy"
    assert report["second_distance"] == result.matches[1].distance
    assert report["ratio"] is None and report["ratio_threshold"] is None
    assert report["possible_threshold"] is None and report["reference_distance"] is None
    assert report["model_id"] == library.embedder.metadata.model_id
    assert report["threshold"] == result.threshold
    assert report["fpgui_version"] == __version__
    assert datetime.fromisoformat(report["checked_at"]) == result.checked_at.replace(microsecond=0)
    assert report["query"]["sha256"] == result.sha256
    assert (report["query"]["width"], report["query"]["height"]) == image.size
    assert report["query"]["size_bytes"] == Path(result.query).stat().st_size

    added = {p.path: p.added_at for p in library.images()}
    assert [m["rank"] for m in report["matches"]] == [1, 2, 3, 4, 5]
    for entry, match in zip(report["matches"], result.matches, strict=True):
        assert entry["sha256"] == match.sha256
        assert entry["distance"] == match.distance
        assert datetime.fromisoformat(entry["added_at"]) == added[match.path].replace(microsecond=0)
        assert (entry["width"], entry["height"]) == (320, 240)
        assert entry["file_missing"] is False


def test_html_report_is_self_contained_and_shows_both_images(
    library: Library, checked: tuple[CheckResult, Image.Image], tmp_path: Path
) -> None:
    result, image = checked
    path = tmp_path / "report.html"
    write_html_report(result, library, image, path)
    page = path.read_text(encoding="utf-8")

    assert page.startswith("<!DOCTYPE html>")
    assert "Copy of photo_3.jpg" in page
    assert result.sha256 in page
    assert result.model_id in page
    assert all(m.sha256 in page for m in result.matches)
    assert f"{result.threshold:.4f}" in page
    assert __version__ in page
    # No external resources: every image is inline, and the thumbnails decode.
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 1 + len(result.matches)
    for source in sources:
        assert source.startswith("data:image/jpeg;base64,")
        thumb = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        assert thumb.format == "JPEG" and max(thumb.size) <= 320
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_html_escapes_hostile_names(
    library: Library, checked: tuple[CheckResult, Image.Image], tmp_path: Path
) -> None:
    result, image = checked
    hostile = replace(result, query='<script>alert("x")</script>&.png')
    path = tmp_path / "report.html"
    write_html_report(hostile, library, image, path)
    page = path.read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;.png" in page


def test_missing_original_and_no_match_are_reported_plainly(
    library: Library, checked: tuple[CheckResult, Image.Image], tmp_path: Path
) -> None:
    result, image = checked
    Path(result.matches[1].path).unlink()
    not_copy = replace(result, verdict=Verdict.NO_MATCH, threshold=0.0)
    report = build_report(not_copy, library, image)
    assert report["verdict"] == "No match: distance 0.00 (threshold 0.00)"
    assert (report["verdict_level"], report["is_copy"]) == ("none", False)
    assert report["matches"][1]["file_missing"] is True

    path = tmp_path / "report.html"
    write_html_report(not_copy, library, image, path)
    page = path.read_text(encoding="utf-8")
    assert "(file missing)" in page and "image file not readable" in page
    assert 'class="verdict nomatch"' in page


def test_possible_copy_report_states_the_ratio_numbers(
    library: Library, checked: tuple[CheckResult, Image.Image], tmp_path: Path
) -> None:
    result, image = checked
    possible = replace(
        result, verdict=Verdict.POSSIBLE, threshold=0.21, second_distance=0.8, ratio=0.3875,
        ratio_threshold=0.3, possible_threshold=0.28, possible_ratio_threshold=0.42,
        reference_distance=0.9,
    )  # fmt: skip
    path = tmp_path / "report.json"
    write_json_report(possible, library, image, path)
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["verdict"] == (
        "Possible copy of photo_3.jpg - compare to confirm: distance 0.00 (threshold 0.21, "
        "possible below 0.28); 0.39 x the next distinct image (ratio threshold 0.30, possible "
        "below 0.42)"
    )
    assert report["verdict_level"] == "possible" and report["is_copy"] is False
    assert (report["ratio"], report["ratio_threshold"]) == (0.3875, 0.3)
    assert (report["possible_threshold"], report["possible_ratio_threshold"]) == (0.28, 0.42)
    assert (report["second_distance"], report["reference_distance"]) == (0.8, 0.9)

    html_path = tmp_path / "report.html"
    write_html_report(possible, library, image, html_path)
    page = html_path.read_text(encoding="utf-8")
    assert 'class="verdict possible"' in page
    assert "<tr><th>Possible-copy threshold</th><td>0.2800 " in page
    assert (
        "<tr><th>Distance ratio</th><td>0.3875: the nearest distance over that of the next "
        "distinct library image (0.8000, capped at 0.9000); below 0.3000 is a copy, below 0.4200 "
        "a possible copy</td></tr>"
    ) in page
