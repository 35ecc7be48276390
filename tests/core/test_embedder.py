"""The embedder: shapes, determinism, device choice, bf16 only when it matches fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fpgui.core import embedder as embedder_module
from fpgui.core.embedder import BF16_TOLERANCE, Embedder, bf16_matches_fp32, choose_device
from fpgui.core.errors import FpguiError, ModelLoadError
from fpgui.core.model_files import load_model_bundle
from tests.conftest import make_photo


def test_embeddings_are_unit_length_and_deterministic(random_model_dir: Path) -> None:
    embedder = Embedder(random_model_dir, device="cpu", allow_bf16=False)
    images = [make_photo(i) for i in range(3)]
    first = embedder.embed_images(images)
    second = embedder.embed_images(list(reversed(images)))[::-1]
    assert first.shape == (3, 128) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-4)
    assert np.allclose(first, second, atol=1e-5)  # batch composition does not matter
    assert embedder.precision == "fp32"


def test_embed_paths_yields_in_order_with_errors(random_model_dir: Path, tmp_path: Path) -> None:
    embedder = Embedder(random_model_dir, device="cpu")
    paths = []
    for i in range(5):
        path = tmp_path / f"{i}.jpg"
        make_photo(i).save(path)
        paths.append(path)
    (tmp_path / "2.jpg").write_bytes(b"broken")
    paths.append(tmp_path / "gone.jpg")
    results = list(embedder.embed_paths(paths, batch_size=2))
    assert [r.path for r in results] == paths
    assert [r.error is None for r in results] == [True, True, False, True, True, False]
    direct = embedder.embed_tensors(embedder.load_for_model(paths[0])[None])[0]
    assert results[0].embedding is not None
    assert np.allclose(results[0].embedding, direct, atol=1e-4)


def test_embed_paths_stops_when_asked(random_model_dir: Path, photo_folder: Path) -> None:
    embedder = Embedder(random_model_dir, device="cpu")
    paths = sorted(photo_folder.glob("*.jpg"))
    seen = 0

    def stop() -> bool:
        return seen >= 2

    for _ in embedder.embed_paths(paths, batch_size=2, should_stop=stop):
        seen += 1
    assert seen == 2


def test_bf16_check_compares_distances_with_fp32(random_model_dir: Path) -> None:
    network, meta = load_model_bundle(random_model_dir)
    assert isinstance(bf16_matches_fp32(network, meta), bool)
    assert 0 < BF16_TOLERANCE < 0.1


def test_bf16_is_refused_when_distances_drift(
    random_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_check = embedder_module._cpu_bf16_enabled
    monkeypatch.setattr(embedder_module, "_cpu_bf16_enabled", lambda: True)
    monkeypatch.setattr(embedder_module, "bf16_matches_fp32", lambda *_: False)
    assert Embedder(random_model_dir, device="cpu").precision == "fp32"
    monkeypatch.setattr(embedder_module, "bf16_matches_fp32", lambda *_: True)
    assert Embedder(random_model_dir, device="cpu").precision == "bf16"
    monkeypatch.setenv("FPGUI_BF16", "0")
    monkeypatch.setattr(embedder_module.torch.backends.cpu, "get_cpu_capability", lambda: "AMX")
    assert not real_check()


def test_device_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_device("cpu").type == "cpu"
    monkeypatch.setattr(embedder_module.torch.cuda, "is_available", lambda: False)
    with pytest.raises(FpguiError, match="CUDA was requested"):
        choose_device("cuda")
    monkeypatch.setenv("FPGUI_DEVICE", "cpu")
    assert choose_device(None).type == "cpu"


def test_missing_model_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="No model metadata"):
        Embedder(tmp_path / "nowhere", device="cpu")


def test_bundled_model_loads_and_separates_images() -> None:
    """The committed model is real: an image is nearer its JPEG copy than another image."""
    embedder = Embedder(device="cpu")
    assert embedder.metadata.embedding_dim == 128 and embedder.metadata.threshold > 0
    a, b = make_photo(1, (400, 300)), make_photo(2, (400, 300))
    a_small = a.resize((200, 150))
    e = embedder.embed_images([a, a_small, b])
    assert np.linalg.norm(e[0] - e[1]) < np.linalg.norm(e[0] - e[2])
    # It carries its crowding correction: thousands of background fingerprints, checked on load.
    assert embedder.crowding is not None and len(embedder.crowding.background) >= 1000
    factor = embedder.crowding.factor(e[0], e[1])
    assert 0.3 < factor < 3.0


def test_fast_bf16_is_read_from_the_cpu_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(embedder_module, "CPUINFO", cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    assert not embedder_module.cpu_has_fast_bf16()  # AVX-512 alone emulates bf16
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert embedder_module.cpu_has_fast_bf16()
    cpuinfo.write_text("flags\t\t: fpu amx_bf16 amx_tile\n")
    assert embedder_module.cpu_has_fast_bf16()
    cpuinfo.unlink()
    monkeypatch.setattr(embedder_module.torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not embedder_module.cpu_has_fast_bf16()
