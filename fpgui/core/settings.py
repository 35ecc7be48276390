"""The user's settings: one typed, versioned dataclass kept as ``settings.json`` in the config dir.

Reading never fails: a missing file gives the defaults, an unreadable or corrupt one is moved
aside (``settings.json.corrupt``) and the defaults are used, unknown keys are dropped and values of
the wrong type fall back to their default. Writing is atomic, so a crash or a full disk leaves the
previous file in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fpgui.core.atomic import atomic_write_text
from fpgui.core.errors import FpguiError
from fpgui.core.paths import config_dir

SETTINGS_FILE = "settings.json"
SETTINGS_VERSION = 1
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class Settings:
    """What the user chose. ``None`` means "use the default" (the model's threshold, the bundled
    library location, the best device)."""

    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", "mps"
    threshold_override: float | None = None  # L2 distance; None: the model's own threshold
    thumbnail_cache_mb: int = 256
    library_path: str | None = None
    last_add_folder: str | None = None
    last_check_folder: str | None = None
    version: int = SETTINGS_VERSION

    def __post_init__(self) -> None:
        if self.threshold_override is not None and not 0.0 < self.threshold_override <= 2.0:
            raise ValueError(f"threshold_override must be in (0, 2], not {self.threshold_override}")
        if self.thumbnail_cache_mb < 0:
            raise ValueError(f"thumbnail_cache_mb must be >= 0, not {self.thumbnail_cache_mb}")
        base = self.device.split(":", 1)[0]
        if base not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")

    @property
    def device_or_none(self) -> str | None:
        """For :class:`~fpgui.core.embedder.Embedder`: None lets it choose."""
        return None if self.device == "auto" else self.device

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Settings:
        """Tolerant: unknown keys are ignored, a value of the wrong type or range is dropped."""
        raw = _migrate(dict(raw))
        values: dict[str, Any] = {}
        for name, kinds in FIELD_TYPES.items():
            if name not in raw or isinstance(raw[name], bool) or not isinstance(raw[name], kinds):
                continue
            value = raw[name]
            if name == "threshold_override" and value is not None:
                value = float(value)
            try:
                cls(**{**values, name: value})
            except ValueError:
                continue
            values[name] = value
        return cls(**values)


# The JSON types each field accepts; a test keeps this in step with the dataclass.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "device": (str,),
    "threshold_override": (float, int, type(None)),
    "thumbnail_cache_mb": (int,),
    "library_path": (str, type(None)),
    "last_add_folder": (str, type(None)),
    "last_check_folder": (str, type(None)),
}


def _migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an older file's keys up to the current version (version 1 is the first)."""
    raw.setdefault("version", SETTINGS_VERSION)
    return raw


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def load_settings(path: Path | None = None) -> Settings:
    """The saved settings, or the defaults when there are none or they cannot be read."""
    target = path or settings_path()
    try:
        raw = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError):
        _set_aside(target)
        return Settings()
    if not isinstance(raw, dict):
        _set_aside(target)
        return Settings()
    return Settings.from_dict(raw)


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write atomically; raises :class:`SettingsError` (the old file stays) when it cannot."""
    target = path or settings_path()
    text = json.dumps(settings.to_dict(), indent=2, sort_keys=True) + "\n"
    try:
        atomic_write_text(target, text)
    except OSError as exc:
        raise SettingsError(f"cannot save settings to {target}: {exc.strerror or exc}") from exc


class SettingsError(FpguiError):
    """The settings file could not be written."""


def _set_aside(target: Path) -> None:
    """Keep a corrupt file for the curious instead of overwriting it on the next save."""
    with contextlib.suppress(OSError):
        os.replace(target, target.with_name(target.name + ".corrupt"))
