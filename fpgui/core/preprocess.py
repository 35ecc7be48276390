"""Turning a decoded image into the model's input tensor; shared by the app and training.

The whole image is resized (not cropped) to ``input_size`` squared so that borders, captions and
crops stay visible to the network; aspect-ratio changes are one of the modifications it learns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
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


# Below this grey-level std (in units of the fixed normalisation) an image is treated as flat:
# dividing by its std would turn JPEG noise on a blank page into a full-contrast pattern.
MIN_IMAGE_STD = 0.05


def normalise_array(array: npt.NDArray[np.float32], meta: ModelMetadata) -> npt.NDArray[np.float32]:
    """``(C, S, S)`` values in [0, 1] -> the model's input scale (see ``meta.normalization``)."""
    mean = np.asarray(meta.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(meta.std, dtype=np.float32)[:, None, None]
    fixed = (array - mean) / std
    if meta.normalization == "fixed":
        return fixed
    centred = fixed - fixed.mean(axis=(1, 2), keepdims=True)
    spread = np.maximum(centred.std(axis=(1, 2), keepdims=True), MIN_IMAGE_STD)
    result: npt.NDArray[np.float32] = (centred / spread).astype(np.float32)
    return result


def to_model_tensor(image: Image.Image, meta: ModelMetadata) -> torch.Tensor:
    """``(C, S, S)`` float32, normalised as the model's metadata says."""
    array = np.asarray(to_model_image(image, meta), dtype=np.float32) / 255.0
    array = array[None, :, :] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(normalise_array(array, meta)))
