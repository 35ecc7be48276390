"""A model bundle round-trips, and every broken bundle gives one clear ModelLoadError."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from fpgui.core.architecture import FingerprintNet
from fpgui.core.errors import ModelLoadError
from fpgui.core.model_files import (
    METADATA_FILE,
    WEIGHTS_FILE,
    ModelMetadata,
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
