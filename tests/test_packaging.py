"""The desktop entry and AppStream metadata are well formed and agree with each other."""

from __future__ import annotations

import configparser
import xml.etree.ElementTree as ET
from pathlib import Path

import fpgui

PACKAGING = Path(__file__).resolve().parents[1] / "packaging"
REQUIRED_DESKTOP_KEYS = {"Type", "Name", "Exec", "Icon", "Categories", "Comment"}


def _desktop() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(PACKAGING / "io.github.fpgui.desktop", encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_entry_has_required_keys_and_valid_lists() -> None:
    entry = _desktop()
    assert set(entry) >= REQUIRED_DESKTOP_KEYS
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == "fpgui"
    for key in ("Categories", "MimeType", "Keywords"):
        assert entry[key].endswith(";"), f"{key} must end with ';'"
    assert all(m.startswith("image/") for m in entry["MimeType"].split(";") if m)


def test_appstream_metadata_matches_desktop_entry_and_version() -> None:
    root = ET.parse(PACKAGING / "io.github.fpgui.metainfo.xml").getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == "io.github.fpgui"
    assert root.findtext("launchable") == "io.github.fpgui.desktop"
    assert _desktop()["Icon"] == root.findtext("id")
    summary = root.findtext("summary") or ""
    assert 0 < len(summary) <= 100 and not summary.endswith(".")
    releases = [r.get("version") for r in root.iter("release")]
    assert releases and releases[0] == fpgui.__version__
