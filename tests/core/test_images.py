"""Image loading: every format and mode a user may hand us comes back as upright 8-bit RGB, and
every broken file is refused with a reason that names what is wrong."""

from __future__ import annotations

import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fpgui.core import images
from fpgui.core.errors import ImageLoadError
from fpgui.core.images import (
    MAX_PIXELS,
    SUPPORTED_SUFFIXES,
    image_info,
    is_supported_image,
    load_image,
    load_image_bytes,
)
from tests.conftest import make_photo

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def assert_close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> None:
    assert max(abs(a - e) for a, e in zip(actual, expected, strict=True)) <= tolerance, actual


def expect_error(path: Path | str, reason_part: str) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as caught:
        load_image(path)
    assert str(path) in str(caught.value)
    assert reason_part in caught.value.reason
    return caught.value


# --- formats and modes --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".bmp", ".tif", ".gif"])
def test_common_formats_load_as_rgb_of_the_right_size(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"photo{suffix}"
    make_photo(1, (64, 48)).save(path)
    image = load_image(path)
    assert image.mode == "RGB"
    assert image.size == (64, 48)


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animation_gives_its_first_frame(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"anim{suffix}"
    first, second = Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0, lossless=True)
    assert_close(pixel(load_image(path), (8, 8)), RED)
    assert image_info(path).frames == 2


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(path, quality=95)
    image = load_image(path)
    assert image.mode == "RGB"
    assert_close(pixel(image, (16, 16)), RED, tolerance=20)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_grey_is_scaled_not_clipped(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    values = np.array([[65535, 32768, 256, 0]], dtype=np.uint16)
    Image.fromarray(values).save(path)
    image = load_image(path)
    assert [pixel(image, (x, 0))[0] for x in range(4)] == [255, 128, 1, 0]


def test_palette_transparency_is_white(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    palette_image = Image.new("P", (4, 4), 1)
    palette_image.putpalette([0, 0, 0, *RED] + [0] * 762)
    palette_image.putpixel((0, 0), 0)
    palette_image.save(path, transparency=0)
    image = load_image(path)
    assert pixel(image, (0, 0)) == WHITE
    assert pixel(image, (1, 1)) == RED


def test_alpha_is_composited_over_white(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    rgba = Image.new("RGBA", (3, 1), (*RED, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (0, 0, 0, 128))
    rgba.save(path)
    image = load_image(path)
    assert pixel(image, (0, 0)) == WHITE
    assert_close(pixel(image, (1, 0)), (127, 127, 127), tolerance=2)
    assert pixel(image, (2, 0)) == RED


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [("1", 1, 255), ("L", 77, 77), ("LA", (200, 255), 200), ("F", 0.5, 128), ("I", 65535, 255)],
)
def test_other_modes_become_rgb(
    tmp_path: Path, mode: str, value: float | tuple[int, int], expected: int
) -> None:
    path = tmp_path / ("odd.tif" if mode in {"F", "I"} else "odd.png")
    Image.new(mode, (4, 4), value).save(path)
    image = load_image(path)
    assert image.mode == "RGB"
    assert pixel(image, (2, 2)) == (expected,) * 3


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    stored = Image.new("RGB", (40, 20), RED)
    stored.paste(BLUE, (20, 0, 40, 20))  # left half red, right half blue, as the sensor saw it
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    stored.save(path, exif=exif.tobytes(), quality=95)

    image = load_image(path)
    assert image.size == (20, 40)
    assert_close(pixel(image, (10, 5)), RED)  # the left edge is now the top
    assert_close(pixel(image, (10, 35)), BLUE)
    info = image_info(path)
    assert (info.width, info.height, info.format) == (20, 40, "JPEG")


def test_large_jpeg_is_decoded_at_reduced_size(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (200, 100, 50)).save(path, quality=85)
    image = load_image(path, min_size=256)
    assert 256 <= min(image.size) < 3000
    assert min(image.size) < 2 * 256  # draft scale and reduce together get close to min_size
    assert image.size[0] > image.size[1]  # aspect ratio kept
    assert_close(pixel(image, (10, 10)), (200, 100, 50), tolerance=4)


def test_min_size_never_enlarges_or_goes_below(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    make_photo(2, (300, 200)).save(path)
    assert load_image(path, min_size=256).size == (300, 200)
    assert min(load_image(path, min_size=64).size) >= 64


def test_load_image_bytes_decodes_memory(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (5, 5), (0, 0, 255, 255)).save(buffer, format="PNG")
    image = load_image_bytes(buffer.getvalue())
    assert image.mode == "RGB"
    assert pixel(image, (0, 0)) == BLUE


def test_decoding_from_threads_matches_serial(tmp_path: Path) -> None:
    paths = []
    for i in range(8):
        paths.append(tmp_path / f"p{i}.jpg")
        make_photo(i, (200, 150)).save(paths[-1])
    serial = [np.asarray(load_image(p)) for p in paths]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda p: np.asarray(load_image(p)), paths * 3))
    for i, array in enumerate(threaded):
        np.testing.assert_array_equal(array, serial[i % len(paths)])


def test_supported_suffixes() -> None:
    assert is_supported_image("A.JPG")
    assert is_supported_image(Path("x/y.tiff"))
    assert not is_supported_image("notes.txt")
    assert all(s.startswith(".") and s == s.lower() for s in SUPPORTED_SUFFIXES)


# --- refused files ------------------------------------------------------------------------------


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    good = io.BytesIO()
    make_photo(3).save(good, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    expect_error(path, "truncated or corrupt")


def test_corrupt_png_body_is_refused(tmp_path: Path) -> None:
    good = io.BytesIO()
    make_photo(4).save(good, format="PNG")
    data = bytearray(good.getvalue())
    data[200:400] = bytes(200)  # clobber compressed pixel data, headers intact
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    expect_error(path, "truncated or corrupt")


def test_zero_byte_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    expect_error(path, "empty file (0 bytes)")
    with pytest.raises(ImageLoadError, match="0 bytes"):
        load_image_bytes(b"")


def test_text_file_named_jpg_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    expect_error(path, "not an image or unsupported format")
    with pytest.raises(ImageLoadError, match="not an image"):
        image_info(path)


def _png_claiming(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose IHDR is rewritten (with a correct CRC) to claim another size."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def test_huge_dimensions_are_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(60000, 60000))
    error = expect_error(path, "image too large")
    assert f"{MAX_PIXELS:,}" in error.reason
    with pytest.raises(ImageLoadError, match="too large"):
        load_image_bytes(path.read_bytes())


def test_our_own_limit_names_the_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    path = tmp_path / "twenty.png"
    Image.new("RGB", (20, 20)).save(path)
    expect_error(path, "image too large: 20 x 20 pixels exceeds the limit of 100")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    expect_error(tmp_path / "gone.jpg", "file not found")


def test_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "album.jpg"
    folder.mkdir()
    expect_error(folder, "is a folder")


def test_permission_denied_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.jpg"
    make_photo(5).save(path)

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(images, "open", denied, raising=False)
    expect_error(path, "permission denied")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_on_disk_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "locked.jpg"
    make_photo(6).save(path)
    path.chmod(0)
    try:
        expect_error(path, "permission denied")
    finally:
        path.chmod(0o644)


def test_file_vanishing_after_scan_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "brief.jpg"
    make_photo(7).save(path)
    assert is_supported_image(path)
    path.unlink()
    expect_error(path, "file not found")
