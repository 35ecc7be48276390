"""Turning a decoded image into the model's input tensor; shared by the app and training.

The whole image is resized (not cropped) to ``input_size`` squared so that borders, captions and
crops stay visible to the network; aspect-ratio changes are one of the modifications it learns.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from fpgui.core.model_files import ModelMetadata


def to_model_image(image: Image.Image, meta: ModelMetadata) -> Image.Image:
    """Colour mode and size the model expects; ``image`` is any PIL image already decoded."""
    converted = image.convert(meta.colour_mode) if image.mode != meta.colour_mode else image
    size = (meta.input_size, meta.input_size)
    if converted.size != size:
        converted = converted.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return converted


def to_model_tensor(image: Image.Image, meta: ModelMetadata) -> torch.Tensor:
    """``(C, S, S)`` float32, normalised with the model's mean and std."""
    array = np.asarray(to_model_image(image, meta), dtype=np.float32) / 255.0
    array = array[None, :, :] if array.ndim == 2 else array.transpose(2, 0, 1)
    mean = np.asarray(meta.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(meta.std, dtype=np.float32)[:, None, None]
    return torch.from_numpy((array - mean) / std)
