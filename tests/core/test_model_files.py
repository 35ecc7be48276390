"""A model bundle round-trips, and every broken bundle gives one clear ModelLoadError."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fpgui.core.architecture import FingerprintNet
from fpgui.core.errors import ModelLoadError
from fpgui.core.model_files import (
    BACKGROUND_FILE,
    METADATA_FILE,
    WEIGHTS_FILE,
    ModelMetadata,
    load_crowding,
    load_model_bundle,
    read_metadata,
    save_model_bundle,
)


@pytest.fixture
def bundle(random_model_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(random_model_dir, copy)
    return copy


def test_round_trip_keeps_weights_within_fp16_and_records_sha(bundle: Path) -> None:
    network, meta = load_model_bundle(bundle)
    assert meta.weights_sha256 and len(meta.weights_sha256) == 64
    assert meta.model_id.startswith("test-random-0-")
    again = save_model_bundle(network, meta, bundle.parent / "again")
    reloaded, _ = load_model_bundle(bundle.parent / "again")
    assert again.weights_sha256 == meta.weights_sha256  # fp16 -> fp32 -> fp16 is lossless
    for (name, a), (_, b) in zip(
        network.state_dict().items(), reloaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert (bundle / WEIGHTS_FILE).stat().st_size < 25 * 2**20


def test_missing_metadata_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="No model metadata at .*model.json"):
        load_model_bundle(tmp_path)


def test_missing_weights(bundle: Path) -> None:
    (bundle / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelLoadError, match="weights .* are missing"):
        load_model_bundle(bundle)


def test_corrupt_weights_fail_the_checksum(bundle: Path) -> None:
    data = bytearray((bundle / WEIGHTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="do not match model.json"):
        load_model_bundle(bundle)


def test_unreadable_weights_without_checksum(bundle: Path) -> None:
    raw = json.loads((bundle / METADATA_FILE).read_text())
    raw["weights_sha256"] = ""
    (bundle / METADATA_FILE).write_text(json.dumps(raw))
    (bundle / WEIGHTS_FILE).write_bytes(b"not a torch file")
    with pytest.raises(ModelLoadError, match="cannot be read"):
        load_model_bundle(bundle)


def test_weights_of_another_shape_are_refused(bundle: Path) -> None:
    meta = read_metadata(bundle)
    other = FingerprintNet(embedding_dim=64)
    save_model_bundle(other, meta, bundle)  # metadata now says 64 ...
    raw = json.loads((bundle / METADATA_FILE).read_text())
    raw["embedding_dim"] = 128  # ... and is edited back to disagree with the weights
    (bundle / METADATA_FILE).write_text(json.dumps(raw))
    with pytest.raises(ModelLoadError, match="do not fit"):
        load_model_bundle(bundle)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "unreadable"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"name": "x", "version": "1", "architecture": "vit-b"}), "vit-b"),
        (json.dumps({"name": "x", "version": "1", "format": 99}), "update fpgui"),
        (json.dumps({"version": "1"}), "invalid"),
        (json.dumps({"name": "x", "version": "1", "normalization": "zca"}), "normalization 'zca'"),
    ],
)
def test_bad_metadata(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / METADATA_FILE).write_text(content)
    with pytest.raises(ModelLoadError, match=message):
        read_metadata(tmp_path)


def test_unknown_metadata_keys_are_ignored(tmp_path: Path) -> None:
    raw = json.loads(ModelMetadata(name="m", version="1").to_json())
    raw["added_by_a_newer_fpgui"] = True
    (tmp_path / METADATA_FILE).write_text(json.dumps(raw))
    assert read_metadata(tmp_path).name == "m"


# -- background fingerprints (the crowding correction) -------------------------------------------


@pytest.fixture
def crowded_bundle(bundle: Path) -> Path:
    network, meta = load_model_bundle(bundle)
    meta = dataclasses.replace(meta, crowding_k=2, crowding_reference=0.9, crowding_radius=0.2)
    background = np.random.default_rng(0).normal(size=(10, 128)).astype(np.float32)
    save_model_bundle(network, meta, bundle, background)
    return bundle


def test_background_round_trips_in_fp16(crowded_bundle: Path) -> None:
    meta = read_metadata(crowded_bundle)
    assert meta.crowding_file == BACKGROUND_FILE and len(meta.crowding_sha256) == 64
    crowding = load_crowding(crowded_bundle, meta)
    assert crowding is not None
    assert (crowding.k, crowding.reference, crowding.radius) == (2, 0.9, 0.2)
    expected = np.random.default_rng(0).normal(size=(10, 128)).astype(np.float16)
    assert np.array_equal(crowding.background, expected.astype(np.float32))


def test_a_bundle_saved_without_background_has_no_crowding(crowded_bundle: Path) -> None:
    network, meta = load_model_bundle(crowded_bundle)
    save_model_bundle(network, meta, crowded_bundle)
    again = read_metadata(crowded_bundle)
    assert (again.crowding_file, again.crowding_k) == ("", 0)
    assert load_crowding(crowded_bundle, again) is None


def test_missing_background(crowded_bundle: Path) -> None:
    (crowded_bundle / BACKGROUND_FILE).unlink()
    with pytest.raises(ModelLoadError, match="background fingerprints .* are missing"):
        load_crowding(crowded_bundle, read_metadata(crowded_bundle))


def test_corrupt_background_fails_the_checksum(crowded_bundle: Path) -> None:
    data = bytearray((crowded_bundle / BACKGROUND_FILE).read_bytes())
    data[-3] ^= 0xFF
    (crowded_bundle / BACKGROUND_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="background fingerprints .* do not match"):
        load_crowding(crowded_bundle, read_metadata(crowded_bundle))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (np.zeros((10, 64), np.float16), "shape"),
        (np.full((10, 128), np.nan, np.float16), "finite"),
        (None, "cannot be read"),
    ],
    ids=["wrong-width", "not-finite", "not-npy"],
)
def test_background_of_the_wrong_kind_is_refused(
    crowded_bundle: Path, payload: np.ndarray | None, message: str
) -> None:
    stream = io.BytesIO()
    if payload is None:
        stream.write(b"not a numpy file")
    else:
        np.save(stream, payload, allow_pickle=False)
    (crowded_bundle / BACKGROUND_FILE).write_bytes(stream.getvalue())
    meta = dataclasses.replace(read_metadata(crowded_bundle), crowding_sha256="")
    with pytest.raises(ModelLoadError, match=message):
        load_crowding(crowded_bundle, meta)


def test_crowding_constants_out_of_range_are_refused(crowded_bundle: Path) -> None:
    meta = dataclasses.replace(read_metadata(crowded_bundle), crowding_reference=-1.0)
    with pytest.raises(ModelLoadError, match="reference > 0"):
        load_crowding(crowded_bundle, meta)
