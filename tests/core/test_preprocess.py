from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from fpgui.core.model_files import ModelMetadata
from fpgui.core.preprocess import MIN_IMAGE_STD, to_model_tensor
from tests.conftest import make_photo

FIXED = ModelMetadata(name="t", version="1", input_size=32)
PER_IMAGE = dataclasses.replace(FIXED, normalization="per_image")


def test_fixed_normalisation_maps_black_and_white_to_minus_one_and_one() -> None:
    black = to_model_tensor(Image.new("L", (40, 40), 0), FIXED)
    white = to_model_tensor(Image.new("L", (40, 40), 255), FIXED)
    assert black.shape == (1, 32, 32)
    assert float(black.min()) == float(black.max()) == -1.0
    assert float(white.min()) == float(white.max()) == 1.0


def test_per_image_normalisation_gives_zero_mean_unit_std() -> None:
    tensor = to_model_tensor(make_photo(3, (80, 60)), PER_IMAGE).numpy()
    assert tensor.dtype == np.float32
    assert float(tensor.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(tensor.std()) == pytest.approx(1.0, abs=1e-4)


def test_per_image_normalisation_cancels_brightness_and_contrast_changes() -> None:
    photo = make_photo(5, (96, 72))
    edited = ImageEnhance.Contrast(ImageEnhance.Brightness(photo).enhance(0.7)).enhance(0.8)
    for meta, limit in ((FIXED, None), (PER_IMAGE, 0.1)):
        a = to_model_tensor(photo, meta).numpy()
        b = to_model_tensor(edited, meta).numpy()
        gap = float(np.abs(a - b).mean())
        if limit is None:
            fixed_gap = gap
        else:
            assert gap < limit
            assert gap < fixed_gap / 3


def test_a_flat_image_is_not_blown_up_into_noise() -> None:
    rng = np.random.default_rng(0)
    # A grey page with +-1 grey level of JPEG-like noise.
    page = (128 + rng.integers(-1, 2, (64, 64))).astype(np.uint8)
    tensor = to_model_tensor(Image.fromarray(page, "L"), PER_IMAGE).numpy()
    # Divided by the floor, not by its own tiny std: values stay small.
    assert float(np.abs(tensor).max()) <= (2 / 255 * 2) / MIN_IMAGE_STD + 1e-5
    assert float(np.abs(tensor).max()) < 1.0
