"""Add-folder throughput: the whole add pipeline against its two yardsticks, in one run.

    (a) the model's forward pass alone on already-decoded tensors, same batch size: the limit
    (b) ``imagehash.phash`` over the same files: what a user could get from a perceptual hash
    (c) decoding and preprocessing alone, in as many threads as the pipeline decodes with: the
        other limit. Decode and forward pass share the same cores, so the pipeline can reach at
        most ``1 / (1/a + 1/c)``; the script prints the pipeline's ratio to that bound too.

The pipeline is everything ``fpgui add`` does: scan, stat, SHA-256, header read, decode (reduced
size for JPEG), preprocess, embed, SQLite commit, index save. Goal: >= 0.7 of (a), faster than (b).

    python benchmarks/add_folder.py                     # 48 generated 2-12 MP JPEGs, cached
    python benchmarks/add_folder.py --folder ~/Pictures --model resources/model
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fpgui.core.embedder import Embedder, default_decode_workers
from fpgui.core.library import Library
from fpgui.core.model_files import ModelMetadata, save_model_bundle

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE = REPO_ROOT / ".cache" / "bench"
# Photo sizes cycled through: 2, 5, 8 and 12 megapixels at 4:3.
SIZES = [(1632, 1224), (2592, 1944), (3264, 2448), (4000, 3000)]


def photo(seed: int, size: tuple[int, int]) -> Image.Image:
    """A photo-like JPEG source: smooth colour fields and shapes, upscaled, with sensor noise."""
    rng = np.random.default_rng(seed)
    w, h = size[0] // 8, size[1] // 8
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.5, 4), rng.uniform(0.5, 4), rng.uniform(0, 6.28)
        channels.append(127 + 100 * np.sin(x / w * fx * 6.28 + phase) * np.cos(y / h * fy * 6.28))
    small = np.stack(channels, axis=-1)
    for _ in range(12):
        cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(4, max(5, h // 3))
        small[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = rng.integers(0, 255, 3)
    big = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).resize(
        size, Image.Resampling.BICUBIC
    )
    noisy = np.asarray(big, dtype=np.int16) + rng.integers(-8, 9, (size[1], size[0], 3), np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def photo_folder(count: int) -> Path:
    folder = CACHE / f"photos-{count}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        target = folder / f"photo_{i:04d}.jpg"
        if not target.exists():
            photo(i, SIZES[i % len(SIZES)]).save(target, quality=90)
    return folder


def model_dir(requested: Path | None, scratch: Path) -> Path:
    bundled = REPO_ROOT / "resources" / "model"
    if requested is not None:
        return requested
    if (bundled / "model.json").is_file():
        return bundled
    torch.manual_seed(0)
    from fpgui.core.architecture import FingerprintNet

    print("note: no bundled model; using a randomly initialised one (same architecture)")
    save_model_bundle(FingerprintNet().eval(), ModelMetadata(name="bench-random", version="0"),
                      scratch / "model")  # fmt: skip
    return scratch / "model"


def forward_rate(embedder: Embedder, files: list[Path], batch_size: int) -> float:
    """Images/s of the model alone on tensors decoded beforehand."""
    tensors = torch.stack([embedder.load_for_model(f) for f in files])
    embedder.embed_tensors(tensors[:batch_size])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(tensors), batch_size):
        embedder.embed_tensors(tensors[i : i + batch_size])
    return len(tensors) / (time.perf_counter() - start)


def decode_rate(embedder: Embedder, files: list[Path], workers: int) -> float:
    """Images/s of decoding (reduced-size JPEG) and preprocessing alone, ``workers`` threads."""
    from concurrent.futures import ThreadPoolExecutor

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(embedder.load_for_model, files):
            pass
    return len(files) / (time.perf_counter() - start)


def phash_rate(files: list[Path]) -> float:
    import imagehash

    start = time.perf_counter()
    for f in files:
        with Image.open(f) as im:
            imagehash.phash(im)
    return len(files) / (time.perf_counter() - start)


def pipeline_rate(embedder: Embedder, folder: Path, scratch: Path, batch_size: int) -> float:
    library = Library.open(scratch / "library", embedder)
    start = time.perf_counter()
    summary = None
    for step in library.add([folder], batch_size=batch_size):
        summary = step.summary
    elapsed = time.perf_counter() - start
    library.close()
    assert summary is not None and not summary.failed, summary
    return summary.added / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="JPEGs to add (default: generated)")
    parser.add_argument("--count", type=int, default=48, help="generated photos (default 48)")
    parser.add_argument("--model", type=Path, help="model folder (default: bundled or random)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    folder = args.folder or photo_folder(args.count)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg"})
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        embedder = Embedder(model_dir(args.model, scratch), device=args.device)
        meta = embedder.metadata
        print(
            f"{len(files)} JPEGs in {folder}; model {meta.model_id} (input {meta.input_size}px) "
            f"on {embedder.device}, {embedder.precision}, {torch.get_num_threads()} threads, "
            f"batch {args.batch_size}"
        )
        forward = forward_rate(embedder, files, args.batch_size)
        phash = phash_rate(files)
        workers = default_decode_workers()
        decode = decode_rate(embedder, files, workers)
        pipeline = pipeline_rate(embedder, folder, scratch, args.batch_size)
    shared = 1 / (1 / forward + 1 / decode)
    print(f"(a) model forward pass on decoded tensors: {forward:8.1f} images/s")
    print(f"(b) imagehash.phash:                       {phash:8.1f} images/s")
    print(f"(c) decode + preprocess, {workers} threads:        {decode:8.1f} images/s")
    print(f"    (a) and (c) on the same cores:         {shared:8.1f} images/s")
    print(f"    fpgui add (whole pipeline):            {pipeline:8.1f} images/s")
    print(f"ratio to (a): {pipeline / forward:.2f}  (goal >= 0.70)")
    print(f"ratio to (b): {pipeline / phash:.2f}  (goal > 1.00)")
    print(f"ratio to (c): {pipeline / decode:.2f}; to (a)+(c) sharing: {pipeline / shared:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
