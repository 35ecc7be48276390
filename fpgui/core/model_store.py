"""Models the user adopted (e.g. from the retrain wizard), beside the bundled one.

Layout, under :func:`fpgui.core.paths.data_dir`::

    models/<model_id>/model.json, weights.pt[, background.npy, evaluation.json]   one per model
    models/active.json                                             which one is active, and why

``active.json`` holds ``active`` (a model id, or null for the bundled model), ``previous`` (the
models that were active before, most recent last: what :func:`rollback` returns to) and
``adopted`` (model id -> adoption time). Adopted folders are kept, so every rollback has its model.
A missing or unreadable ``active.json`` means the bundled model; so does an active folder that
vanished.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from fpgui.core.atomic import atomic_write_text
from fpgui.core.errors import FpguiError, ModelLoadError
from fpgui.core.model_files import METADATA_FILE, load_crowding, read_metadata, sha256_file
from fpgui.core.paths import bundled_model_dir, data_dir

MODELS_DIR = "models"
ACTIVE_FILE = "active.json"
STORE_FORMAT = 1
# Beside the bundle itself: the export's evaluation report, when there is one.
EXTRA_FILES = ("evaluation.json",)


class ModelStoreError(FpguiError):
    """A model cannot be adopted or rolled back; the message says why."""


class AdoptedModel(NamedTuple):
    """One entry of :func:`history`."""

    model_id: str
    dir: Path
    adopted_at: datetime
    active: bool


@dataclass
class _State:
    active: str | None = None  # None: the bundled model
    previous: list[str | None] = field(default_factory=list)  # most recent last
    adopted: dict[str, str] = field(default_factory=dict)  # model id -> ISO time

    def to_json(self) -> str:
        raw = {
            "format": STORE_FORMAT,
            "active": self.active,
            "previous": self.previous,
            "adopted": self.adopted,
        }
        return json.dumps(raw, indent=2, sort_keys=True) + "\n"


def store_dir() -> Path:
    """``data_dir()/models``: where adopted models live."""
    return data_dir() / MODELS_DIR


def _read_state() -> _State:
    try:
        raw: Any = json.loads((store_dir() / ACTIVE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return _State()
    if not isinstance(raw, dict):
        return _State()
    active = raw.get("active")
    previous = raw.get("previous", [])
    adopted = raw.get("adopted", {})
    return _State(
        active=active if isinstance(active, str) else None,
        previous=[p if isinstance(p, str) else None for p in previous]
        if isinstance(previous, list)
        else [],
        adopted={str(k): str(v) for k, v in adopted.items()} if isinstance(adopted, dict) else {},
    )


def _write_state(state: _State) -> None:
    atomic_write_text(store_dir() / ACTIVE_FILE, state.to_json())


def _model_dir(model_id: str | None) -> Path:
    if model_id is None:
        return bundled_model_dir()
    return store_dir() / model_id


def _usable(model_id: str | None) -> bool:
    return model_id is None or (store_dir() / model_id / METADATA_FILE).is_file()


def active_model_id() -> str | None:
    """The adopted model in use, or None when the bundled model is."""
    active = _read_state().active
    return active if active is not None and _usable(active) else None


def active_model_dir() -> Path:
    """The folder of the model the app should load: the adopted one, else the bundled one."""
    return _model_dir(active_model_id())


def validate_bundle(model_dir: Path) -> str:
    """Check ``model_dir`` holds a loadable bundle whose weights match; returns its model id.

    Raises :class:`ModelLoadError` naming the file at fault.
    """
    meta = read_metadata(model_dir)
    weights = model_dir / meta.weights_file
    if not weights.is_file():
        raise ModelLoadError(f"Model weights {weights} are missing")
    if not meta.weights_sha256:
        raise ModelLoadError(f"{model_dir / METADATA_FILE} does not record the weights' sha256")
    actual = sha256_file(weights)
    if actual != meta.weights_sha256:
        raise ModelLoadError(
            f"Model weights {weights} do not match {METADATA_FILE} "
            f"(sha256 {actual[:12]}..., expected {meta.weights_sha256[:12]}...)"
        )
    load_crowding(model_dir, meta)  # the background fingerprints, when it has them
    return meta.model_id


def adopt(model_dir: Path) -> Path:
    """Copy the bundle in ``model_dir`` into the store, make it active; returns its new folder.

    The model active before is remembered for :func:`rollback`. Adopting the active model again
    changes nothing. Raises :class:`ModelLoadError` for a bad bundle, :class:`ModelStoreError`
    when the store cannot be written.
    """
    source = Path(model_dir)
    model_id = validate_bundle(source)
    target = store_dir() / model_id
    try:
        if source.resolve() != target.resolve():
            _copy_bundle(source, target, model_id)
    except OSError as exc:
        raise ModelStoreError(f"Cannot copy the model into {store_dir()}: {exc}") from exc
    state = _read_state()
    current = active_model_id()
    if current == model_id:
        return target
    state.previous.append(current)
    state.active = model_id
    state.adopted[model_id] = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        _write_state(state)
    except OSError as exc:
        raise ModelStoreError(f"Cannot record the active model: {exc}") from exc
    return target


def _copy_bundle(source: Path, target: Path, model_id: str) -> None:
    """Copy into a temp folder beside ``target``, check it, then rename it into place."""
    if target.is_dir():
        try:
            validate_bundle(target)
            return  # adopted before and intact: the same weights, by their hash
        except ModelLoadError:
            shutil.rmtree(target)
    store_dir().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model_id}.", dir=store_dir()))
    try:
        meta = read_metadata(source)
        names = (METADATA_FILE, meta.weights_file, meta.crowding_file, *EXTRA_FILES)
        for name in filter(None, names):
            if (source / name).is_file():
                shutil.copy2(source / name, staging / name)
        validate_bundle(staging)  # the copy, not only the source, must be whole
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def rollback() -> Path:
    """Make the previously active model active again; returns its folder.

    Skips previous models whose folders were deleted. Raises :class:`ModelStoreError` when there
    is nothing to go back to.
    """
    state = _read_state()
    while state.previous:
        candidate = state.previous.pop()
        if _usable(candidate) and candidate != state.active:
            state.active = candidate
            try:
                _write_state(state)
            except OSError as exc:
                raise ModelStoreError(f"Cannot record the active model: {exc}") from exc
            return _model_dir(candidate)
    raise ModelStoreError("There is no previous model to roll back to")


def history() -> list[AdoptedModel]:
    """Every adopted model still in the store, oldest adoption first."""
    state = _read_state()
    active = active_model_id()
    found = []
    for model_id, when in state.adopted.items():
        if not _usable(model_id):
            continue
        try:
            adopted_at = datetime.fromisoformat(when)
        except ValueError:
            adopted_at = datetime.fromtimestamp(0, UTC)
        found.append(AdoptedModel(model_id, store_dir() / model_id, adopted_at, model_id == active))
    return sorted(found, key=lambda m: m.adopted_at)
