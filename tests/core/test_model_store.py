"""Adopting a retrained model, switching back, and never losing the working one."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fpgui.core import model_store
from fpgui.core.embedder import Embedder
from fpgui.core.errors import ModelLoadError
from fpgui.core.model_files import (
    load_model_bundle,
    read_metadata,
    save_model_bundle,
    sha256_file,
)
from fpgui.core.paths import bundled_model_dir


def make_variant(source: Path, folder: Path, version: str) -> Path:
    """A copy of ``source`` with other metadata and other weights bytes, hence another id."""
    shutil.copytree(source, folder)
    weights = folder / "weights.pt"
    weights.write_bytes(weights.read_bytes() + version.encode())  # new bytes, new sha
    meta = dataclasses.replace(
        read_metadata(folder), version=version, weights_sha256=sha256_file(weights)
    )
    (folder / "model.json").write_text(meta.to_json())
    return folder


def test_without_adoption_the_bundled_model_is_active() -> None:
    assert model_store.active_model_dir() == bundled_model_dir()
    assert model_store.history() == []
    with pytest.raises(model_store.ModelStoreError, match="no previous model"):
        model_store.rollback()


def test_adopt_copies_activates_and_rollback_returns(
    random_model_dir: Path, tmp_path: Path, isolated_data_dir: Path
) -> None:
    (random_model_dir / "evaluation.json").write_text("{}")
    first = model_store.adopt(random_model_dir)
    first_id = read_metadata(random_model_dir).model_id
    assert first == isolated_data_dir / "models" / first_id
    assert model_store.active_model_dir() == first
    files = sorted(p.name for p in first.iterdir())
    assert files == ["evaluation.json", "model.json", "weights.pt"]
    model_store.validate_bundle(first)

    second_src = make_variant(random_model_dir, tmp_path / "candidate", "2")
    second = model_store.adopt(second_src)
    assert second != first and model_store.active_model_dir() == second
    shutil.rmtree(second_src)  # the store owns its copy
    assert model_store.active_model_dir() == second

    listed = model_store.history()
    assert [(m.model_id, m.active) for m in listed] == [(first_id, False), (second.name, True)]
    assert listed[0].dir == first and listed[0].adopted_at <= listed[1].adopted_at

    assert model_store.rollback() == first
    assert model_store.active_model_dir() == first
    assert model_store.rollback() == bundled_model_dir()
    with pytest.raises(model_store.ModelStoreError):
        model_store.rollback()


def test_adopting_the_active_model_again_changes_nothing(random_model_dir: Path) -> None:
    first = model_store.adopt(random_model_dir)
    assert model_store.adopt(random_model_dir) == first
    assert model_store.rollback() == bundled_model_dir()


def test_corrupt_bundle_is_refused_and_active_model_kept(
    random_model_dir: Path, tmp_path: Path
) -> None:
    good = model_store.adopt(random_model_dir)
    bad = shutil.copytree(random_model_dir, tmp_path / "bad")
    (bad / "weights.pt").write_bytes(b"truncated")
    with pytest.raises(ModelLoadError, match="do not match"):
        model_store.adopt(bad)
    (bad / "model.json").unlink()
    with pytest.raises(ModelLoadError, match="No model metadata"):
        model_store.adopt(bad)
    assert model_store.active_model_dir() == good
    assert [p.name for p in good.parent.iterdir() if p.name.startswith(".")] == []


def test_unreadable_state_or_deleted_model_falls_back_to_bundled(
    random_model_dir: Path, isolated_data_dir: Path
) -> None:
    adopted = model_store.adopt(random_model_dir)
    active_file = isolated_data_dir / "models" / "active.json"
    assert json.loads(active_file.read_text())["active"] == adopted.name

    active_file.write_text("{not json")
    assert model_store.active_model_dir() == bundled_model_dir()

    model_store.adopt(random_model_dir)
    shutil.rmtree(adopted)
    assert model_store.active_model_dir() == bundled_model_dir()
    assert model_store.history() == []


def test_background_fingerprints_are_adopted_with_the_model_and_checked(
    random_model_dir: Path, tmp_path: Path
) -> None:
    network, meta = load_model_bundle(random_model_dir)
    meta = dataclasses.replace(meta, crowding_k=1, crowding_reference=1.0, crowding_radius=0.1)
    source = tmp_path / "crowded"
    save_model_bundle(network, meta, source, np.ones((4, 128), np.float32))
    (source / "background.npy").write_bytes(b"torn")
    with pytest.raises(ModelLoadError, match="background fingerprints .* do not match"):
        model_store.adopt(source)

    save_model_bundle(network, meta, source, np.ones((4, 128), np.float32))
    adopted = model_store.adopt(source)
    assert sorted(p.name for p in adopted.iterdir()) == [
        "background.npy", "model.json", "weights.pt",
    ]  # fmt: skip
    assert Embedder(adopted, device="cpu").crowding is not None
