"""The SQLite catalogue: schema, round trips, transactions and refusing what it cannot read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fpgui.core.catalogue import SCHEMA_VERSION, Catalogue
from fpgui.core.errors import LibraryError


@pytest.fixture
def catalogue(tmp_path: Path) -> Catalogue:
    opened = Catalogue(tmp_path / "catalogue.sqlite")
    yield opened
    opened.close()


def _insert(catalogue: Catalogue, path: str, sha: str = "ab" * 32) -> int:
    return catalogue.insert_image(
        path=path, size=10, mtime_ns=20, sha256=sha, width=3, height=4, added_at="2024-01-01"
    )


def test_new_catalogue_is_wal_with_schema_version(catalogue: Catalogue) -> None:
    assert catalogue.get_meta("schema_version") == str(SCHEMA_VERSION)
    mode = catalogue._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_embedding_round_trip_and_model_filter(catalogue: Catalogue) -> None:
    vectors = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    with catalogue.transaction():
        ids = [_insert(catalogue, f"/p/{i}.jpg", sha=f"{i:064x}") for i in range(3)]
        for image_id, vector in zip(ids, vectors, strict=True):
            catalogue.put_embedding(
                image_id, "model-a" if image_id != ids[2] else "model-b", vector
            )

    got_ids, got = catalogue.embeddings("model-a", 8)
    assert got_ids.tolist() == ids[:2]
    np.testing.assert_array_equal(got, vectors[:2])
    assert catalogue.ids_without_embedding("model-a") == [ids[2]]
    assert catalogue.count_embedded("model-b") == 1


def test_transaction_rolls_back_and_generation_counts_commits(catalogue: Catalogue) -> None:
    start = catalogue.generation()
    with catalogue.transaction():
        _insert(catalogue, "/p/a.jpg")
    assert catalogue.generation() == start + 1
    with pytest.raises(RuntimeError), catalogue.transaction():
        _insert(catalogue, "/p/b.jpg")
        raise RuntimeError("interrupted")
    assert [r.path for r in catalogue.all_images()] == ["/p/a.jpg"]
    assert catalogue.generation() == start + 1


def test_deleting_an_image_deletes_its_fingerprint_and_notes(catalogue: Catalogue) -> None:
    with catalogue.transaction():
        image_id = _insert(catalogue, "/p/a.jpg")
        catalogue.put_embedding(image_id, "m", np.ones(4, np.float32))
        catalogue.put_duplicate(
            path="/p/b.jpg", image_id=image_id, size=1, mtime_ns=1, added_at="x"
        )
    with catalogue.transaction():
        catalogue.delete_image(image_id)
    assert catalogue.count_embedded("m") == 0
    assert catalogue.duplicate_by_path("/p/b.jpg") is None
    assert catalogue.orphan_embedding_ids() == []


def test_images_under_a_folder_does_not_match_siblings(catalogue: Catalogue) -> None:
    with catalogue.transaction():
        for i, path in enumerate(["/a/b/1.jpg", "/a/b/c/2.jpg", "/a/bc/3.jpg", "/a/b"]):
            _insert(catalogue, path, sha=f"{i:064x}")
    assert sorted(r.path for r in catalogue.images_under("/a/b")) == [
        "/a/b",
        "/a/b/1.jpg",
        "/a/b/c/2.jpg",
    ]
    assert [r.path for r in catalogue.images_under("/a/b/1.jpg")] == ["/a/b/1.jpg"]


def test_catalogue_from_a_newer_fpgui_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.sqlite"
    first = Catalogue(path)
    with first.transaction():
        first.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    first.close()
    with pytest.raises(LibraryError, match="newer fpgui"):
        Catalogue(path)


def test_garbage_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LibraryError, match="catalogue.sqlite"):
        Catalogue(path)
