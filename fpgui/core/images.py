"""Reading image files into plain 8-bit RGB, whatever their format, mode or orientation.

Every failure becomes an :class:`ImageLoadError` naming the file and a reason a user can act on;
no raw Pillow or OS error escapes. Nothing here changes Pillow's global settings (truncated images
stay refused), so decoding from several threads at once is safe: each call owns its image.
"""

from __future__ import annotations

import errno
import io
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fpgui.core.errors import ImageLoadError

# Twice Pillow's default warning limit, i.e. where Pillow itself refuses: ~179 MP, which still
# admits 100+ MP medium-format photos and panoramas. We enforce it ourselves for a specific error.
MAX_PIXELS = 178_956_970

# Pillow warns between its own limit and twice it; we check MAX_PIXELS ourselves, so the warning
# only adds noise. A process-wide filter, but it silences nothing except that one category.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

_BASE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
)
_EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = frozenset({5, 6, 7, 8})  # orientations that rotate by 90 or 270 degrees
_WHITE = (255, 255, 255)
_PILLOW_BOMB = re.compile(r"\((\d+) pixels\)")


def _optional_suffixes() -> frozenset[str]:
    """HEIC/HEIF when pillow-heif is installed; AVIF when Pillow has its AVIF plugin."""
    extra: set[str] = set()
    try:
        import pillow_heif  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        pass
    else:
        pillow_heif.register_heif_opener()
        extra |= {".heic", ".heif"}
    if ".avif" in Image.registered_extensions():
        extra.add(".avif")
    return frozenset(extra)


SUPPORTED_SUFFIXES: frozenset[str] = _BASE_SUFFIXES | _optional_suffixes()


@dataclass(frozen=True)
class ImageInfo:
    """What the file header says; ``width``/``height`` in pixels after EXIF rotation."""

    width: int
    height: int
    format: str
    mode: str
    frames: int


def is_supported_image(path: str | Path) -> bool:
    """True when the file name ends in a suffix we can decode (case-insensitive)."""
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


def load_image(path: str | Path, *, min_size: int | None = None) -> Image.Image:
    """Decode ``path`` fully into an RGB image, upright, alpha composited over white.

    With ``min_size`` (pixels) the image may come back smaller than the file, but its short side is
    never reduced below ``min_size``; large JPEGs are then decoded at 1/2, 1/4 or 1/8 scale.
    """
    with _opened(path) as handle:
        return _decode(handle, str(path), min_size)


def load_image_bytes(
    data: bytes, *, name: str = "<pasted image>", min_size: int | None = None
) -> Image.Image:
    """Like :func:`load_image` for an encoded image held in memory; ``name`` appears in errors."""
    if not data:
        raise ImageLoadError(name, "no image data (0 bytes)")
    return _decode(io.BytesIO(data), name, min_size)


def image_info(path: str | Path) -> ImageInfo:
    """Size, format, mode and frame count from the header only; pixels are not decoded."""
    with _opened(path) as handle, _pillow_errors(str(path)), _open_image(handle, str(path)) as im:
        width, height = im.size
        if im.getexif().get(_EXIF_ORIENTATION) in _SWAPS_AXES:
            width, height = height, width
        frames = int(getattr(im, "n_frames", 1))
        return ImageInfo(width, height, im.format or "unknown", im.mode, frames)


@contextmanager
def _opened(path: str | Path) -> Iterator[IO[bytes]]:
    """The file open for reading, or an :class:`ImageLoadError` saying why it cannot be."""
    name = str(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after decoding
    except FileNotFoundError:
        raise ImageLoadError(name, "file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(name, "is a folder") from None
    except PermissionError:
        reason = "is a folder" if Path(path).is_dir() else "permission denied"
        raise ImageLoadError(name, reason) from None
    except OSError as exc:
        raise ImageLoadError(name, f"cannot read file: {exc.strerror or exc}") from None
    with handle:
        try:
            size = _file_size(handle)
        except OSError as exc:
            raise ImageLoadError(name, f"cannot read file: {exc.strerror or exc}") from None
        if size == 0:
            raise ImageLoadError(name, "empty file (0 bytes)")
        yield handle


def _file_size(handle: IO[bytes]) -> int:
    """Bytes in the open file; seeks to the end and back."""
    end = handle.seek(0, io.SEEK_END)
    handle.seek(0)
    return end


@contextmanager
def _pillow_errors(name: str) -> Iterator[None]:
    """Translate whatever Pillow, zlib or the OS raises while decoding into an ImageLoadError."""
    try:
        yield
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(name, _unidentified_reason(name)) from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(name, _too_large_from_pillow(str(exc))) from None
    except MemoryError:
        raise ImageLoadError(name, "not enough memory to decode this image") from None
    except OSError as exc:
        if exc.errno == errno.EACCES:
            raise ImageLoadError(name, "permission denied") from None
        if exc.errno is not None:
            raise ImageLoadError(name, f"cannot read file: {exc.strerror or exc}") from None
        raise ImageLoadError(name, f"truncated or corrupt image data ({exc})") from None
    except _UnsupportedModeError as exc:
        raise ImageLoadError(name, f"unsupported colour mode {exc}") from None
    except Exception as exc:  # Pillow plugins raise SyntaxError, ValueError, struct.error...
        raise ImageLoadError(name, f"truncated or corrupt image data ({exc})") from None


def _unidentified_reason(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in {".heic", ".heif"} and suffix not in SUPPORTED_SUFFIXES:
        return "HEIC/HEIF images need the optional package pillow-heif"
    if suffix == ".avif" and suffix not in SUPPORTED_SUFFIXES:
        return "AVIF images need a Pillow built with AVIF support"
    return "not an image or unsupported format"


def _too_large_reason(width: int, height: int) -> str:
    return f"image too large: {width} x {height} pixels exceeds the limit of {MAX_PIXELS:,}"


def _too_large_from_pillow(message: str) -> str:
    """Pillow refuses before we see the size; keep the pixel count its message gives."""
    found = _PILLOW_BOMB.search(message)
    pixels = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
    return f"image too large: {pixels} exceeds the limit of {MAX_PIXELS:,}"


@contextmanager
def _open_image(handle: IO[bytes], name: str) -> Iterator[Image.Image]:
    """Pillow's lazy image over ``handle``, refused early when its header is too large."""
    with Image.open(handle) as im:
        width, height = im.size
        if width * height > MAX_PIXELS:
            raise ImageLoadError(name, _too_large_reason(width, height))
        yield im


def _decode(handle: IO[bytes], name: str, min_size: int | None) -> Image.Image:
    if min_size is not None and min_size < 1:
        raise ValueError(f"min_size must be a positive number of pixels, not {min_size}")
    with _pillow_errors(name), _open_image(handle, name) as im:
        if min_size is not None:
            # JPEG only: libjpeg decodes at 1/2..1/8 scale, every side kept >= min_size.
            im.draft("RGB", (min_size, min_size))
        im.load()  # reads the first frame of animations; Pillow refuses truncated data
        upright = ImageOps.exif_transpose(im)
        rgb = _to_rgb(upright)
    if min_size is not None:
        rgb = _reduce(rgb, min_size)
    return rgb


def _reduce(image: Image.Image, min_size: int) -> Image.Image:
    """Box-reduce by an integer factor while the short side stays >= ``min_size`` pixels."""
    factor = min(image.size) // min_size
    return image.reduce(factor) if factor >= 2 else image


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB for any Pillow mode; transparency is composited over white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if (mode == "P" and "transparency" in image.info) or mode in {"PA", "LA", "La", "RGBa"}:
        return _over_white(image.convert("RGBA"))
    if mode == "RGBA":
        return _over_white(image)
    converter = _WIDE_MODES.get(mode)
    if converter is not None:
        return Image.fromarray(converter(np.asarray(image)), "L").convert("RGB")
    try:
        return image.convert("RGB")
    except ValueError:
        raise _UnsupportedModeError(mode) from None


class _UnsupportedModeError(Exception):
    """A Pillow mode with no conversion to RGB (e.g. LAB); the argument is the mode."""


def _over_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """(H, W) integers in 0..65535 -> uint8 in 0..255, rounded (65535 -> 255, 32768 -> 128)."""
    wide = values.astype(np.uint32)
    result: np.ndarray = ((wide * 255 + 32767) // 65535).astype(np.uint8)
    return result


def _scale_int32(values: np.ndarray) -> np.ndarray:
    """Mode "I": 16-bit data (older Pillow opens 16-bit PNGs so) or else stretched min..max."""
    if values.size and values.min() >= 0 and values.max() <= 65535:
        return _scale_16bit(values)
    return _stretch(values.astype(np.float64))


def _scale_float(values: np.ndarray) -> np.ndarray:
    """Mode "F": taken as 0..1 when it fits, else stretched min..max; NaN becomes black."""
    clean = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if clean.size and clean.min() >= 0.0 and clean.max() <= 1.0:
        result: np.ndarray = np.round(clean * 255.0).astype(np.uint8)
        return result
    return _stretch(clean)


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    span = high - low or 1.0
    result: np.ndarray = np.round((values - low) * (255.0 / span)).astype(np.uint8)
    return result


_WIDE_MODES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "I;16": _scale_16bit,
    "I;16L": _scale_16bit,
    "I;16B": _scale_16bit,
    "I;16N": _scale_16bit,
    "I": _scale_int32,
    "F": _scale_float,
}
