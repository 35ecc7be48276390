"""The corpus builder on fake unpacked packages: no apt, no network."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import struct
import zlib
from collections import Counter
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from PIL import Image

from model_training import corpus
from model_training.corpus import (
    CorpusEntry,
    PackageRule,
    PerceptualHashIndex,
    build_corpus,
    looks_like_photo,
    rcc_payload,
    read_manifest,
    read_rcc_entries,
)

# --- fixtures: images and a Qt .rcc writer ----------------------------------------------------


def textured(size: tuple[int, int], seed: int) -> Image.Image:
    """A photo-like RGB image: smooth random structure plus grain, different for every seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse, "RGB").resize(size, Image.Resampling.BICUBIC))
    grain = rng.normal(0, 12, size=smooth.shape)
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def make_rcc(files: dict[str, bytes], compress: set[str]) -> bytes:
    """A format-version-2 Qt binary resource bundle holding ``files`` ("dir/name" paths).

    Mirrors rcc's writer: nodes numbered breadth-first so each directory's children are contiguous.
    """
    tree: dict[str, object] = {}
    for path, content in files.items():
        node = tree
        *dirs, name = path.split("/")
        for part in dirs:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[name] = (path, content)

    names = bytearray()
    name_offsets: dict[str, int] = {}

    def name_offset(name: str) -> int:
        if name not in name_offsets:
            name_offsets[name] = len(names)
            encoded = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(name), 0) + encoded)
        return name_offsets[name]

    payloads = bytearray()
    nodes: list[bytes] = []
    queue: list[tuple[str, object]] = [("", tree)]
    next_index = 1
    while queue:
        name, item = queue.pop(0)
        offset = name_offset(name) if name else 0
        if isinstance(item, dict):
            children = sorted(item.items())
            nodes.append(struct.pack(">IHII", offset, 0x02, len(children), next_index) + bytes(8))
            next_index += len(children)
            queue.extend(children)
        else:
            path, payload = cast(tuple[str, bytes], item)
            flags = 0
            if path in compress:
                payload = struct.pack(">I", len(payload)) + zlib.compress(payload)
                flags = 0x01
            nodes.append(struct.pack(">IHHHI", offset, flags, 0, 0, len(payloads)) + bytes(8))
            payloads.extend(struct.pack(">I", len(payload)) + payload)
    tree_bytes = b"".join(nodes)
    header = 20
    tree_off, data_off = header, header + len(tree_bytes)
    names_off = data_off + len(payloads)
    head = b"qres" + struct.pack(">IIII", 2, tree_off, data_off, names_off)
    return head + tree_bytes + bytes(payloads) + bytes(names)


def write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class FakeSource:
    """Serves pre-built package trees instead of running apt and dpkg."""

    def __init__(self, roots: dict[str, Path]) -> None:
        self.roots = roots

    def __call__(self, package: str, scratch: Path) -> Path:
        return self.roots[package]


@pytest.fixture(scope="module")
def fake_packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("packages")
    art, more = base / "fake-art", base / "fake-more"
    write(art, "usr/share/doc/fake-art/copyright", b"Format: dep5\n\nFiles: *\nLicense: CC0-1.0\n")
    original = textured((400, 300), seed=1)
    write(art, "usr/share/fake/a_original.png", encode(original, "PNG"))
    # The same picture, smaller and re-encoded: a near-duplicate that must go.
    write(art, "usr/share/fake/a_smaller.jpg", encode(original.resize((300, 225)), "JPEG"))
    cutout = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    cutout.paste(textured((128, 128), seed=2).convert("RGBA"), (64, 64))
    write(art, "usr/share/fake/cutout.png", encode(cutout, "PNG"))
    write(art, "usr/share/icons/hicolor/big_icon.png", encode(textured((300, 300), 3), "PNG"))
    write(art, "usr/share/fake/tiny.png", encode(textured((64, 64), 4), "PNG"))
    write(art, "usr/share/fake/corrupt.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 100)
    write(art, "usr/share/fake/flat.png", encode(Image.new("RGB", (300, 300), (9, 99, 199)), "PNG"))
    write(art, "usr/share/fake/big.jpg", encode(textured((2100, 1300), seed=5), "JPEG"))
    rcc = make_rcc(
        {
            "activity/pics/inside.png": encode(textured((200, 150), seed=6), "PNG"),
            "activity/Main.qml": b"import QtQuick 2.0\n",
        },
        compress={"activity/pics/inside.png"},
    )
    write(art, "usr/share/fake/rcc/activity.rcc", rcc)
    # An exact copy in another package is dropped wherever it appears.
    write(more, "usr/share/more/copy.png", (art / "usr/share/fake/a_original.png").read_bytes())
    write(more, "usr/share/more/other.png", encode(textured((256, 200), seed=7), "PNG"))
    return {"fake-art": art, "fake-more": more}


@pytest.fixture(scope="module")
def built(
    fake_packages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, corpus.CorpusSummary]:
    out = tmp_path_factory.mktemp("corpus")
    summary = build_corpus(out, ["fake-art", "fake-more"], seed=0, source=FakeSource(fake_packages))
    return out, summary


def by_source(entries: list[CorpusEntry]) -> dict[str, list[CorpusEntry]]:
    grouped: dict[str, list[CorpusEntry]] = {}
    for entry in entries:
        grouped.setdefault(entry.source_path, []).append(entry)
    return grouped


def main_sha256s(out: Path) -> dict[str, str]:
    """source path -> sha256 of its main image (tiles come after their main image)."""
    return {e.source_path: e.sha256 for e in reversed(read_manifest(out))}


# --- rcc -----------------------------------------------------------------------------------------


def test_rcc_reader_finds_nested_files_and_inflates_zlib_payloads() -> None:
    png = encode(textured((20, 10), seed=0), "PNG")
    blob = make_rcc({"a/b/c.png": png, "a/d.txt": b"hello"}, compress={"a/b/c.png"})

    entries = {entry.path: entry for entry in read_rcc_entries(blob)}

    assert set(entries) == {"a/b/c.png", "a/d.txt"}
    assert entries["a/b/c.png"].flags & corpus.RCC_COMPRESSED_ZLIB
    assert rcc_payload(blob, entries["a/b/c.png"]) == png
    assert rcc_payload(blob, entries["a/d.txt"]) == b"hello"


def test_rcc_reader_rejects_other_files() -> None:
    with pytest.raises(corpus.RccFormatError):
        read_rcc_entries(b"\x89PNG" + bytes(40))


# --- the build -----------------------------------------------------------------------------------


def test_build_keeps_real_pictures_and_says_why_others_were_dropped(
    built: tuple[Path, corpus.CorpusSummary],
) -> None:
    out, summary = built
    sources = by_source(read_manifest(out))

    assert set(sources) == {
        "usr/share/fake/a_original.png",
        "usr/share/fake/cutout.png",
        "usr/share/fake/big.jpg",
        "usr/share/fake/rcc/activity.rcc!/activity/pics/inside.png",
        "usr/share/more/other.png",
    }
    assert summary.dropped_per_package["fake-art"] == {
        "flat": 1,
        "icon_path": 1,
        "near_duplicate": 1,
        "too_small": 1,
        "unreadable": 1,
    }
    assert summary.dropped_per_package["fake-more"] == {"exact_duplicate": 1}
    assert summary.per_package == {"fake-art": summary.images - 1, "fake-more": 1}


def test_manifest_rows_describe_the_written_files(built: tuple[Path, corpus.CorpusSummary]) -> None:
    out, summary = built
    entries = read_manifest(out / "manifest.jsonl")

    assert len(entries) == summary.images
    for entry in entries:
        written = (out / entry.file).read_bytes()
        assert hashlib.sha256(written).hexdigest() == entry.sha256
        with Image.open(out / entry.file) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert image.size == (entry.width, entry.height)
        assert max(entry.width, entry.height) <= corpus.MAX_SIDE
        assert entry.file.startswith(f"images/{entry.package}/")
    licences = {entry.package: entry.licence for entry in entries}
    assert licences == {"fake-art": "CC0-1.0", "fake-more": "see copyright"}
    saved = json.loads((out / "summary.json").read_text())
    assert saved["images"] == summary.images and saved["dropped"] == summary.dropped


def test_big_originals_give_tiles_that_share_their_group(
    built: tuple[Path, corpus.CorpusSummary],
) -> None:
    out, summary = built
    big = by_source(read_manifest(out))["usr/share/fake/big.jpg"]

    main, tiles = big[0], big[1:]
    assert (main.width, main.height) == (1024, 634)
    assert len(tiles) == corpus.MAX_TILES == summary.tiles
    assert {tile.group for tile in tiles} == {main.group}
    assert all((tile.width, tile.height) == (512, 512) for tile in tiles)
    assert len({tile.sha256 for tile in tiles}) == len(tiles)
    others = [e.group for e in read_manifest(out) if e.source_path != main.source_path]
    assert main.group not in others


def test_transparent_images_get_a_seeded_backdrop_not_white(
    fake_packages: dict[str, Path], built: tuple[Path, corpus.CorpusSummary], tmp_path: Path
) -> None:
    out, _ = built
    again = build_corpus(
        tmp_path / "again", ["fake-art", "fake-more"], seed=0, source=FakeSource(fake_packages)
    )
    reseeded = build_corpus(
        tmp_path / "reseeded", ["fake-art", "fake-more"], seed=1, source=FakeSource(fake_packages)
    )
    first = main_sha256s(out)
    same = main_sha256s(tmp_path / "again")
    other = main_sha256s(tmp_path / "reseeded")

    assert again.images == reseeded.images
    assert first == same  # deterministic for a seed
    cutout = "usr/share/fake/cutout.png"
    assert other[cutout] != first[cutout]  # the backdrop is what the seed changes...
    assert {k: v for k, v in other.items() if k != cutout} == {
        k: v for k, v in first.items() if k != cutout
    }  # ...and nothing else in the main images (the seed also picks which tiles are cut)
    entry = next(e for e in read_manifest(out) if e.source_path == cutout)
    assert entry.kind == "art"
    with Image.open(out / entry.file) as image:
        corner = np.asarray(image.convert("RGB"))[:32, :32].astype(int)
    assert not (corner > 245).all()  # not "on white"


def test_only_every_nth_video_frame_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "video"
    for number in range(120):
        write(root, f"seq/frame{number:04d}.pgm", b"P5\n1 1\n255\n\0")
    write(root, "seq/background.pgm", b"P5\n1 1\n255\n\0")
    drops: Counter[str] = Counter()

    rule = PackageRule(frames_every=50, frames_max=5)
    found = corpus.list_candidates("video", root, rule, drops)

    assert sorted(c.source_path for c in found) == [
        "seq/background.pgm",
        "seq/frame0000.pgm",
        "seq/frame0050.pgm",
        "seq/frame0100.pgm",
    ]
    assert drops == {"sequence_frame": 117}


def test_holdout_keeps_photos_and_avoids_another_corpus(
    fake_packages: dict[str, Path], built: tuple[Path, corpus.CorpusSummary], tmp_path: Path
) -> None:
    out, _ = built
    train = [e for e in read_manifest(out) if e.package == "fake-more"]

    summary = build_corpus(
        tmp_path / "holdout",
        ["fake-art"],
        seed=0,
        source=FakeSource(fake_packages),
        photos_only=True,
        avoid=train,
    )

    kinds = {e.source_path: e.kind for e in read_manifest(tmp_path / "holdout")}
    assert set(kinds.values()) == {"photo"}
    assert "usr/share/fake/a_original.png" in kinds
    assert "usr/share/fake/cutout.png" not in kinds
    assert summary.dropped["not_photo"] >= 1

    avoid_all = build_corpus(
        tmp_path / "none",
        ["fake-art"],
        seed=0,
        source=FakeSource(fake_packages),
        avoid=read_manifest(out),
    )
    assert avoid_all.images == 0
    assert avoid_all.dropped["in_other_corpus"] == 5  # every picture kept in the first build


def test_parallel_build_matches_serial(
    fake_packages: dict[str, Path], built: tuple[Path, corpus.CorpusSummary], tmp_path: Path
) -> None:
    out, _ = built
    build_corpus(
        tmp_path / "par",
        ["fake-art", "fake-more"],
        seed=0,
        source=FakeSource(fake_packages),
        workers=2,
    )
    assert read_manifest(tmp_path / "par") == read_manifest(out)


# --- pieces --------------------------------------------------------------------------------------


def test_photo_heuristic_tells_texture_from_flat_fills() -> None:
    cartoon = Image.new("RGB", (400, 300), (250, 220, 40))
    cartoon.paste((30, 90, 200), (50, 50, 200, 250))
    cartoon.paste((0, 0, 0), (250, 20, 380, 120))

    assert looks_like_photo(textured((400, 300), seed=8))
    assert not looks_like_photo(cartoon)


def test_hash_index_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(0)
    kept = [int(v) for v in rng.integers(0, 2**63, size=200, dtype=np.int64)]
    index = PerceptualHashIndex()
    for group, value in enumerate(kept):
        index.add(value, group)
    probes = [kept[3] ^ 0b1011, kept[10] ^ 0b11111, *(int(v) for v in rng.integers(0, 2**63, 50))]

    for probe in probes:
        expected = any(bin(probe ^ value).count("1") <= 4 for value in kept)
        assert index.has_near(probe, 4) == expected
    assert index.has_near(kept[3] ^ 0b1, 4)
    assert not index.has_near(kept[3] ^ 0b1, 4, ignore_group=3)


def test_cli_registers_the_corpus_command(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    corpus.register(parser.add_subparsers(dest="command"))

    args = parser.parse_args(["corpus", "--out", str(tmp_path), "--holdout", "--seed", "3"])

    assert args.func is corpus.run_command
    assert args.holdout and args.seed == 3 and args.out == tmp_path
