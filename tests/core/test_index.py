"""The fingerprint index: answers match exact search, removed images never come back, and a saved
index survives crashes and refuses to load when it does not fit the model."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fpgui.core.errors import FingerprintIndexError
from fpgui.core.index import (
    DEFAULT_EF,
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_M,
    METADATA_NAME,
    FingerprintIndex,
)
from tests.conftest import unit_vectors as shared_unit_vectors

DIM = 16
MODEL = "a" * 64


def unit_vectors(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    return shared_unit_vectors(n, seed, dim)


def exact(
    ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Brute force with a plain loop per query: (Q, k) ids and true L2 distances."""
    all_ids, all_d = [], []
    for query in queries:
        distances = np.sqrt(((vectors - query) ** 2).sum(axis=1))
        order = np.argsort(distances, kind="stable")[:k]
        all_ids.append(ids[order])
        all_d.append(distances[order])
    return np.array(all_ids), np.array(all_d, dtype=np.float32)


@pytest.fixture
def filled() -> tuple[FingerprintIndex, np.ndarray, np.ndarray]:
    """500 vectors under sparse ids, searched broadly enough to be exact at this size."""
    ids = np.arange(500, dtype=np.int64) * 7 + 3
    vectors = unit_vectors(500, seed=1)
    return FingerprintIndex.build(ids, vectors, DIM, MODEL, ef=500), ids, vectors


def test_query_matches_brute_force(filled: tuple[FingerprintIndex, np.ndarray, np.ndarray]) -> None:
    index, ids, vectors = filled
    queries = unit_vectors(40, seed=2)
    found_ids, found_d = index.query(queries, k=5)
    want_ids, want_d = exact(ids, vectors, queries, 5)
    assert found_ids.dtype == np.int64 and found_d.dtype == np.float32
    np.testing.assert_array_equal(found_ids, want_ids)
    np.testing.assert_allclose(found_d, want_d, atol=1e-5)  # true L2, not squared
    assert np.all(np.diff(found_d, axis=1) >= 0)


def test_single_vector_query_and_self_match(
    filled: tuple[FingerprintIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, vectors = filled
    found_ids, found_d = index.query(vectors[10], k=3)
    assert found_ids.shape == (1, 3)
    assert found_ids[0, 0] == ids[10]
    assert found_d[0, 0] == pytest.approx(0.0, abs=1e-3)


def test_capacity_grows_past_its_start() -> None:
    index = FingerprintIndex(DIM, MODEL, capacity=8, ef=100)
    vectors = unit_vectors(100, seed=3)
    for start in range(0, 100, 10):
        index.add(np.arange(start, start + 10), vectors[start : start + 10])
    assert len(index) == 100
    assert index.capacity >= 100
    assert index.query(vectors[77], k=1)[0][0, 0] == 77


def test_removed_ids_are_never_returned(
    filled: tuple[FingerprintIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, vectors = filled
    removed = ids[::3]
    index.remove([*removed.tolist(), 999_999])  # an unknown id is ignored
    assert len(index) == len(ids) - len(removed)
    assert ids[0] not in index and ids[1] in index
    found_ids, _ = index.query(vectors[::3], k=5)
    assert not np.isin(found_ids, removed).any()
    kept = ~np.isin(ids, removed)
    np.testing.assert_array_equal(found_ids, exact(ids[kept], vectors[kept], vectors[::3], 5)[0])
    np.testing.assert_array_equal(index.live_ids(), np.sort(ids[kept]))


def test_re_adding_replaces_the_vector(
    filled: tuple[FingerprintIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, vectors = filled
    fresh = unit_vectors(2, seed=9)
    index.remove([ids[0]])
    index.add(np.array([ids[0], ids[1]]), fresh)  # one removed id, one live id
    assert len(index) == len(ids)
    found_ids, found_d = index.query(fresh, k=1)
    np.testing.assert_array_equal(found_ids[:, 0], ids[:2])
    np.testing.assert_allclose(found_d[:, 0], 0.0, atol=1e-3)
    assert ids[1] not in index.query(vectors[1], k=1)[0]  # the old vector is gone


def test_k_is_clamped_to_the_live_count() -> None:
    index = FingerprintIndex.build(np.arange(3), unit_vectors(3, seed=4), DIM, MODEL)
    index.remove([1])
    found_ids, found_d = index.query(unit_vectors(2, seed=5), k=10)
    assert found_ids.shape == found_d.shape == (2, 2)
    assert set(found_ids.ravel().tolist()) == {0, 2}


def test_k_larger_than_ef_still_returns_k(
    filled: tuple[FingerprintIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, vectors = filled
    index.ef = 4
    found_ids, _ = index.query(vectors[0], k=50)
    assert found_ids.shape == (1, 50)
    assert len(set(found_ids[0].tolist())) == 50
    assert index.ef == 4


def test_k_above_ef_matches_exact_search(
    filled: tuple[FingerprintIndex, np.ndarray, np.ndarray],
) -> None:
    """hnswlib needs ef >= k; the index searches with max(ef, k) instead of returning worse."""
    index, ids, vectors = filled
    index.ef = 1
    queries = unit_vectors(20, seed=13)
    wide = FingerprintIndex.build(ids, vectors, DIM, MODEL, ef=300)
    np.testing.assert_array_equal(index.query(queries, k=300)[0], wide.query(queries, k=300)[0])
    assert index.ef == 1


def copies_of(
    originals: np.ndarray, rng: np.random.Generator, low: float, high: float
) -> np.ndarray:
    """Unit vectors each at an L2 distance in [low, high) from its row of ``originals`` (unit)."""
    distance = rng.uniform(low, high, len(originals))
    away = rng.standard_normal(originals.shape)
    away -= np.sum(away * originals, axis=1, keepdims=True) * originals
    away /= np.linalg.norm(away, axis=1, keepdims=True)
    angle = 2.0 * np.arcsin(distance / 2.0)[:, None]
    return (np.cos(angle) * originals + np.sin(angle) * away).astype(np.float32)


def test_default_ef_finds_the_true_neighbours_of_copies_and_strangers() -> None:
    """Recall@5 >= 0.99 at the default ef on clustered 128-d fingerprints, shaped like the model's
    (benchmarks/index_real.py): 40 themes of 10 originals (nearest other original ~0.65 away; the
    real corpus: 0.62), each stored with 4 modified copies 0.02-0.7 away (real copies: median
    0.29); queried with fresh copies of stored originals and with new images of the same themes.
    Recall here is ~0.94 at ef=5 and ~0.98 at ef=8, so a too-small default fails."""
    rng = np.random.default_rng(20)
    themes = unit_vectors(40, seed=21, dim=128)
    originals = copies_of(np.repeat(themes, 10, axis=0), rng, 0.45, 0.6)
    stored = np.concatenate([originals, *(copies_of(originals, rng, 0.02, 0.7) for _ in range(4))])
    ids = np.arange(len(stored), dtype=np.int64)
    index = FingerprintIndex(128, MODEL, capacity=len(stored))
    for start in range(0, len(stored), 4):  # hnswlib inserts <= 4 rows on one thread: same graph
        index.add(ids[start : start + 4], stored[start : start + 4])
    assert index.ef == DEFAULT_EF
    copies = copies_of(originals[rng.choice(len(originals), 200, replace=False)], rng, 0.02, 0.7)
    strangers = copies_of(np.repeat(themes, 5, axis=0), rng, 0.45, 0.6)
    for queries in (copies, strangers):
        found = index.query(queries, k=5)[0]
        want = exact(ids, stored, queries, 5)[0]
        hits = sum(len(np.intersect1d(f, w)) for f, w in zip(found, want, strict=True))
        assert hits / want.size >= 0.99


def test_empty_index_answers_with_no_matches() -> None:
    index = FingerprintIndex(DIM, MODEL)
    found_ids, found_d = index.query(unit_vectors(3, seed=6), k=5)
    assert found_ids.shape == found_d.shape == (3, 0)
    assert len(index) == 0 and index.live_ids().shape == (0,)


def test_bad_input_is_refused() -> None:
    index = FingerprintIndex(DIM, MODEL)
    with pytest.raises(FingerprintIndexError, match="dimension"):
        index.add(np.arange(2), unit_vectors(2, seed=0, dim=DIM + 1))
    with pytest.raises(ValueError, match="NaN"):
        index.add(np.arange(1), np.full((1, DIM), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="ids"):
        index.add(np.arange(3), unit_vectors(2, seed=0))
    with pytest.raises(ValueError, match="repeat"):
        index.add(np.array([1, 1]), unit_vectors(2, seed=0))
    with pytest.raises(ValueError, match=">= 0"):
        index.add(np.array([-1]), unit_vectors(1, seed=0))
    with pytest.raises(ValueError, match="floating"):
        index.add(np.arange(1), np.ones((1, DIM), dtype=np.int32))
    with pytest.raises(FingerprintIndexError, match="dimension"):
        index.query(np.zeros(DIM + 1, dtype=np.float32))
    assert len(index) == 0


# --- persistence --------------------------------------------------------------------------------


def test_save_load_round_trip_gives_identical_answers(
    tmp_path: Path, filled: tuple[FingerprintIndex, np.ndarray, np.ndarray]
) -> None:
    index, ids, _ = filled
    index.remove(ids[:50].tolist())
    index.save(tmp_path)
    loaded = FingerprintIndex.load(tmp_path, dim=DIM, model_sha256=MODEL)
    queries = unit_vectors(30, seed=7)
    for got, want in zip(loaded.query(queries, 5), index.query(queries, 5), strict=True):
        np.testing.assert_array_equal(got, want)
    assert len(loaded) == len(index)
    assert loaded.ef == index.ef and loaded.dim == DIM and loaded.model_sha256 == MODEL
    np.testing.assert_array_equal(loaded.live_ids(), index.live_ids())
    meta = json.loads((tmp_path / METADATA_NAME).read_text())
    assert (meta["space"], meta["count"], meta["max_id"]) == ("l2", 450, int(ids.max()))

    loaded.add(ids[:1], unit_vectors(1, seed=8))  # a removed id comes back after loading
    assert ids[0] in loaded


def test_a_new_index_uses_the_defaults_and_saves_them(tmp_path: Path) -> None:
    index = FingerprintIndex.build(np.arange(10), unit_vectors(10, seed=14), DIM, MODEL)
    assert index.ef == DEFAULT_EF
    index.save(tmp_path)
    meta = json.loads((tmp_path / METADATA_NAME).read_text())
    assert (meta["m"], meta["ef_construction"], meta["ef"]) == (
        DEFAULT_M, DEFAULT_EF_CONSTRUCTION, DEFAULT_EF,
    )  # fmt: skip


def test_an_old_lower_saved_ef_is_raised_on_load(
    tmp_path: Path, filled: tuple[FingerprintIndex, np.ndarray, np.ndarray]
) -> None:
    index, _, _ = filled
    index.ef = DEFAULT_EF // 2  # as saved by an fpgui with a lower default
    index.save(tmp_path)
    assert FingerprintIndex.load(tmp_path).ef == DEFAULT_EF
    index.ef = DEFAULT_EF + 7  # a deliberately wider search is kept
    index.save(tmp_path)
    assert FingerprintIndex.load(tmp_path).ef == DEFAULT_EF + 7


def test_saving_again_keeps_one_graph_file(
    tmp_path: Path, filled: tuple[FingerprintIndex, np.ndarray, np.ndarray]
) -> None:
    index, _, _ = filled
    index.save(tmp_path)
    index.remove([3])
    index.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in FingerprintIndex.saved_files(tmp_path)
    )
    assert 3 not in FingerprintIndex.load(tmp_path)


def test_load_refuses_a_different_model_or_dimension(
    tmp_path: Path, filled: tuple[FingerprintIndex, np.ndarray, np.ndarray]
) -> None:
    filled[0].save(tmp_path)
    with pytest.raises(FingerprintIndexError, match="dimension 16, the model produces 128"):
        FingerprintIndex.load(tmp_path, dim=128)
    with pytest.raises(FingerprintIndexError, match="built with model aaaaaaaaaaaa"):
        FingerprintIndex.load(tmp_path, model_sha256="b" * 64)


def test_load_refuses_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FingerprintIndexError, match="index.json is missing"):
        FingerprintIndex.load(tmp_path)
    FingerprintIndex.build(np.arange(3), unit_vectors(3, seed=0), DIM, MODEL).save(tmp_path)
    FingerprintIndex.saved_files(tmp_path)[1].unlink()
    with pytest.raises(FingerprintIndexError, match="is missing"):
        FingerprintIndex.load(tmp_path)


def test_load_refuses_a_corrupted_graph(
    tmp_path: Path, filled: tuple[FingerprintIndex, np.ndarray, np.ndarray]
) -> None:
    filled[0].save(tmp_path)
    graph = FingerprintIndex.saved_files(tmp_path)[1]
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(FingerprintIndexError, match="does not match its metadata"):
        FingerprintIndex.load(tmp_path)


def test_load_refuses_corrupt_metadata(
    tmp_path: Path, filled: tuple[FingerprintIndex, np.ndarray, np.ndarray]
) -> None:
    filled[0].save(tmp_path)
    meta_path = tmp_path / METADATA_NAME
    meta_path.write_text(meta_path.read_text()[:40])
    with pytest.raises(FingerprintIndexError, match="corrupt"):
        FingerprintIndex.load(tmp_path)


def failing_on_call(number: int) -> Callable[[str | Path, str | Path], None]:
    """An ``os.replace`` that fails with ENOSPC on its ``number``-th call."""
    real = os.replace
    calls = 0

    def replace(src: str | Path, dst: str | Path) -> None:
        nonlocal calls
        calls += 1
        if calls == number:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst)

    return replace


@pytest.mark.parametrize("failing_call", [1, 2], ids=["graph-write-fails", "metadata-write-fails"])
def test_failed_save_leaves_the_previous_save_loadable(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    filled: tuple[FingerprintIndex, np.ndarray, np.ndarray],
    failing_call: int,
) -> None:
    index, ids, vectors = filled
    index.save(tmp_path)
    queries = unit_vectors(10, seed=11)
    before = FingerprintIndex.load(tmp_path).query(queries, 5)

    index.remove(ids[:100].tolist())
    index.add(np.array([10_000]), unit_vectors(1, seed=12))
    monkeypatch.setattr(os, "replace", failing_on_call(failing_call))
    with pytest.raises(FingerprintIndexError, match="No space left"):
        index.save(tmp_path)
    monkeypatch.undo()

    reloaded = FingerprintIndex.load(tmp_path)
    assert len(reloaded) == len(ids) and 10_000 not in reloaded
    for got, want in zip(reloaded.query(queries, 5), before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind

    index.save(tmp_path)  # the next save succeeds and tidies up
    assert 10_000 in FingerprintIndex.load(tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_vectors_returns_the_stored_fingerprints_of_live_ids(
    filled: tuple[FingerprintIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, vectors = filled
    stored = index.vectors(ids[[5, 2, 9]])
    assert stored.dtype == np.float32 and stored.shape == (3, DIM)
    np.testing.assert_allclose(stored, vectors[[5, 2, 9]], atol=1e-6)
    assert index.vectors(np.array([], np.int64)).shape == (0, DIM)
    index.remove([ids[2]])
    with pytest.raises(KeyError, match=str(ids[2])):
        index.vectors(ids[[5, 2]])
