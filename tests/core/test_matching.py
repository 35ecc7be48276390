"""Checking a query: the nearest library images, the verdict and the JSON the CLI prints."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fpgui.core.embedder import Embedder
from fpgui.core.errors import ImageLoadError
from fpgui.core.images import load_image
from fpgui.core.library import Library, Neighbourhood
from fpgui.core.matching import CheckResult, check, error_json_dict, second_distance
from fpgui.core.model_files import METADATA_FILE, read_metadata
from fpgui.core.verdict import Verdict
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
    assert list(data) == [
        "query", "sha256", "is_copy", "threshold", "verdict", "ratio", "ratio_threshold", "matches",
    ]  # fmt: skip
    assert list(data["matches"][0]) == ["rank", "path", "sha256", "distance"]
    assert isinstance(data["matches"][0]["distance"], float)
    assert error_json_dict("q.jpg", "boom") == {"query": "q.jpg", "error": "boom"}


# -- the two-signal verdict ------------------------------------------------------------------------
#
# The library holds the eight photos plus ``photo_1_twin.png``: photo_1's very pixels in another
# file, so a near-duplicate of it (fingerprint distance 0). The query is photo_1 with a white
# caption: its nearest images are photo_1 and the twin at the same distance d1, then the nearest
# *distinct* photo at d2. Each test writes a model bundle (the random model's weights with
# calibrated metadata) with thresholds placed around the measured d1 and d1/d2, so that each branch
# of the rule is taken.


def calibrated_model(source: Path, folder: Path, **calibration: float) -> Path:
    """A copy of the model bundle in ``source`` whose metadata carries ``calibration``."""
    shutil.copytree(source, folder)
    meta = dataclasses.replace(read_metadata(folder), **calibration)
    (folder / METADATA_FILE).write_text(meta.to_json(), encoding="utf-8")
    return folder


@dataclass(frozen=True)
class Measured:
    d1: float  # query to photo_1 (and to its twin)
    d2: float  # query to the nearest photo other than photo_1
    second_path: str  # that photo


@pytest.fixture(scope="module")
def twin_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("twin-photos")
    for i in range(8):
        make_photo(i).save(folder / f"photo_{i}.jpg", quality=92)
    load_image(folder / "photo_1.jpg").save(folder / "photo_1_twin.png")
    return folder


@pytest.fixture(scope="module")
def twin_library(
    tmp_path_factory: pytest.TempPathFactory, random_model_dir: Path, twin_folder: Path
) -> Iterator[Library]:
    """Shared by the tests below, each of which puts its own calibrated model in."""
    embedder = Embedder(random_model_dir, device="cpu", allow_bf16=False)
    lib = Library.open(tmp_path_factory.mktemp("twins") / "library", embedder)
    assert lib.add_all([twin_folder]).added == 9
    yield lib
    lib.close()


@pytest.fixture(scope="module")
def captioned(twin_folder: Path) -> Image.Image:
    image = load_image(twin_folder / "photo_1.jpg")
    ImageDraw.Draw(image).rectangle((10, 10, 120, 40), fill="white")
    return image


@pytest.fixture(scope="module")
def measured(
    twin_library: Library, captioned: Image.Image, twin_folder: Path, random_model_dir: Path
) -> Measured:
    twin_library.use_embedder(Embedder(random_model_dir, device="cpu", allow_bf16=False))
    matches = check(twin_library, captioned, top_k=10).matches
    originals = {str(twin_folder / "photo_1.jpg"), str(twin_folder / "photo_1_twin.png")}
    assert {m.path for m in matches[:2]} == originals
    assert matches[0].distance == pytest.approx(matches[1].distance, abs=1e-6)
    # The premise of the near-duplicate rule: every other photo is far from photo_1 (> 0.2 with
    # this model), so the radius (the strict threshold, at most 0.17 below) keeps them distinct.
    embedder = twin_library.embedder
    original = embedder.embed_image(load_image(twin_folder / "photo_1.jpg"))
    for match in matches[2:]:
        other = embedder.embed_image(load_image(match.path))
        assert float(np.linalg.norm(other - original)) > 0.2
    d1, d2 = matches[0].distance, matches[2].distance
    assert 0.1 < d1 < 0.8 * d2  # the caption moves the query, less than another photo is away
    return Measured(d1, d2, matches[2].path)


def check_with(library: Library, model: Path, query: Image.Image, top_k: int = 5) -> CheckResult:
    library.use_embedder(Embedder(model, device="cpu", allow_bf16=False))
    return check(library, query, top_k=top_k)


def test_copy_by_distance(
    twin_library: Library, captioned: Image.Image, measured: Measured, random_model_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    d1, d2 = measured.d1, measured.d2
    model = calibrated_model(
        random_model_dir, tmp_path / "model", threshold=d1 * 1.1,
        ratio_threshold=(d1 / d2) * 0.9, reference_distance=1.5,
    )  # fmt: skip
    result = check_with(twin_library, model, captioned)
    assert result.verdict is Verdict.COPY and result.is_copy
    assert result.threshold == pytest.approx(d1 * 1.1)
    assert result.second_distance == pytest.approx(d2)
    assert result.ratio == pytest.approx(d1 / d2)
    assert result.ratio > result.ratio_threshold  # the distance alone decided it
    assert result.possible_threshold is None and result.possible_ratio_threshold is None
    assert result.reference_distance == pytest.approx(1.5)
    assert result.evidence_text() == (
        f"distance {d1:.2f} (threshold {d1 * 1.1:.2f}); {d1 / d2:.2f} x the next distinct image "
        f"(ratio threshold {(d1 / d2) * 0.9:.2f})"
    )


def test_copy_by_ratio_when_the_distance_is_above_the_threshold(
    twin_library: Library, captioned: Image.Image, measured: Measured, random_model_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    d1, d2 = measured.d1, measured.d2
    model = calibrated_model(
        random_model_dir, tmp_path / "model", threshold=d1 * 0.9,
        ratio_threshold=(d1 / d2) * 1.1, reference_distance=1.5,
    )  # fmt: skip
    result = check_with(twin_library, model, captioned)
    assert result.matches[0].distance > result.threshold
    assert result.verdict is Verdict.COPY and result.is_copy
    assert result.ratio == pytest.approx(d1 / d2)
    assert result.ratio_threshold == pytest.approx((d1 / d2) * 1.1)
    assert result.headline() == f"Copy of {Path(result.matches[0].path).name}"
    data = result.to_json_dict()
    assert (data["verdict"], data["is_copy"]) == ("copy", True)
    assert data["ratio"] == pytest.approx(d1 / d2)
    assert data["ratio_threshold"] == pytest.approx((d1 / d2) * 1.1)


def test_the_settings_override_moves_only_the_strict_distance(
    twin_library: Library, captioned: Image.Image, measured: Measured, random_model_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    d1, d2 = measured.d1, measured.d2
    model = calibrated_model(
        random_model_dir, tmp_path / "model", threshold=d1 * 0.9,
        ratio_threshold=(d1 / d2) * 0.9, reference_distance=1.5,
    )  # fmt: skip
    twin_library.use_embedder(Embedder(model, device="cpu", allow_bf16=False))
    assert check(twin_library, captioned).verdict is Verdict.NO_MATCH
    overridden = check(twin_library, captioned, threshold=d1 * 1.05)
    assert overridden.verdict is Verdict.COPY
    assert overridden.threshold == pytest.approx(d1 * 1.05)
    assert overridden.ratio_threshold == pytest.approx((d1 / d2) * 0.9)


@pytest.mark.parametrize("signal", ["distance", "ratio"])
def test_possible_copy(
    twin_library: Library, captioned: Image.Image, measured: Measured, random_model_dir: Path,
    tmp_path: Path, signal: str,
) -> None:  # fmt: skip
    d1, d2 = measured.d1, measured.d2
    balanced = (
        {"possible_threshold": d1 * 1.1}
        if signal == "distance"
        else {"possible_ratio_threshold": (d1 / d2) * 1.1}
    )
    model = calibrated_model(
        random_model_dir, tmp_path / "model", threshold=d1 * 0.9,
        ratio_threshold=(d1 / d2) * 0.9, reference_distance=1.5, **balanced,
    )  # fmt: skip
    result = check_with(twin_library, model, captioned)
    assert result.verdict is Verdict.POSSIBLE
    assert result.is_copy is False
    assert result.verdict_label == "Possible copy"
    assert result.headline() == (
        f"Possible copy of {Path(result.matches[0].path).name} - compare to confirm"
    )
    if signal == "distance":
        assert result.possible_threshold == pytest.approx(d1 * 1.1)
        assert result.evidence_text() == (
            f"distance {d1:.2f} (threshold {d1 * 0.9:.2f}, possible below {d1 * 1.1:.2f}); "
            f"{d1 / d2:.2f} x the next distinct image (ratio threshold {(d1 / d2) * 0.9:.2f})"
        )
    else:
        assert result.possible_ratio_threshold == pytest.approx((d1 / d2) * 1.1)
        assert result.evidence_text() == (
            f"distance {d1:.2f} (threshold {d1 * 0.9:.2f}); {d1 / d2:.2f} x the next distinct "
            f"image (ratio threshold {(d1 / d2) * 0.9:.2f}, possible below {(d1 / d2) * 1.1:.2f})"
        )
    assert result.to_json_dict()["verdict"] == "possible"


def test_no_match(
    twin_library: Library, captioned: Image.Image, measured: Measured, random_model_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    d1, d2 = measured.d1, measured.d2
    model = calibrated_model(
        random_model_dir, tmp_path / "model", threshold=d1 * 0.8, ratio_threshold=(d1 / d2) * 0.8,
        reference_distance=1.5, possible_threshold=d1 * 0.9,
        possible_ratio_threshold=(d1 / d2) * 0.9,
    )  # fmt: skip
    result = check_with(twin_library, model, captioned)
    assert result.verdict is Verdict.NO_MATCH and not result.is_copy
    assert result.headline() == "No match"
    data = result.to_json_dict()
    assert (data["verdict"], data["is_copy"]) == ("none", False)


def test_near_duplicates_of_the_nearest_are_skipped_for_d2(
    twin_library: Library, captioned: Image.Image, measured: Measured, twin_folder: Path,
    random_model_dir: Path, tmp_path: Path,
) -> None:  # fmt: skip
    model = calibrated_model(
        random_model_dir, tmp_path / "model", threshold=0.05, ratio_threshold=0.5,
        reference_distance=1.5,
    )  # fmt: skip
    # Only one match comes back; d2 still comes from the neighbours searched past it.
    result = check_with(twin_library, model, captioned, top_k=1)
    assert len(result.matches) == 1
    twin_distance = measured.d1
    assert result.second_distance == pytest.approx(measured.d2)
    assert result.second_distance != pytest.approx(twin_distance)
    assert Path(measured.second_path).parent == twin_folder
    assert Path(measured.second_path).name not in {"photo_1.jpg", "photo_1_twin.png"}
    assert result.ratio == pytest.approx(measured.d1 / measured.d2)


def test_library_without_a_distinct_image_uses_the_reference_distance(
    tmp_path: Path, random_model_dir: Path, twin_folder: Path, captioned: Image.Image
) -> None:
    twins = tmp_path / "twins"
    twins.mkdir()
    shutil.copy(twin_folder / "photo_1.jpg", twins / "photo_1.jpg")
    load_image(twins / "photo_1.jpg").save(twins / "photo_1_twin.png")
    model = calibrated_model(
        random_model_dir, tmp_path / "model", threshold=0.05, ratio_threshold=0.5,
        reference_distance=0.4,
    )  # fmt: skip
    with Library.open(tmp_path / "lib", Embedder(model, "cpu", allow_bf16=False)) as small:
        small.add_all([twins])
        result = check(small, captioned)
    d1 = result.matches[0].distance
    assert len(result.matches) == 2
    assert result.second_distance is None
    assert result.ratio == pytest.approx(d1 / 0.4)


def test_uncalibrated_model_reports_no_ratio(library: Library, photo_folder: Path) -> None:
    result = check(library, photo_folder / "photo_1.jpg")
    assert result.verdict is Verdict.COPY
    assert result.ratio is None and result.ratio_threshold is None
    assert result.possible_threshold is None and result.reference_distance is None
    assert result.second_distance == pytest.approx(result.matches[1].distance)
    data = result.to_json_dict()
    assert (data["verdict"], data["ratio"], data["ratio_threshold"]) == ("copy", None, None)
    assert result.evidence_text(digits=4) == (
        f"distance {result.matches[0].distance:.4f} (threshold {result.threshold:.4f})"
    )


def fingerprint(*values: float) -> list[float]:
    return [*values, 0.0]


@pytest.mark.parametrize(
    ("searched", "expected"),
    [(3, None), (50, 0.12)],
    ids=["no-other-image", "more-beyond-the-fetched"],
)
def test_second_distance_when_every_fetched_image_is_a_near_duplicate(
    searched: int, expected: float | None
) -> None:
    images = [(object(), 0.1), (object(), 0.11), (object(), 0.12)]
    vectors = np.array([fingerprint(1.0), fingerprint(0.99), fingerprint(1.02)], np.float32)
    hood = Neighbourhood(images, vectors, searched)  # type: ignore[arg-type]
    assert second_distance(hood, radius=0.05) == (
        None if expected is None else pytest.approx(expected)
    )


def test_second_distance_uses_the_fingerprints_not_the_query_distances() -> None:
    # Neighbour 2 is as far from the query as neighbour 1 but 0.5 away from it: distinct.
    images = [(object(), 0.2), (object(), 0.2), (object(), 0.3)]
    vectors = np.array([fingerprint(0.0, 0.0), fingerprint(0.5, 0.0), fingerprint(0.0, 0.01)])
    hood = Neighbourhood(images, vectors.astype(np.float32), 3)  # type: ignore[arg-type]
    assert second_distance(hood, radius=0.1) == pytest.approx(0.2)
    assert second_distance(hood, radius=0.6) is None
    assert second_distance(Neighbourhood([], np.zeros((0, 3), np.float32), 0), 0.1) is None


# -- crowding (see core/crowding.py) ---------------------------------------------------------------


def crowded_model(source: Path, folder: Path, background: np.ndarray, **values: float) -> Path:
    """A copy of ``source`` carrying ``background`` fingerprints and crowding constants."""
    shutil.copytree(source, folder)
    stream = io.BytesIO()
    np.save(stream, background.astype(np.float16), allow_pickle=False)
    (folder / "background.npy").write_bytes(stream.getvalue())
    meta = dataclasses.replace(
        read_metadata(folder),
        crowding_file="background.npy",
        crowding_sha256=hashlib.sha256(stream.getvalue()).hexdigest(),
        **values,
    )
    (folder / METADATA_FILE).write_text(meta.to_json(), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def background(twin_library: Library) -> np.ndarray:
    """Fingerprints of photos that are not in the library."""
    return twin_library.embedder.embed_images([make_photo(i) for i in range(20, 32)])


@pytest.mark.parametrize("factor", [0.5, 2.0], ids=["fewer-look-alikes", "more-look-alikes"])
def test_crowding_scales_the_thresholds_for_the_query(
    twin_library: Library, captioned: Image.Image, measured: Measured, random_model_dir: Path,
    background: np.ndarray, tmp_path: Path, factor: float,
) -> None:  # fmt: skip
    d1 = measured.d1
    query = twin_library.embedder.embed_image(captioned)
    stored = background.astype(np.float16).astype(np.float64)
    kth = sorted(float(np.linalg.norm(query - b)) for b in stored)[2]
    # Thresholds just past d1 (a copy without crowding); the reference makes the factor ``factor``.
    model = crowded_model(
        random_model_dir, tmp_path / "model", background, threshold=d1 * 1.2,
        crowding_k=3, crowding_reference=kth * factor, crowding_radius=0.05,
    )  # fmt: skip
    result = check_with(twin_library, model, captioned)
    assert result.crowding == pytest.approx(factor, rel=1e-3)
    assert result.threshold == pytest.approx(d1 * 1.2 / factor, rel=1e-3)
    assert result.matches[0].distance == pytest.approx(d1)  # true distances are shown
    assert result.verdict is (Verdict.COPY if factor < 1 else Verdict.NO_MATCH)
    assert result.evidence_text() == (
        f"distance {d1:.2f} (threshold {d1 * 1.2 / factor:.2f}); thresholds x{1 / factor:.2f}: "
        f"{'fewer' if factor < 1 else 'more'} look-alikes than most pictures"
    )
    assert result.to_json_dict()["threshold"] == pytest.approx(result.threshold)


def test_a_protected_picture_in_the_background_does_not_crowd_its_own_copies(
    twin_library: Library, captioned: Image.Image, measured: Measured, random_model_dir: Path,
    background: np.ndarray, twin_folder: Path, tmp_path: Path,
) -> None:  # fmt: skip
    original = twin_library.embedder.embed_image(load_image(twin_folder / "photo_1.jpg"))
    query = twin_library.embedder.embed_image(captioned)
    with_original = np.vstack([original[None, :], background])
    stored = background.astype(np.float16).astype(np.float64)
    nearest_other = min(float(np.linalg.norm(query - b)) for b in stored)
    assert nearest_other > measured.d1 * 1.3  # unguarded, photo_1 itself would crowd the query
    model = crowded_model(
        random_model_dir, tmp_path / "model", with_original, threshold=measured.d1 * 1.2,
        crowding_k=1, crowding_reference=nearest_other, crowding_radius=0.05,
    )  # fmt: skip
    result = check_with(twin_library, model, captioned)
    # Background image 0 (photo_1 itself, d1 from the query) is skipped: factor 1.
    assert result.crowding == pytest.approx(1.0, rel=1e-3)
    assert result.verdict is Verdict.COPY
