"""Index scale: build time, memory, query latency and recall@k of the fingerprint index.

Random unit 128-d vectors are the hard case for a graph index (no cluster structure to exploit),
so figures here are a floor for real embeddings (``index_real.py`` measures those). Exact search
(numpy matmul over every vector) on the same queries gives the ground truth and the brute-force
latency the ratios compare against. M and ef_construction default to the library's.

    python benchmarks/index_scale.py                       # 1,000,000 vectors, the issue's goal
    python benchmarks/index_scale.py --n 100000 --ef 64,128,256
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

from fpgui.core.index import DEFAULT_EF_CONSTRUCTION, DEFAULT_M, FingerprintIndex

GOAL_RECALL = 0.99
GOAL_MEDIAN_MS = 1.0
ADD_CHUNK = 50_000
EXACT_CHUNK = 50_000  # database rows per matmul: (queries, EXACT_CHUNK) float32 at a time


@dataclass(frozen=True)
class SearchFigures:
    ef: int
    median_ms: float
    p95_ms: float
    recall: float


def unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """``(n, dim)`` float32, each row of L2 norm 1; generated in chunks to bound memory."""
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc); 0 where unavailable."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except OSError:
        return 0.0
    return pages * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_index(
    vectors: np.ndarray, m: int, ef_construction: int
) -> tuple[FingerprintIndex, float]:
    """The index over ``vectors`` (ids 0..N-1) and its build time in seconds."""
    index = FingerprintIndex(
        vectors.shape[1], "benchmark", m=m, ef_construction=ef_construction, capacity=len(vectors)
    )
    start = time.perf_counter()
    for first in range(0, len(vectors), ADD_CHUNK):
        chunk = vectors[first : first + ADD_CHUNK]
        index.add(np.arange(first, first + len(chunk), dtype=np.int64), chunk)
        elapsed = time.perf_counter() - start
        print(f"  built {first + len(chunk):>9,} in {elapsed:7.1f} s", file=sys.stderr)
    return index, time.perf_counter() - start


def exact_top_k(
    vectors: np.ndarray, norms: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, float]:
    """``(Q, k)`` ids of the exact nearest neighbours (L2) and the seconds the search took.

    ``norms`` (N,) are the squared lengths of ``vectors``, computed once as an exact index would.
    """
    start = time.perf_counter()
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    best_d = np.zeros((len(queries), 0), dtype=np.float32)
    for first in range(0, len(vectors), EXACT_CHUNK):
        block = vectors[first : first + EXACT_CHUNK]
        # squared L2 up to the per-query constant |q|^2, which does not change the ranking
        d = norms[first : first + len(block)][None, :] - 2.0 * (queries @ block.T)
        part = np.argpartition(d, min(k, d.shape[1] - 1), axis=1)[:, :k]
        best_ids = np.concatenate([best_ids, part + first], axis=1)
        best_d = np.concatenate([best_d, np.take_along_axis(d, part, axis=1)], axis=1)
        keep = np.argsort(best_d, axis=1)[:, :k]
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
        best_d = np.take_along_axis(best_d, keep, axis=1)
    return best_ids, time.perf_counter() - start


def single_query_exact_ms(
    vectors: np.ndarray, norms: np.ndarray, queries: np.ndarray, k: int, repeat: int
) -> float:
    """Median milliseconds of exact search for one query at a time (the no-index baseline)."""
    times = []
    for query in queries[:repeat]:
        start = time.perf_counter()
        exact_top_k(vectors, norms, query[None, :], k)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure_search(
    index: FingerprintIndex, queries: np.ndarray, truth: np.ndarray, k: int, ef: int
) -> SearchFigures:
    """One query at a time, as the app issues them: latency percentiles and recall@k."""
    index.ef = ef
    for query in queries[:20]:  # warm caches
        index.query(query, k)
    times, hits = [], 0
    for query, expected in zip(queries, truth, strict=True):
        start = time.perf_counter()
        found, _ = index.query(query, k)
        times.append((time.perf_counter() - start) * 1000)
        hits += len(np.intersect1d(found[0], expected))
    times.sort()
    return SearchFigures(
        ef=ef,
        median_ms=statistics.median(times),
        p95_ms=times[int(0.95 * (len(times) - 1))],
        recall=hits / (len(queries) * k),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors in the index")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--m", type=int, default=DEFAULT_M, help="hnswlib M (graph degree)")
    parser.add_argument("--ef-construction", type=int, default=DEFAULT_EF_CONSTRUCTION)
    parser.add_argument(
        "--ef", default="64,128,256,512", help="search ef, comma-separated to sweep"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    efs = [int(value) for value in args.ef.split(",")]

    rng = np.random.default_rng(args.seed)
    vectors = unit_vectors(rng, args.n, args.dim)
    queries = unit_vectors(rng, args.queries, args.dim)
    rss_before = rss_mib()
    print(f"building {args.n:,} x {args.dim} (M={args.m}, ef_construction={args.ef_construction})",
          file=sys.stderr)  # fmt: skip
    index, build_s = build_index(vectors, args.m, args.ef_construction)
    rss_growth = rss_mib() - rss_before

    norms = np.einsum("ij,ij->i", vectors, vectors)
    truth, exact_batch_s = exact_top_k(vectors, norms, queries, args.k)
    repeat = min(20, args.queries)
    exact_single_ms = single_query_exact_ms(vectors, norms, queries, args.k, repeat)
    results = [measure_search(index, queries, truth, args.k, ef) for ef in efs]

    print(f"\nIndex scale: {args.n:,} random unit {args.dim}-d vectors, M={args.m}, "
          f"ef_construction={args.ef_construction}, {args.queries:,} queries, "
          f"k={args.k}")  # fmt: skip
    print(f"build time            {build_s:10.1f} s   ({args.n / build_s:,.0f} vectors/s)")
    print(f"index size            {index.size_bytes / 2**20:10.1f} MiB "
          f"({index.size_bytes / args.n:.0f} B/vector; RSS grew {rss_growth:.0f} MiB)")  # fmt: skip
    print(f"peak RSS              {peak_rss_mib():10.1f} MiB (includes the raw vectors)")
    print(f"exact search          {exact_single_ms:10.2f} ms per single query; "
          f"{exact_batch_s * 1000 / args.queries:.3f} ms/query batched")  # fmt: skip
    print()
    header = (
        f"{'ef':>5} {'median ms':>10} {'p95 ms':>8} {'recall@' + str(args.k):>9} "
        f"{'recall/goal':>11} {'median/goal':>11} {'speed-up vs exact':>18}"
    )
    print(header)
    print("-" * len(header))
    for row in results:
        print(
            f"{row.ef:>5} {row.median_ms:>10.3f} {row.p95_ms:>8.3f} {row.recall:>9.4f} "
            f"{row.recall / GOAL_RECALL:>11.3f} {row.median_ms / GOAL_MEDIAN_MS:>11.3f} "
            f"{exact_single_ms / row.median_ms:>17.0f}x"
        )
    print(f"\ngoals: recall@{args.k} >= {GOAL_RECALL}, median query < {GOAL_MEDIAN_MS} ms")


if __name__ == "__main__":
    main()
