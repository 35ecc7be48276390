"""Checking a query: the nearest library images, the verdict and the JSON the CLI prints."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from fpgui.core.embedder import Embedder
from fpgui.core.errors import ImageLoadError
from fpgui.core.library import Library
from fpgui.core.matching import check, error_json_dict
from tests.conftest import make_photo


@pytest.fixture
def library(tmp_path: Path, random_model_dir: Path, photo_folder: Path) -> Library:
    lib = Library.open(tmp_path / "library", Embedder(random_model_dir, device="cpu"))
    lib.add_all([photo_folder])
    yield lib
    lib.close()


def test_exact_copy_is_rank_one_at_distance_zero(library: Library, photo_folder: Path) -> None:
    query = photo_folder / "photo_5.jpg"
    result = check(library, query)
    assert result.matches[0].rank == 1
    assert result.matches[0].path == str(query)
    assert result.matches[0].distance == pytest.approx(0.0, abs=1e-3)
    assert result.is_copy
    assert result.sha256 == hashlib.sha256(query.read_bytes()).hexdigest()
    assert result.matches[0].sha256 == result.sha256
    assert [m.rank for m in result.matches] == [1, 2, 3, 4, 5]
    distances = [m.distance for m in result.matches]
    assert distances == sorted(distances)


def test_distinct_image_verdict_follows_the_threshold(library: Library, tmp_path: Path) -> None:
    query = tmp_path / "stranger.png"
    make_photo(1234).save(query)
    result = check(library, query)
    nearest = result.matches[0].distance
    assert result.threshold == library.embedder.metadata.threshold
    assert result.is_copy == (nearest < result.threshold)
    assert check(library, query, threshold=nearest + 1e-4).is_copy
    assert not check(library, query, threshold=max(nearest - 1e-4, 1e-6)).is_copy


def test_bytes_and_decoded_image_queries(library: Library, photo_folder: Path) -> None:
    data = (photo_folder / "photo_2.jpg").read_bytes()
    from_bytes = check(library, data, name="pasted")
    assert from_bytes.query == "pasted" and from_bytes.is_copy
    assert from_bytes.sha256 == hashlib.sha256(data).hexdigest()

    from PIL import Image

    decoded = Image.open(io.BytesIO(data))
    decoded.load()
    assert check(library, decoded).matches[0].path == str(photo_folder / "photo_2.jpg")


def test_top_k_is_clamped_to_library_size(library: Library, photo_folder: Path) -> None:
    assert len(check(library, photo_folder / "photo_0.jpg", top_k=50).matches) == 8
    assert len(check(library, photo_folder / "photo_0.jpg", top_k=1).matches) == 1


def test_empty_library_has_no_match(tmp_path: Path, random_model_dir: Path) -> None:
    with Library.open(tmp_path / "empty", Embedder(random_model_dir, device="cpu")) as empty:
        query = tmp_path / "q.jpg"
        make_photo(3).save(query)
        result = check(empty, query)
    assert result.matches == [] and not result.is_copy


def test_undecodable_query_raises_with_reason(library: Library, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(ImageLoadError, match="not an image"):
        check(library, bad)
    with pytest.raises(ImageLoadError, match="file not found"):
        check(library, tmp_path / "absent.jpg")


def test_json_schema_is_exactly_the_documented_one(library: Library, photo_folder: Path) -> None:
    data = check(library, photo_folder / "photo_1.jpg", top_k=2).to_json_dict()
    assert list(data) == ["query", "sha256", "is_copy", "threshold", "matches"]
    assert list(data["matches"][0]) == ["rank", "path", "sha256", "distance"]
    assert isinstance(data["matches"][0]["distance"], float)
    assert error_json_dict("q.jpg", "boom") == {"query": "q.jpg", "error": "boom"}
