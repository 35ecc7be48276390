"""Modified-copy generators: the contract every modification keeps, and that each one shows."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image, ImageChops

from model_training import augment
from model_training.augment import (
    DEFAULT_WEIGHTS,
    MAX_GROWTH,
    MIN_SIDE,
    MODIFICATIONS,
    compose_anchor,
    dead_leaves,
    modification_names,
    quarter_turn,
    random_modification,
)

NAMES = modification_names()
SEEDS = range(8)


def photo(size: tuple[int, int] = (256, 256), seed: int = 1) -> Image.Image:
    return dead_leaves(size, random.Random(seed))


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a, b).getbbox() is None


def assert_contract(out: Image.Image, source: Image.Image) -> None:
    assert out.mode == "RGB"
    assert min(out.size) >= MIN_SIDE
    assert max(out.size) <= MAX_GROWTH * max(source.size)


INPUTS = {
    "photo": photo(),
    "tiny": photo((32, 32), seed=2),
    "grey": photo((200, 150), seed=3).convert("L"),
    "wide": photo((1000, 50), seed=4),
    "tall": photo((40, 700), seed=5),
    "large": photo((1600, 1200), seed=6),
    "rgba": photo((120, 90), seed=7).convert("RGBA"),
}


def test_registry_covers_the_published_and_reposting_edits() -> None:
    expected = {
        "add_text", "brightness", "screenshot", "mix_content", "rotate", "crop", "rescale",
        "jpeg", "blur", "noise", "hflip", "border", "colour", "overlay", "caption", "aspect",
        "combo",
    }  # fmt: skip
    assert set(NAMES) == expected
    assert set(DEFAULT_WEIGHTS) == expected
    assert all(MODIFICATIONS[name].__name__ == name for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_output_contract_on_awkward_inputs(name: str, kind: str) -> None:
    source = INPUTS[kind]
    before = source.tobytes()
    seeds = SEEDS if max(source.size) <= 256 else range(2)
    for seed in seeds:
        out = MODIFICATIONS[name](source, random.Random(seed), other=INPUTS["photo"])
        assert_contract(out, source)
    assert source.tobytes() == before, "input image was mutated"


@pytest.mark.parametrize("name", NAMES)
def test_without_other_image(name: str) -> None:
    source = INPUTS["photo"]
    for seed in SEEDS:
        assert_contract(MODIFICATIONS[name](source, random.Random(seed)), source)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(name: str) -> None:
    source, other = photo(), photo((180, 240), seed=9)
    for seed in SEEDS:
        first = MODIFICATIONS[name](source, random.Random(seed), other=other)
        second = MODIFICATIONS[name](source, random.Random(seed), other=other)
        assert same(first, second)


@pytest.mark.parametrize("name", NAMES)
def test_every_modification_changes_the_image(name: str) -> None:
    for seed in range(20):
        source = photo(seed=100 + seed)
        out = MODIFICATIONS[name](source, random.Random(seed), other=photo(seed=200 + seed))
        assert not same(out, source), f"{name} left seed {seed} unchanged"


def test_seeds_give_variety() -> None:
    source = photo()
    for name in NAMES:
        if name == "hflip":
            continue
        outs = [MODIFICATIONS[name](source, random.Random(seed)) for seed in range(4)]
        distinct = {(o.size, o.tobytes()) for o in outs}
        assert len(distinct) > 1, name


def test_crop_keeps_between_half_and_most_of_the_area() -> None:
    source = photo((300, 200))
    for seed in range(50):
        out = MODIFICATIONS["crop"](source, random.Random(seed))
        fraction = out.width * out.height / (300 * 200)
        assert 0.49 <= fraction < 1.0


def test_hflip_mirrors() -> None:
    source = photo()
    out = MODIFICATIONS["hflip"](source, random.Random(0))
    assert same(out.transpose(Image.Transpose.FLIP_LEFT_RIGHT), source)


def test_quarter_turn_is_a_lossless_turn_of_90_180_or_270_degrees() -> None:
    source = photo((300, 200))
    turns = {
        Image.Transpose.ROTATE_90,
        Image.Transpose.ROTATE_180,
        Image.Transpose.ROTATE_270,
    }
    seen = set()
    for seed in range(30):
        out = quarter_turn(source, random.Random(seed))
        matches = [t for t in turns if same(out, source.transpose(t))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == turns


def test_aspect_stretches_one_axis() -> None:
    source = photo((200, 100))
    for seed in range(20):
        w, h = MODIFICATIONS["aspect"](source, random.Random(seed)).size
        ratio = (w / h) / 2.0
        assert 0.58 <= ratio <= 1.62 and abs(ratio - 1.0) > 0.1
        assert w == 200 or h == 100


def test_caption_bar_adds_height_or_writes_on_the_image() -> None:
    source = photo((200, 100))
    heights = {MODIFICATIONS["caption"](source, random.Random(s)).height for s in range(20)}
    assert 100 in heights and max(heights) > 100


def test_random_modification_follows_weights() -> None:
    rng = random.Random(0)
    source = photo((64, 64))
    names = [random_modification(source, rng, weights={"crop": 1.0, "hflip": 3.0})[1]
             for _ in range(200)]  # fmt: skip
    assert set(names) == {"crop", "hflip"}
    assert 100 < names.count("hflip") < 190


def test_random_modification_default_weights_and_errors() -> None:
    out, name = random_modification(photo(), random.Random(3))
    assert name in MODIFICATIONS
    assert_contract(out, photo())
    with pytest.raises(ValueError, match="unknown"):
        random_modification(photo(), random.Random(0), weights={"sharpen": 1.0})
    with pytest.raises(ValueError, match="positive"):
        random_modification(photo(), random.Random(0), weights={"crop": 0.0})


def test_dead_leaves_is_photo_like_and_seeded() -> None:
    first = dead_leaves((160, 120), random.Random(5))
    assert first.mode == "RGB" and first.size == (160, 120)
    assert same(first, dead_leaves((160, 120), random.Random(5)))
    assert not same(first, dead_leaves((160, 120), random.Random(6)))
    pixels = np.asarray(first, dtype=np.float32)
    assert pixels.std() > 10  # not flat
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # many colours
    assert dead_leaves((7, 3), random.Random(0)).size == (7, 3)


def test_compose_anchor_makes_a_mosaic() -> None:
    images = [photo((120, 80), seed=s) for s in range(4)]
    grey = images[1].convert("L")
    out = compose_anchor([images[0], grey, images[2]], random.Random(0))
    assert out.mode == "RGB" and max(out.size) >= 128
    assert same(out, compose_anchor([images[0], grey, images[2]], random.Random(0)))
    sized = compose_anchor(images, random.Random(1), size=(200, 100))
    assert sized.size == (200, 100)
    for seed in range(20):
        assert compose_anchor(images, random.Random(seed)).mode == "RGB"
    with pytest.raises(ValueError, match="two"):
        compose_anchor(images[:1], random.Random(0))


def test_without_system_fonts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(augment, "_font_files", lambda: ())
    source = photo()
    for name in ("add_text", "caption", "screenshot", "overlay"):
        assert_contract(MODIFICATIONS[name](source, random.Random(0)), source)
