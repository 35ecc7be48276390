"""``python -m model_training corpus``: build the image corpus the fingerprint model trains on.

The corpus comes from Debian packages because they are licensed, versioned and fetchable the same
way on every machine (``apt-get download``; nothing is installed). Pipeline:

1. fetch each ``.deb`` into a cache and ``dpkg -x`` it into a scratch directory;
2. list candidate files (and the images inside Qt ``.rcc`` bundles) under per-package rules;
3. in worker processes: decode, drop icons / tiny / unreadable / flat images, flatten transparency
   onto a seeded random background, downscale to at most 1024 px, encode JPEG q95, cut 512 px tiles
   from big originals, pHash everything;
4. in the parent, in a fixed order: drop exact (sha256) and near (pHash Hamming <= 4) duplicates
   across the whole corpus, write the JPEGs, ``manifest.jsonl`` and ``summary.json``.

The output is a deterministic function of the package versions and ``--seed``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import imagehash
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageChops

Kind = Literal["photo", "art"]

TRAINING_PACKAGES: tuple[str, ...] = (
    "gcompris-qt-data",
    "tuxpaint-stamps-default",
    "tuxpaint-data",
    "openclipart-png",
    "stellarium-data",
    "kstars-data",
    "wesnoth-1.16-data",
    "cube2-data",
    "colobot-common-textures",
    "qabcs-data",
    "neverball-data",
    "lebiniou-data",
    "opencv-doc",
    "visp-images-data",
    "openuniverse-common",
    "desktop-base",
    "gnome-backgrounds",
    "sway-backgrounds",
    "gimp-data",
    "imagemagick-6-doc",
    "marble-data",
)
# Never in the training list: these judge generalisation to unseen photographs.
HOLDOUT_PACKAGES: tuple[str, ...] = (
    "plasma-workspace-wallpapers",
    "mate-backgrounds",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
)

# pgm/ppm are not "web" formats but the ViSP video frames are stored that way.
IMAGE_SUFFIXES = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".webp",
        ".bmp",
        ".gif",
        ".tif",
        ".tiff",
        ".tga",
        ".dds",
        ".pgm",
        ".ppm",
    }
)
MIN_SIDE = 128  # px; smaller images are icons or sprites and say little about a photo's content
MAX_SIDE = 1024  # px; long side of every written image
TILE_SOURCE_MIN_SIDE = 1024  # px; both original sides must reach this before tiles are cut
TILE_SOURCE_SIDE = 2048  # px; tiles come from the original downscaled to this long side
TILE_SIDE = 512  # px
MAX_TILES = 4
PHASH_MAX_DISTANCE = 4  # bits of 64; at or below this two images count as the same picture
JPEG_QUALITY = 95
FLAT_STD = 3.0  # grey-level std below which an image (or tile) is a fill, not a picture

RCC_COMPRESSED_ZLIB = 0x01
RCC_DIRECTORY = 0x02
RCC_COMPRESSED_ZSTD = 0x04


# ---------------------------------------------------------------------------------------------
# Public records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusEntry:
    """One row of ``manifest.jsonl``: an image the model may use as an anchor.

    ``file`` is relative to the corpus directory; ``width``/``height`` are of the written JPEG (px);
    ``group`` is shared by an image and the tiles cut from it, so they are never each other's
    negatives; ``phash`` is the 64-bit pHash as 16 hex digits (lets another corpus avoid this one).
    """

    file: str
    package: str
    source_path: str
    width: int
    height: int
    sha256: str
    licence: str
    kind: Kind
    group: str
    phash: str


@dataclass(frozen=True)
class CorpusSummary:
    """What a build kept and dropped; also written as ``summary.json``."""

    images: int  # manifest rows, tiles included
    tiles: int
    per_package: dict[str, int]
    per_kind: dict[str, int]
    dropped: dict[str, int]  # reason -> count, all packages
    dropped_per_package: dict[str, dict[str, int]]
    licences: dict[str, str]
    packages: tuple[str, ...]
    seed: int
    photos_only: bool
    seconds: float
    bytes_written: int


@dataclass(frozen=True)
class BuildProgress:
    """Reported while building: the package being worked on and how far the build is."""

    package: str
    package_index: int  # 0-based
    package_count: int
    candidates_done: int  # in this package
    candidates_total: int  # in this package
    images_kept: int  # whole corpus so far


ProgressCallback = Callable[[BuildProgress], None]


class PackageSource(Protocol):
    """Makes a package's files available: returns the root of its unpacked tree.

    ``scratch`` is an empty directory the source may fill; it is deleted after the package is used.
    Tests pass a source that returns a tree they built, which skips apt and dpkg entirely.
    """

    def __call__(self, package: str, scratch: Path) -> Path: ...


# ---------------------------------------------------------------------------------------------
# Per-package rules
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageRule:
    """Which files of a package are images worth training on, and what they are.

    Paths are matched as substrings of ``"/" + path inside the package``. The kind of an image is
    that of the first matching ``kind_paths`` entry, else ``kind``; None means the colour heuristic
    decides per image. ``frames_every`` > 0 treats runs of numbered files in one directory as a
    video and keeps every n-th frame, at most ``frames_max``: consecutive frames are
    near-duplicates that pHash would not always catch.
    """

    kind: Kind | None = None
    kind_paths: tuple[tuple[str, Kind], ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    frames_every: int = 0
    frames_max: int = 0


# Plasma's wallpapers that are photographs (the rest are drawn or rendered), checked by eye.
_PLASMA_PHOTOS = (
    "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
    "Grey", "Kite", "MilkyWay", "OneStandsOut", "Path", "summer_1am",
)  # fmt: skip

# Documentation screenshots and UI chrome are excluded where they are many; everything else is
# left to the size / icon / dedup filters.
PACKAGE_RULES: dict[str, PackageRule] = {
    # Many of GCompris's pictures are photographs (animals, places), so the heuristic decides.
    "gcompris-qt-data": PackageRule(),
    "tuxpaint-stamps-default": PackageRule(kind="art"),
    "tuxpaint-data": PackageRule(kind="art"),
    "openclipart-png": PackageRule(kind="art"),
    "stellarium-data": PackageRule(
        kind_paths=(
            ("/nebulae/", "photo"),
            ("/landscapes/", "photo"),
            ("/textures/", "photo"),
            ("/skycultures/", "art"),
        ),
    ),
    "kstars-data": PackageRule(
        kind_paths=(("/textures/", "photo"), ("/skycultures/", "art")),
        exclude=("/doc/HTML/", "/kstarslite/"),
    ),
    "wesnoth-1.16-data": PackageRule(kind="art"),
    "cube2-data": PackageRule(),
    "colobot-common-textures": PackageRule(),
    "qabcs-data": PackageRule(),
    "neverball-data": PackageRule(),
    "lebiniou-data": PackageRule(),
    # Only the sample inputs: the tutorial images under html/ are edited copies of them.
    "opencv-doc": PackageRule(kind="photo", include=("/examples/data/",)),
    # warp/ and Gaussian-filter/ hold edited copies of other images; AprilTags are synthetic.
    "visp-images-data": PackageRule(
        kind="photo",
        kind_paths=(("/AprilTag/", "art"),),
        exclude=("/warp/", "/Gaussian-filter/"),
        frames_every=50,
        frames_max=5,
    ),
    "openuniverse-common": PackageRule(),
    "desktop-base": PackageRule(),
    "gnome-backgrounds": PackageRule(),
    "sway-backgrounds": PackageRule(),
    "gimp-data": PackageRule(exclude=("/themes/",)),
    "imagemagick-6-doc": PackageRule(),
    # Bookworm's marble-data holds no map textures; its manual's screenshots show rendered maps.
    "marble-data": PackageRule(),
    # The held-out packages are small enough to label by hand: the colour heuristic confuses
    # soft-focus flower photos with smooth abstract renders.
    "plasma-workspace-wallpapers": PackageRule(
        kind="art", kind_paths=tuple((f"/wallpapers/{name}/", "photo") for name in _PLASMA_PHOTOS)
    ),
    "mate-backgrounds": PackageRule(kind="art", kind_paths=(("/mate/nature/", "photo"),)),
    # Ubuntu Touch's wallpapers: photographs but for one texture; 20.04's are renders but one.
    "lomiri-wallpapers-16.04": PackageRule(kind="photo", exclude=("analogpattern",)),
    "lomiri-wallpapers-20.04": PackageRule(kind="art", kind_paths=(("/Kleiber_", "photo"),)),
}


# ---------------------------------------------------------------------------------------------
# Qt .rcc resource bundles
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RccEntry:
    """One file inside a Qt ``.rcc``: its path and where its (maybe compressed) bytes lie."""

    path: str  # "/"-separated, relative to the bundle root
    data_offset: int  # absolute offset of the payload (after the 4-byte size)
    size: int  # payload bytes as stored
    flags: int  # RCC_COMPRESSED_ZLIB / RCC_COMPRESSED_ZSTD


class RccFormatError(ValueError):
    """The bytes are not a Qt binary resource bundle this parser understands."""


def read_rcc_entries(blob: bytes) -> list[RccEntry]:
    """List the files in a Qt binary resource bundle (``rcc --binary``, format versions 1-3).

    Layout: ``b"qres"``, then big-endian u32 version, tree offset, data offset, names offset (and
    u32 flags from version 3). Tree nodes are 14 bytes (22 from version 2: + u64 mtime): u32 name
    offset, u16 flags, then for directories u32 child count + u32 first child index, for files
    u16 territory + u16 language + u32 data offset. Names are u16 length, u32 hash, UTF-16BE.
    """
    if len(blob) < 20 or blob[:4] != b"qres":
        raise RccFormatError("missing 'qres' magic")
    version, tree_off, data_off, names_off = struct.unpack_from(">IIII", blob, 4)
    if version not in (1, 2, 3):
        raise RccFormatError(f"unsupported rcc version {version}")
    node_size = 14 if version == 1 else 22

    def name_at(name_offset: int) -> str:
        pos = names_off + name_offset
        (length,) = struct.unpack_from(">H", blob, pos)
        return blob[pos + 6 : pos + 6 + 2 * length].decode("utf-16-be")

    entries: list[RccEntry] = []
    stack: list[tuple[int, str]] = [(0, "")]  # (node index, parent path)
    seen: set[int] = set()
    while stack:
        index, parent = stack.pop()
        if index in seen:  # a corrupt bundle must not loop forever
            raise RccFormatError("cyclic tree")
        seen.add(index)
        pos = tree_off + index * node_size
        if pos + 14 > len(blob):
            raise RccFormatError("tree node out of range")
        name_offset, flags = struct.unpack_from(">IH", blob, pos)
        name = "" if index == 0 else name_at(name_offset)
        path = f"{parent}/{name}" if parent else name
        if flags & RCC_DIRECTORY:
            count, first = struct.unpack_from(">II", blob, pos + 6)
            stack.extend((first + i, path) for i in reversed(range(count)))
        else:
            (offset,) = struct.unpack_from(">I", blob, pos + 10)
            start = data_off + offset
            (size,) = struct.unpack_from(">I", blob, start)
            entries.append(RccEntry(path, start + 4, size, flags))
    return entries


def _zstd_decompress() -> Callable[[bytes], bytes] | None:
    """The zstd decoder if one is installed (Qt 6 may store entries with zstd)."""
    try:
        import zstandard
    except ImportError:
        return None
    decompressor = zstandard.ZstdDecompressor()

    def decompress(data: bytes) -> bytes:
        result: bytes = decompressor.decompressobj().decompress(data)
        return result

    return decompress


def rcc_payload(blob: bytes, entry: RccEntry) -> bytes | None:
    """The uncompressed bytes of ``entry``; None if it is zstd and no decoder is installed."""
    return _inflate_rcc(blob[entry.data_offset : entry.data_offset + entry.size], entry.flags)


def _inflate_rcc(raw: bytes, flags: int) -> bytes | None:
    if flags & RCC_COMPRESSED_ZSTD:
        decompress = _zstd_decompress()
        return None if decompress is None else decompress(raw)
    if flags & RCC_COMPRESSED_ZLIB:
        # qCompress format: u32 big-endian uncompressed length, then a zlib stream.
        return zlib.decompress(raw[4:])
    return raw


# ---------------------------------------------------------------------------------------------
# Candidates: what to look at in an unpacked package
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A possible image, small enough to send to a worker process.

    ``source_path`` is the path inside the package; for a resource inside a ``.rcc`` it is
    ``"path/to/x.rcc!/inner/path.png"`` and ``rcc_entry`` says where its bytes lie in ``file``.
    """

    package: str
    source_path: str
    file: Path
    size: int  # bytes as stored; bigger first, so the largest copy of a picture is the one kept
    kind_hint: Kind | None
    rcc_entry: RccEntry | None = None


_FRAME_RE = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")


def _kind_hint(rule: PackageRule, source_path: str) -> Kind | None:
    with_slashes = "/" + source_path
    for part, kind in rule.kind_paths:
        if part in with_slashes:
            return kind
    return rule.kind


def _is_icon_path(source_path: str) -> bool:
    return "icon" in source_path.lower()


def _path_allowed(rule: PackageRule, source_path: str) -> bool:
    with_slashes = "/" + source_path
    if rule.include and not any(part in with_slashes for part in rule.include):
        return False
    return not any(part in with_slashes for part in rule.exclude)


def _sample_frames(paths: list[str], every: int, most: int, drops: Counter[str]) -> list[str]:
    """Keep every ``every``-th frame (at most ``most``) of each numbered sequence in ``paths``.

    A sequence is >= 10 files in one directory named ``<prefix><number>.<ext>``.
    """
    sequences: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
    singles: list[str] = []
    for path in paths:
        directory, _, name = path.rpartition("/")
        stem, dot, ext = name.rpartition(".")
        match = _FRAME_RE.match(stem) if dot else None
        if match is None:
            singles.append(path)
            continue
        key = (directory, match["prefix"], ext.lower())
        sequences.setdefault(key, []).append((int(match["number"]), path))
    kept = list(singles)
    for frames in sequences.values():
        if len(frames) < 10:
            kept.extend(path for _, path in frames)
            continue
        frames.sort()
        chosen = [path for _, path in frames[::every][:most]]
        kept.extend(chosen)
        drops["sequence_frame"] += len(frames) - len(chosen)
    return kept


def list_candidates(
    package: str, root: Path, rule: PackageRule, drops: Counter[str]
) -> list[Candidate]:
    """Image candidates under the unpacked tree ``root``, largest first, ties by path.

    Counts what the path rules drop into ``drops``. Symlinks are skipped: Debian uses them for
    duplicate files, which dedup would drop anyway.
    """
    files: dict[str, Path] = {}
    rcc_files: list[tuple[str, Path]] = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        suffix = path.suffix.lower()
        if suffix == ".rcc":
            rcc_files.append((rel, path))
        elif suffix in IMAGE_SUFFIXES:
            files[rel] = path

    candidates: list[Candidate] = []
    paths: list[str] = []
    for rel in files:
        if _is_icon_path(rel):
            drops["icon_path"] += 1
        elif not _path_allowed(rule, rel):
            drops["excluded_path"] += 1
        else:
            paths.append(rel)
    if rule.frames_every > 0:
        paths = _sample_frames(paths, rule.frames_every, rule.frames_max, drops)
    for rel in paths:
        candidates.append(
            Candidate(package, rel, files[rel], files[rel].stat().st_size, _kind_hint(rule, rel))
        )
    for rel, path in rcc_files:
        candidates.extend(_rcc_candidates(package, rel, path, rule, drops))
    candidates.sort(key=lambda c: (-c.size, c.source_path))
    return candidates


def _rcc_candidates(
    package: str, rel: str, path: Path, rule: PackageRule, drops: Counter[str]
) -> Iterator[Candidate]:
    try:
        entries = read_rcc_entries(path.read_bytes())
    except (RccFormatError, struct.error, UnicodeDecodeError):
        drops["unreadable_rcc"] += 1
        return
    zstd_available = _zstd_decompress() is not None
    for entry in entries:
        inner = f"{rel}!/{entry.path}"
        if Path(entry.path).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if _is_icon_path(inner):
            drops["icon_path"] += 1
        elif not _path_allowed(rule, inner):
            drops["excluded_path"] += 1
        elif entry.flags & RCC_COMPRESSED_ZSTD and not zstd_available:
            drops["zstd_unsupported"] += 1
        else:
            yield Candidate(package, inner, path, entry.size, _kind_hint(rule, inner), entry)


# ---------------------------------------------------------------------------------------------
# Image processing (runs in worker processes)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedImage:
    """An encoded output image: the main one (``tile`` -1) or a tile (0..3)."""

    jpeg: bytes
    width: int
    height: int
    phash: int  # 64-bit
    tile: int


@dataclass(frozen=True)
class Outcome:
    """What a worker made of one candidate: a drop reason, or the images to (maybe) write."""

    candidate: Candidate
    dropped: str | None
    source_sha256: str = ""
    kind: Kind = "art"
    images: tuple[RenderedImage, ...] = ()


def _read_source(candidate: Candidate) -> bytes | None:
    entry = candidate.rcc_entry
    if entry is None:
        return candidate.file.read_bytes()
    with candidate.file.open("rb") as bundle:  # one entry, not the whole (multi-MB) bundle
        bundle.seek(entry.data_offset)
        return _inflate_rcc(bundle.read(entry.size), entry.flags)


def image_rng(seed: int, package: str, source_path: str) -> random.Random:
    """A generator that depends only on the seed and the image's identity, not on build order."""
    digest = hashlib.sha256(f"{seed}\0{package}\0{source_path}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def random_background(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """An RGB backdrop for a transparent image: solid colour, linear gradient or noise texture.

    Varied backdrops keep the model from learning "cut-outs sit on white". Patterns are drawn
    small and upscaled by PIL, which keeps this at a few ms for 1024 px.
    """
    style = rng.choice(("solid", "gradient", "noise"))
    colour = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    if style == "solid":
        return Image.new("RGB", size, tuple(int(c) for c in colour))
    if style == "gradient":
        other = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
        angle = rng.uniform(0.0, 2.0 * np.pi)
        ys, xs = np.mgrid[0:64, 0:64].astype(np.float32)
        ramp = xs * np.cos(angle) + ys * np.sin(angle)
        ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1.0)
        pixels = colour + ramp[..., None] * (other - colour)
        small = Image.fromarray(pixels.astype(np.uint8), "RGB")
        return small.resize(size, Image.Resampling.BILINEAR)
    # Noise texture: a coarse random grid around the colour, smoothly upscaled, plus fine grain.
    noise = np.random.default_rng(rng.randrange(2**32))
    cells = rng.randint(2, 16)
    coarse = colour + noise.uniform(-80.0, 80.0, size=(cells, cells, 3))
    coarse_image = Image.fromarray(np.clip(coarse, 0, 255).astype(np.uint8), "RGB")
    smooth = coarse_image.resize(size, Image.Resampling.BICUBIC)
    # Grain is one 128 px tile of Gaussian noise repeated: full-size noise cost ~10x more.
    tile = Image.effect_noise((128, 128), rng.uniform(2.0, 20.0)).convert("RGB")  # mean 128
    grain = Image.new("RGB", size)
    for top in range(0, size[1], 128):
        for left in range(0, size[0], 128):
            grain.paste(tile, (left, top))
    return ImageChops.add(smooth, grain, scale=1.0, offset=-128)


def _to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image has any transparency; 16-bit / float greys are rescaled."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        grey = np.asarray(image, dtype=np.float32)
        top = float(grey.max()) or 1.0
        return Image.fromarray((grey * (255.0 / top)).astype(np.uint8), "L").convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        return rgba if _alpha_range(rgba)[0] < 255 else rgba.convert("RGB")
    return image.convert("RGB")


def _alpha_range(rgba: Image.Image) -> tuple[int, int]:
    low, high = rgba.getchannel("A").getextrema()
    return int(low), int(high)  # type: ignore[arg-type]  # single band: two ints


def _flatten(rgba: Image.Image, backdrop: Image.Image) -> Image.Image:
    flat = backdrop.copy()
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def _downscale(image: Image.Image, long_side: int) -> Image.Image:
    """``image`` with its long side at most ``long_side`` px (a copy only when it shrinks)."""
    width, height = image.size
    scale = long_side / max(width, height)
    if scale >= 1.0:
        return image
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def perceptual_hash(image: Image.Image) -> int:
    """64-bit DCT pHash (imagehash.phash) as an int.

    A cheap box reduction to >= 64 px first: phash resizes to 32 px anyway, and Lanczos from
    1024 px was a third of the per-image cost.
    """
    grey = image.convert("L")
    factor = min(grey.size) // 64
    if factor > 1:
        grey = grey.reduce(factor)
    bits = imagehash.phash(grey).hash.flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def looks_like_photo(image: Image.Image) -> bool:
    """Rough photo-vs-drawn-art test on an RGB image.

    Drawings, renders and sprites have flat fills (many identical neighbouring pixels) and few
    distinct colours; photographs have sensor noise and texture almost everywhere.
    """
    small = np.asarray(image.resize((128, 128), Image.Resampling.NEAREST), dtype=np.int32)
    packed = (small[..., 0] << 16) | (small[..., 1] << 8) | small[..., 2]
    distinct = len(np.unique(packed)) / packed.size
    same_right = float(np.mean(packed[:, 1:] == packed[:, :-1]))
    grey = np.asarray(_downscale(image, 256).convert("L"), dtype=np.float32)
    detail = np.abs(
        grey[1:-1, 1:-1] * 4 - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    )
    textured = float(np.mean(detail > 4.0))
    return distinct > 0.3 and same_right < 0.15 and textured > 0.25


def _tiles(original: Image.Image, transparent: bool, rng: random.Random) -> list[Image.Image]:
    """Up to MAX_TILES non-overlapping TILE_SIDE squares from ``original`` scaled to 2048 px.

    Flat tiles (sky, blank margins) are skipped: they match anything and teach nothing.
    """
    base = _downscale(original, TILE_SOURCE_SIDE)
    if transparent:
        base = _flatten(base, random_background(base.size, rng))
    columns, rows = base.width // TILE_SIDE, base.height // TILE_SIDE
    left0 = (base.width - columns * TILE_SIDE) // 2
    top0 = (base.height - rows * TILE_SIDE) // 2
    cells = [(c, r) for r in range(rows) for c in range(columns)]
    rng.shuffle(cells)
    tiles: list[Image.Image] = []
    for column, row in cells:
        left, top = left0 + column * TILE_SIDE, top0 + row * TILE_SIDE
        tile = base.crop((left, top, left + TILE_SIDE, top + TILE_SIDE))
        if float(np.asarray(tile.convert("L"), dtype=np.float32).std()) < FLAT_STD:
            continue
        tiles.append(tile)
        if len(tiles) == MAX_TILES:
            break
    return tiles


def _encode(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _render(image: Image.Image, tile: int, hash_image: Image.Image) -> RenderedImage:
    phash = perceptual_hash(hash_image)
    return RenderedImage(_encode(image), image.width, image.height, phash, tile)


def _decode(data: bytes) -> tuple[Image.Image, bool] | str:
    """(RGB or RGBA image, whether to cut tiles), or the reason to drop it.

    JPEGs decode at 1/2, 1/4 or 1/8 scale when that still covers the largest size we keep.
    """
    with warnings.catch_warnings():
        # Huge clip-art renders (up to ~170 MP) are wanted; past twice PIL's limit it raises, and
        # such an image counts as unreadable.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            opened = Image.open(io.BytesIO(data))
            width, height = opened.size
            if min(width, height) < MIN_SIDE:
                return "too_small"
            want_tiles = min(width, height) >= TILE_SOURCE_MIN_SIDE
            if opened.format == "JPEG":
                target = TILE_SOURCE_SIDE if want_tiles else MAX_SIDE
                scale = min(1.0, target / max(width, height))
                opened.draft("RGB", (int(width * scale) + 1, int(height * scale) + 1))
            opened.load()
            return _to_rgb_or_rgba(opened), want_tiles
        except Exception:  # noqa: BLE001 - any decoder failure means "unreadable"
            return "unreadable"


def process_candidate(candidate: Candidate, seed: int) -> Outcome:
    """Decode, filter, flatten, downscale, encode and hash one candidate (pure; runs in workers)."""
    try:
        data = _read_source(candidate)
    except (OSError, zlib.error):
        return Outcome(candidate, "unreadable")
    if data is None:
        return Outcome(candidate, "zstd_unsupported")
    sha = hashlib.sha256(data).hexdigest()
    decoded = _decode(data)
    if isinstance(decoded, str):
        return Outcome(candidate, decoded, sha)
    image, want_tiles = decoded

    rng = image_rng(seed, candidate.package, candidate.source_path)
    transparent = image.mode == "RGBA"
    if transparent and _alpha_range(image)[1] == 0:
        return Outcome(candidate, "fully_transparent", sha)
    main = _downscale(image, MAX_SIDE)
    if transparent:
        # Hash against a fixed grey so the random backdrop cannot hide a duplicate.
        hash_image = _flatten(main, Image.new("RGB", main.size, (128, 128, 128)))
        main = _flatten(main, random_background(main.size, rng))
    else:
        hash_image = main
    if float(np.asarray(hash_image.convert("L"), dtype=np.float32).std()) < FLAT_STD:
        return Outcome(candidate, "flat", sha)
    kind: Kind = candidate.kind_hint or (
        "art" if transparent else ("photo" if looks_like_photo(main) else "art")
    )
    rendered = [_render(main, -1, hash_image)]
    if want_tiles:
        for index, tile in enumerate(_tiles(image, transparent, rng)):
            rendered.append(_render(tile, index, tile))
    return Outcome(candidate, None, sha, kind, tuple(rendered))


def _process_job(job: tuple[Candidate, int]) -> Outcome:
    return process_candidate(*job)


# ---------------------------------------------------------------------------------------------
# Dedup across the corpus
# ---------------------------------------------------------------------------------------------


def _popcount64(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    if hasattr(np, "bitwise_count"):
        counts: npt.NDArray[np.uint8] = np.bitwise_count(values)
        return counts
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    summed: npt.NDArray[np.uint8] = table[values.view(np.uint8).reshape(-1, 8)].sum(
        axis=1, dtype=np.uint8
    )
    return summed


class PerceptualHashIndex:
    """The pHashes kept so far, for near-duplicate lookup by popcount over a uint64 array.

    A linear scan is fine at corpus scale: 20k hashes XOR + popcount is ~0.1 ms.
    """

    def __init__(self) -> None:
        self._hashes = np.zeros(1024, dtype=np.uint64)
        self._groups = np.zeros(1024, dtype=np.int64)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, phash: int, group: int) -> None:
        if self._count == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
            self._groups = np.concatenate([self._groups, np.zeros_like(self._groups)])
        self._hashes[self._count] = phash
        self._groups[self._count] = group
        self._count += 1

    def has_near(self, phash: int, max_distance: int, ignore_group: int | None = None) -> bool:
        """Whether a kept hash is within ``max_distance`` bits, not counting ``ignore_group``."""
        distances = _popcount64(self._hashes[: self._count] ^ np.uint64(phash))
        near = distances <= max_distance
        if ignore_group is not None:
            near &= self._groups[: self._count] != ignore_group
        return bool(near.any())


# ---------------------------------------------------------------------------------------------
# Fetching packages
# ---------------------------------------------------------------------------------------------


class AptPackageSource:
    """Fetches ``.deb`` files with ``apt-get download`` into ``cache`` and unpacks with ``dpkg -x``.

    Nothing is installed and no root is needed; a cached ``.deb`` is reused.
    """

    def __init__(self, cache: Path) -> None:
        self.cache = cache

    def cached(self, package: str) -> Path | None:
        debs = sorted(self.cache.glob(f"{package}_*.deb"))
        return debs[-1] if debs else None

    def prefetch(self, packages: Iterable[str]) -> None:
        """Download every missing package in one apt call (faster than one call each)."""
        missing = [p for p in packages if self.cached(p) is None]
        if missing:
            self.cache.mkdir(parents=True, exist_ok=True)
            subprocess.run(["apt-get", "download", *missing], cwd=self.cache, check=True)

    def __call__(self, package: str, scratch: Path) -> Path:
        self.prefetch([package])
        deb = self.cached(package)
        if deb is None:
            raise FileNotFoundError(f"apt-get download left no {package}_*.deb in {self.cache}")
        subprocess.run(["dpkg", "-x", str(deb), str(scratch)], check=True)
        return scratch


def read_licence(root: Path, package: str) -> str:
    """The first ``License:`` of the package's DEP-5 copyright file, else 'see copyright'."""
    copyright_file = root / "usr/share/doc" / package / "copyright"
    try:
        text = copyright_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "see copyright"
    for line in text.splitlines():
        if line.lower().startswith("license:"):
            value = line.split(":", 1)[1].strip()
            if value:
                return value
    return "see copyright"


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def safe_name(source_path: str) -> str:
    """A file-name stem unique to ``source_path``: its tail, sanitised, plus an 8-hex digest."""
    stem = source_path.rsplit(".", 1)[0] if "." in source_path.rsplit("/", 1)[-1] else source_path
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", stem.replace("/", "__")).strip("._")
    digest = hashlib.sha256(source_path.encode()).hexdigest()[:8]
    return f"{cleaned[-100:]}-{digest}"


def group_id(package: str, source_path: str) -> str:
    """Stable id shared by an image and its tiles (independent of seed and build order)."""
    return hashlib.sha256(f"{package}\0{source_path}".encode()).hexdigest()[:16]


@dataclass
class _BuildState:
    out: Path
    photos_only: bool
    seen_sha: set[str] = field(default_factory=set)
    hashes: PerceptualHashIndex = field(default_factory=PerceptualHashIndex)
    entries: list[CorpusEntry] = field(default_factory=list)
    dropped: dict[str, Counter[str]] = field(default_factory=dict)
    bytes_written: int = 0
    tiles: int = 0


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _accept(state: _BuildState, outcome: Outcome, licence: str) -> None:
    """Dedup ``outcome`` against everything kept so far and write what survives."""
    candidate = outcome.candidate
    drops = state.dropped.setdefault(candidate.package, Counter())
    if outcome.dropped is not None:
        drops[outcome.dropped] += 1
        return
    if state.photos_only and outcome.kind != "photo":
        drops["not_photo"] += 1
        return
    if outcome.source_sha256 in state.seen_sha:
        drops["exact_duplicate"] += 1
        return
    main = outcome.images[0]
    if state.hashes.has_near(main.phash, PHASH_MAX_DISTANCE):
        drops["near_duplicate"] += 1
        return
    state.seen_sha.add(outcome.source_sha256)
    group = group_id(candidate.package, candidate.source_path)
    group_index = len(state.entries)
    state.hashes.add(main.phash, group_index)
    package_dir = state.out / "images" / candidate.package
    package_dir.mkdir(parents=True, exist_ok=True)
    stem = safe_name(candidate.source_path)
    for rendered in outcome.images:
        if rendered.tile >= 0:
            # Tiles of one picture may resemble each other (same group: fine), not other pictures.
            if state.hashes.has_near(rendered.phash, PHASH_MAX_DISTANCE, ignore_group=group_index):
                drops["tile_near_duplicate"] += 1
                continue
            state.hashes.add(rendered.phash, group_index)
            state.tiles += 1
        name = stem if rendered.tile < 0 else f"{stem}_t{rendered.tile}"
        target = package_dir / f"{name}.jpg"
        target.write_bytes(rendered.jpeg)
        state.bytes_written += len(rendered.jpeg)
        state.entries.append(
            CorpusEntry(
                file=target.relative_to(state.out).as_posix(),
                package=candidate.package,
                source_path=candidate.source_path,
                width=rendered.width,
                height=rendered.height,
                sha256=hashlib.sha256(rendered.jpeg).hexdigest(),
                licence=licence,
                kind=outcome.kind,
                group=group,
                phash=f"{rendered.phash:016x}",
            )
        )


def build_corpus(
    out: Path,
    packages: Sequence[str] = TRAINING_PACKAGES,
    cache: Path | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    *,
    source: PackageSource | None = None,
    photos_only: bool = False,
    avoid: Sequence[CorpusEntry] = (),
    workers: int = 1,
) -> CorpusSummary:
    """Build the corpus under ``out`` (``images/``, ``manifest.jsonl``, ``summary.json``).

    ``source`` makes packages available (default: apt into ``cache``, which then must be given).
    ``photos_only`` keeps only images classified as photographs (the held-out set). ``avoid``:
    entries of another corpus whose pictures must not reappear here (pHash near-duplicates are
    dropped as ``in_other_corpus``). ``workers`` > 1 decodes in that many processes; the result
    does not depend on it. Any previous ``out/images`` is replaced.
    """
    started = time.monotonic()
    if source is None:
        if cache is None:
            raise ValueError("build_corpus needs a cache directory or a package source")
        apt = AptPackageSource(cache)
        apt.prefetch(packages)
        source = apt
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "images", ignore_errors=True)
    state = _BuildState(out=out, photos_only=photos_only)
    avoided = PerceptualHashIndex()
    for entry in avoid:
        avoided.add(int(entry.phash, 16), -1)
    licences: dict[str, str] = {}

    pool = multiprocessing.Pool(workers) if workers > 1 else None
    try:
        for index, package in enumerate(packages):
            with tempfile.TemporaryDirectory(prefix="fpgui-corpus-") as scratch:
                root = source(package, Path(scratch))
                licences[package] = read_licence(root, package)
                drops = state.dropped.setdefault(package, Counter())
                rule = PACKAGE_RULES.get(package, PackageRule())
                candidates = list_candidates(package, root, rule, drops)
                jobs = [(candidate, seed) for candidate in candidates]
                outcomes: Iterable[Outcome] = (
                    pool.imap(_process_job, jobs, chunksize=4)
                    if pool is not None
                    else map(_process_job, jobs)
                )
                for done, outcome in enumerate(outcomes, start=1):
                    if (
                        outcome.dropped is None
                        and len(avoided)
                        and avoided.has_near(outcome.images[0].phash, PHASH_MAX_DISTANCE)
                    ):
                        drops["in_other_corpus"] += 1
                        continue
                    _accept(state, outcome, licences[package])
                    if progress is not None and (done % 250 == 0 or done == len(jobs)):
                        progress(
                            BuildProgress(
                                package,
                                index,
                                len(packages),
                                done,
                                len(jobs),
                                len(state.entries),
                            )
                        )
    finally:
        if pool is not None:
            pool.close()
            pool.join()

    summary = _summarise(state, tuple(packages), licences, seed, time.monotonic() - started)
    lines = "".join(json.dumps(asdict(entry), sort_keys=True) + "\n" for entry in state.entries)
    _atomic_write_text(out / "manifest.jsonl", lines)
    _atomic_write_text(out / "summary.json", json.dumps(asdict(summary), indent=2) + "\n")
    return summary


def _summarise(
    state: _BuildState,
    packages: tuple[str, ...],
    licences: dict[str, str],
    seed: int,
    seconds: float,
) -> CorpusSummary:
    per_package = Counter(entry.package for entry in state.entries)
    per_kind = Counter(entry.kind for entry in state.entries)
    total_dropped: Counter[str] = Counter()
    for drops in state.dropped.values():
        total_dropped.update(drops)
    return CorpusSummary(
        images=len(state.entries),
        tiles=state.tiles,
        per_package={package: per_package.get(package, 0) for package in packages},
        per_kind=dict(sorted(per_kind.items())),
        dropped=dict(sorted(total_dropped.items())),
        dropped_per_package={
            package: dict(sorted(state.dropped.get(package, Counter()).items()))
            for package in packages
        },
        licences=licences,
        packages=packages,
        seed=seed,
        photos_only=state.photos_only,
        seconds=round(seconds, 1),
        bytes_written=state.bytes_written,
    )


def read_manifest(path: Path) -> list[CorpusEntry]:
    """The entries of a ``manifest.jsonl`` (a corpus directory or the file itself), in order."""
    if path.is_dir():
        path = path / "manifest.jsonl"
    entries: list[CorpusEntry] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                entries.append(CorpusEntry(**json.loads(line)))
    return entries


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``corpus`` command."""
    parser = subparsers.add_parser(
        "corpus",
        help="build the training (or held-out) image corpus from Debian packages",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="corpus directory to (re)write")
    parser.add_argument(
        "--cache", type=Path, default=None, help=".deb cache (default: OUT/../debs)"
    )
    parser.add_argument(
        "--holdout",
        action="store_true",
        help=f"build the held-out photo set from {', '.join(HOLDOUT_PACKAGES)} instead",
    )
    parser.add_argument(
        "--avoid",
        type=Path,
        default=None,
        help="manifest of a corpus whose pictures must not reappear "
        "(default with --holdout: OUT/../train/manifest.jsonl when it exists)",
    )
    parser.add_argument("--packages", default=None, help="comma-separated packages to use")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers", type=int, default=min(2, os.cpu_count() or 1), help="decoding processes"
    )
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Entry point of ``python -m model_training corpus``."""
    out: Path = args.out.resolve()
    cache: Path = (args.cache or out.parent / "debs").resolve()
    if args.packages:
        packages: tuple[str, ...] = tuple(p for p in args.packages.split(",") if p)
    else:
        packages = HOLDOUT_PACKAGES if args.holdout else TRAINING_PACKAGES
    avoid_path: Path | None = args.avoid
    if avoid_path is None and args.holdout:
        default = out.parent / "train" / "manifest.jsonl"
        avoid_path = default if default.exists() else None
    avoid = read_manifest(avoid_path) if avoid_path is not None else []

    def report(p: BuildProgress) -> None:
        print(
            f"[{p.package_index + 1}/{p.package_count}] {p.package}: "
            f"{p.candidates_done}/{p.candidates_total} candidates, {p.images_kept} images kept",
            file=sys.stderr,
            flush=True,
        )

    summary = build_corpus(
        out,
        packages,
        cache,
        args.seed,
        report,
        photos_only=args.holdout,
        avoid=avoid,
        workers=args.workers,
    )
    print(
        f"{summary.images} images ({summary.tiles} tiles) in {out}, {summary.per_kind}, "
        f"{summary.bytes_written / 2**20:.0f} MiB, {summary.seconds:.0f} s; "
        f"dropped {summary.dropped}"
    )
    return 0 if summary.images else 1
