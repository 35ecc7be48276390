"""Settings: defaults, round trip, tolerance of bad files, atomic saves."""

from __future__ import annotations

import dataclasses
import errno
import json
from pathlib import Path

import pytest

from fpgui.core.settings import (
    FIELD_TYPES,
    SETTINGS_VERSION,
    Settings,
    SettingsError,
    load_settings,
    save_settings,
    settings_path,
)


def test_defaults_when_nothing_saved(isolated_data_dir: Path) -> None:
    assert load_settings() == Settings()
    assert settings_path().is_relative_to(isolated_data_dir)


def test_round_trip() -> None:
    chosen = Settings(device="cpu", threshold_override=0.3, thumbnail_cache_mb=64,
                      library_path="/libs/main", last_add_folder="/photos")  # fmt: skip
    save_settings(chosen)
    assert load_settings() == chosen
    assert json.loads(settings_path().read_text())["version"] == SETTINGS_VERSION


def test_corrupt_file_is_set_aside() -> None:
    settings_path().parent.mkdir(parents=True)
    settings_path().write_text("{not json")
    assert load_settings() == Settings()
    assert settings_path().with_name("settings.json.corrupt").exists()


def test_bad_values_fall_back_and_unknown_keys_are_ignored() -> None:
    settings_path().parent.mkdir(parents=True)
    settings_path().write_text(json.dumps({
        "device": "quantum", "threshold_override": 7, "thumbnail_cache_mb": "lots",
        "library_path": "/keep/me", "colour": "blue", "version": 1,
    }))  # fmt: skip
    assert load_settings() == Settings(library_path="/keep/me")


def test_integer_threshold_is_accepted_as_float() -> None:
    assert Settings.from_dict({"threshold_override": 1}).threshold_override == 1.0


def test_invalid_settings_are_refused_when_made() -> None:
    with pytest.raises(ValueError, match="threshold_override"):
        Settings(threshold_override=0.0)
    with pytest.raises(ValueError, match="device"):
        Settings(device="gpu")
    assert Settings(device="cuda:1").device_or_none == "cuda:1"
    assert Settings().device_or_none is None


def test_failed_save_keeps_the_previous_file(monkeypatch: pytest.MonkeyPatch) -> None:
    save_settings(Settings(thumbnail_cache_mb=10))

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch, pytest.raises(SettingsError, match="No space left"):
        patch.setattr("fpgui.core.atomic.os.fsync", disk_full)
        save_settings(Settings(thumbnail_cache_mb=20))
    assert load_settings().thumbnail_cache_mb == 10
    assert [p.name for p in settings_path().parent.iterdir()] == ["settings.json"]


def test_field_types_cover_every_field() -> None:
    names = {f.name for f in dataclasses.fields(Settings)} - {"version"}
    assert set(FIELD_TYPES) == names
