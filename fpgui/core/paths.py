"""Where fpgui keeps things. The only module that knows about platformdirs or data-dir overrides.

``FPGUI_LIBRARY`` (or ``--library``) redirects the library, ``FPGUI_DATA_DIR`` the whole data dir
(tests and a second installation use it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "fpgui"
APP_AUTHOR = "fpgui"


def data_dir() -> Path:
    """Per-user data directory (libraries, model history, thumbnails)."""
    override = os.environ.get("FPGUI_DATA_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))


def cache_dir() -> Path:
    """Per-user cache directory (thumbnails); safe to delete."""
    override = os.environ.get("FPGUI_DATA_DIR")
    if override:
        return Path(override).expanduser() / "cache"
    return Path(platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR))


def config_dir() -> Path:
    """Per-user configuration directory (settings.json)."""
    override = os.environ.get("FPGUI_DATA_DIR")
    if override:
        return Path(override).expanduser() / "config"
    return Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR))


def default_library_dir() -> Path:
    """The library used when neither ``--library`` nor ``FPGUI_LIBRARY`` names one."""
    override = os.environ.get("FPGUI_LIBRARY")
    if override:
        return Path(override).expanduser()
    return data_dir() / "library"


def resources_dir() -> Path:
    """Bundled assets, whether running from a checkout, an install or a frozen bundle."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "resources", here.parents[1] / "resources"):
        if candidate.is_dir():
            return candidate
    return here.parents[1] / "resources"


def bundled_model_dir() -> Path:
    """``resources/model``: the trained model shipped with the app."""
    return resources_dir() / "model"
