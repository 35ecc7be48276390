"""Fixtures shared by every test folder.

``random_model_dir`` is a randomly initialised model of the real architecture, exported the way
training exports: tests never depend on the bundled weights being trained.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from fpgui.core.architecture import FingerprintNet  # noqa: E402
from fpgui.core.embedder import Embedder  # noqa: E402
from fpgui.core.library import Library  # noqa: E402
from fpgui.core.model_files import ModelMetadata, save_model_bundle  # noqa: E402

TEST_INPUT_SIZE = 64


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    network = FingerprintNet(embedding_dim=128, in_channels=1, l2_normalize=True).eval()
    meta = ModelMetadata(
        name="test-random",
        version="0",
        input_size=TEST_INPUT_SIZE,
        threshold=0.05,
        training={"corpus": "none: random initialisation for tests"},
    )
    folder = tmp_path_factory.mktemp("model")
    save_model_bundle(network, meta, folder)
    return folder


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test ever touches the real user data dir."""
    data = tmp_path / "fpgui-data"
    monkeypatch.setenv("FPGUI_DATA_DIR", str(data))
    monkeypatch.delenv("FPGUI_LIBRARY", raising=False)
    return data


def make_photo(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A photo-like RGB image: smooth gradients plus random shapes, distinct per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.5, 4, 2).tolist() + [rng.uniform(0, 6.28)]
        channels.append(127 + 100 * np.sin(x / w * fx * 6.28 + phase) * np.cos(y / h * fy * 6.28))
    array = np.stack(channels, axis=-1)
    for _ in range(6):
        cx, cy = rng.integers(0, w), rng.integers(0, h)
        r = rng.integers(max(4, min(w, h) // 12), max(5, min(w, h) // 3))
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r**2
        array[mask] = rng.integers(0, 255, 3)
    array += rng.normal(0, 6, array.shape)
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")


def unit_vectors(n: int, seed: int, dim: int) -> np.ndarray:
    """``(n, dim)`` float32 rows of length 1, like the model's embeddings."""
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    normed: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normed


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Eight distinct JPEG photos in a folder."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(8):
        make_photo(i).save(folder / f"photo_{i}.jpg", quality=92)
    return folder


@pytest.fixture(scope="session")
def embedder(random_model_dir: Path) -> Embedder:
    return Embedder(random_model_dir, "cpu", allow_bf16=False)


@pytest.fixture
def library(tmp_path: Path, embedder: Embedder) -> Iterator[Library]:
    """An empty library on the random model."""
    opened = Library.open(tmp_path / "library", embedder)
    yield opened
    opened.close()


@pytest.fixture
def filled_library(library: Library, photo_folder: Path) -> Library:
    """The library holding the eight ``photo_folder`` photos."""
    summary = library.add_all([photo_folder])
    assert summary.added == 8
    return library
