"""Check latency: one 12 MP JPEG against a 10,000-image library, warm, median of 20 runs.

The library's 10,000 fingerprints are random unit vectors written straight into the catalogue
(reading 10,000 real photos would take an hour on a laptop and changes nothing measured here:
a check never touches library images, only their fingerprints and rows). The index is then built
from those stored fingerprints the way a library opens after a crash, and the query photo itself
is added through the normal pipeline so that the check has a real exact match to find.

    python benchmarks/check_latency.py
    python benchmarks/check_latency.py --library-size 100000 --model resources/model
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fpgui.core.catalogue import Catalogue
from fpgui.core.embedder import Embedder
from fpgui.core.library import CATALOGUE_FILE, Library
from fpgui.core.matching import check

sys.path.insert(0, str(Path(__file__).resolve().parent))
from add_folder import model_dir, photo  # noqa: E402

GOAL_MS = 100.0


def fill_catalogue(folder: Path, embedder: Embedder, count: int) -> float:
    """Insert ``count`` synthetic rows with random unit fingerprints; returns seconds taken."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((count, embedder.embedding_dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    start = time.perf_counter()
    catalogue = Catalogue(folder / CATALOGUE_FILE)
    with catalogue.transaction():
        for i, vector in enumerate(vectors):
            image_id = catalogue.insert_image(
                path=f"/synthetic/photo_{i:07d}.jpg", size=3_000_000, mtime_ns=i,
                sha256=f"{i:064x}", width=4000, height=3000, added_at="2024-01-01T00:00:00",
            )  # fmt: skip
            catalogue.put_embedding(image_id, embedder.model_sha256, vector)
    catalogue.close()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: bundled or random)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--library-size", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        embedder = Embedder(model_dir(args.model, scratch), device=args.device)
        query = scratch / "query_12mp.jpg"
        photo(12345, (4000, 3000)).save(query, quality=90)
        print(
            f"model {embedder.metadata.model_id} (input {embedder.metadata.input_size}px) on "
            f"{embedder.device}, {embedder.precision}, {torch.get_num_threads()} threads; "
            f"query {query.stat().st_size / 1e6:.1f} MB, 4000x3000"
        )
        print(
            f"NOTE: the {args.library_size:,} library fingerprints are random unit vectors "
            "inserted directly into the catalogue, not embeddings of real photos"
        )
        seconds = fill_catalogue(scratch / "library", embedder, args.library_size)
        print(f"catalogue filled in {seconds:.1f} s")

        start = time.perf_counter()
        library = Library.open(scratch / "library", embedder)  # builds the index from the rows
        print(f"index rebuilt from stored fingerprints in {time.perf_counter() - start:.2f} s")
        library.add_all([query])

        for _ in range(3):  # warm: model, page cache, allocator
            check(library, query)
        totals, searches = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            result = check(library, query)
            totals.append((time.perf_counter() - start) * 1000)
            vector = embedder.embed_image(photo(1, (64, 48)))
            start = time.perf_counter()
            library.nearest(vector, 5)
            searches.append((time.perf_counter() - start) * 1000)
        library.close()

    assert result.matches[0].path == str(query) and result.is_copy
    median = statistics.median(totals)
    print(f"library: {args.library_size + 1:,} images; runs: {args.runs}")
    print(f"check latency median {median:.1f} ms, min {min(totals):.1f}, max {max(totals):.1f}")
    print(f"  of which index search + row lookup: median {statistics.median(searches):.2f} ms")
    print(f"ratio to the goal ({GOAL_MS:.0f} ms): {median / GOAL_MS:.2f}  (goal < 1.00)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
