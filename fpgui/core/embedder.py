"""Embedding images with the fingerprint model, batched, on the best available device.

Device choice: CUDA, then MPS, then CPU, unless the caller names one. On CPU, bf16 autocast is used
only when :func:`bf16_matches_fp32` finds its distances within ``BF16_TOLERANCE`` of fp32 for this
model; the check runs once per model and its outcome is reported in :attr:`Embedder.precision`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fpgui.core.architecture import FingerprintNet
from fpgui.core.crowding import Crowding
from fpgui.core.errors import FpguiError, ModelLoadError
from fpgui.core.images import load_image
from fpgui.core.model_files import ModelMetadata, load_crowding, load_model_bundle
from fpgui.core.paths import bundled_model_dir
from fpgui.core.preprocess import normalise_array, to_model_tensor

# Largest absolute difference in L2 distance (embeddings are unit length, distances in [0, 2])
# that bf16 may introduce before we fall back to fp32.
BF16_TOLERANCE = 0.02
DEFAULT_BATCH_SIZE = 32


def choose_device(requested: str | None = None) -> torch.device:
    """``requested`` ("cpu", "cuda", "cuda:1", "mps", "auto"/None) or the best available one."""
    requested = requested or os.environ.get("FPGUI_DEVICE") or "auto"
    if requested != "auto":
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise FpguiError("CUDA was requested but no CUDA device is available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise FpguiError("MPS was requested but is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class EmbeddedFile:
    """One item of :meth:`Embedder.embed_paths`: an embedding, or the error that prevented it."""

    path: Path
    embedding: np.ndarray | None  # (D,) float32
    error: str | None = None


class Embedder:
    """Turns decoded images into ``(N, D)`` float32 embeddings with the bundled (or given) model."""

    def __init__(
        self,
        model_dir: Path | None = None,
        device: str | None = None,
        *,
        allow_bf16: bool = True,
        num_threads: int | None = None,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else bundled_model_dir()
        network, meta = load_model_bundle(self.model_dir)
        self.metadata: ModelMetadata = meta
        self.crowding: Crowding | None = load_crowding(self.model_dir, meta)
        self.device = choose_device(device)
        if num_threads:
            torch.set_num_threads(num_threads)
        self._network: FingerprintNet = network.to(self.device)
        if self.device.type == "cpu":
            self._network = self._network.to(memory_format=torch.channels_last)
        self.precision = "fp32"
        if allow_bf16 and self.device.type == "cpu" and _cpu_bf16_enabled():
            if bf16_matches_fp32(self._network, meta):
                self.precision = "bf16"
        elif self.device.type == "cuda":
            self.precision = "fp16"

    @classmethod
    def from_network(
        cls,
        network: FingerprintNet,
        meta: ModelMetadata,
        device: str | None = "cpu",
        crowding: Crowding | None = None,
    ) -> Embedder:
        """Wrap an in-memory network (training evaluates candidates this way), always fp32."""
        self = cls.__new__(cls)
        self.model_dir = Path()
        self.metadata = meta
        self.crowding = crowding
        self.device = choose_device(device)
        self._network = network.to(self.device).eval()
        self.precision = "fp32"
        return self

    @property
    def model_sha256(self) -> str:
        return self.metadata.weights_sha256

    @property
    def embedding_dim(self) -> int:
        return self.metadata.embedding_dim

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """``(C, S, S)`` float32 input tensor for one decoded image."""
        return to_model_tensor(image, self.metadata)

    @torch.inference_mode()
    def embed_tensors(self, batch: torch.Tensor) -> np.ndarray:
        """``batch``: (N, C, S, S) float32 preprocessed; returns (N, D) float32 embeddings."""
        if batch.shape[0] == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        batch = batch.to(self.device)
        if self.device.type == "cpu":
            batch = batch.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            out = self._network(batch)
        result: np.ndarray = out.float().cpu().numpy().astype(np.float32, copy=False)
        return result

    def embed_images(
        self, images: Sequence[Image.Image], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> np.ndarray:
        """Decoded images in, ``(N, D)`` float32 embeddings out."""
        chunks = [
            self.embed_tensors(
                torch.stack([self.preprocess(im) for im in images[i : i + batch_size]])
            )
            for i in range(0, len(images), batch_size)
        ]
        if not chunks:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        return np.concatenate(chunks)

    def embed_image(self, image: Image.Image) -> np.ndarray:
        """One decoded image in, ``(D,)`` float32 embedding out."""
        result: np.ndarray = self.embed_images([image])[0]
        return result

    def load_for_model(self, path: Path) -> torch.Tensor:
        """Decode ``path`` at the reduced size the model needs and preprocess it."""
        image = load_image(path, min_size=self.metadata.input_size * 2)
        return self.preprocess(image)

    def embed_paths(
        self,
        paths: Sequence[Path],
        batch_size: int = DEFAULT_BATCH_SIZE,
        decode_workers: int | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[EmbeddedFile]:
        """Decode files in background threads while the model runs; yields in input order.

        Files that fail to load are yielded with ``error`` set; the others carry their embedding.
        Stops early (after the batch in flight) when ``should_stop()`` turns true.
        """
        workers = decode_workers or default_decode_workers()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fpgui-decode") as pool:
            pending = [pool.submit(self._safe_load, p) for p in paths[:batch_size]]
            submitted = len(pending)
            start = 0
            while start < len(paths):
                if should_stop is not None and should_stop():
                    for future in pending:
                        future.cancel()
                    return
                end = min(start + batch_size, len(paths))
                batch_futures = pending[: end - start]
                pending = pending[end - start :]
                # Queue the next batch's decodes before running the model on this one.
                next_end = min(submitted + batch_size, len(paths))
                pending.extend(pool.submit(self._safe_load, p) for p in paths[submitted:next_end])
                submitted = next_end
                results = [f.result() for f in batch_futures]
                good = [(i, t) for i, (t, _) in enumerate(results) if t is not None]
                embeddings = self.embed_tensors(torch.stack([t for _, t in good])) if good else None
                row_of = {i: row for row, (i, _) in enumerate(good)}
                for offset, (_, error) in enumerate(results):
                    path = paths[start + offset]
                    if offset in row_of and embeddings is not None:
                        yield EmbeddedFile(path, embeddings[row_of[offset]])
                    else:
                        yield EmbeddedFile(path, None, error or "unknown error")
                start = end

    def _safe_load(self, path: Path) -> tuple[torch.Tensor | None, str | None]:
        try:
            return self.load_for_model(path), None
        except FpguiError as exc:
            return None, str(getattr(exc, "reason", exc))
        except (OSError, ValueError, MemoryError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        if self.precision == "fp16":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()


CPUINFO = Path("/proc/cpuinfo")
# CPU flags of native bf16 arithmetic; without them autocast emulates bf16 and runs slower.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "avx_ne_convert"})


def default_decode_workers() -> int:
    """Threads :meth:`Embedder.embed_paths` decodes with unless told otherwise."""
    return max(1, min(4, os.cpu_count() or 2))


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU does bf16 matrix work natively (AVX512-BF16 or AMX).

    Linux reports the flags in /proc/cpuinfo; elsewhere torch's capability (AVX512 or AMX) is the
    best available guess. Measured here: AVX512-BF16 made ResNet-18 training 1.56x faster at 64 px,
    while an AVX2-only CPU ran bf16 4x slower than fp32.
    """
    try:
        flags = set(CPUINFO.read_text(encoding="ascii", errors="replace").split())
    except OSError:
        capability = torch.backends.cpu.get_cpu_capability().upper()
        return "AVX512" in capability or "AMX" in capability
    return bool(flags & BF16_CPU_FLAGS)


def _cpu_bf16_enabled() -> bool:
    """bf16 on CPU only where the user did not opt out (FPGUI_BF16=0) and the CPU has bf16 units."""
    if os.environ.get("FPGUI_BF16", "1") == "0":
        return False
    return cpu_has_fast_bf16()


def bf16_matches_fp32(network: FingerprintNet, meta: ModelMetadata, samples: int = 16) -> bool:
    """Compare pairwise distances of bf16 and fp32 embeddings on seeded synthetic images."""
    generator = torch.Generator().manual_seed(0)
    size = meta.input_size
    base = torch.rand((samples, len(meta.mean), size // 8, size // 8), generator=generator)
    images = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear")
    normalised = np.stack([normalise_array(image.numpy(), meta) for image in images])
    batch = torch.from_numpy(normalised).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        reference = network(batch).float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            reduced = network(batch).float()
    gap = (torch.cdist(reference, reference) - torch.cdist(reduced, reduced)).abs().max().item()
    return bool(gap <= BF16_TOLERANCE)


def require_model(model_dir: Path | None = None) -> Path:
    """The model folder that will be used, raising ModelLoadError early if it is absent."""
    folder = Path(model_dir) if model_dir is not None else bundled_model_dir()
    if not (folder / "model.json").is_file():
        raise ModelLoadError(f"No fingerprint model in {folder}")
    return folder
