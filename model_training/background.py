"""Fitting the crowding correction (``fpgui.core.crowding``) that export bundles with a model.

The background is up to ``BACKGROUND_IMAGES`` images of the corpus's *training* split (never its
validation or test groups, nor the held-out photos), unmodified, as a library would hold them.
``reference`` is the median ``b_k`` of the calibration queries, so a typical query's distances are
unchanged; ``radius`` is half the plain distance threshold at 99% validation precision: background
images that close to a library image are taken for copies of it and ignored.

Measured on the stage-4 model (3 runs x 1,000 + 1,000 queries, seed 0; see the README), k = 3
raised the strict recall at 99% validation precision from 0.75 to 0.87-0.89 and left the
balanced F1 about where it was; k = 1 was as good on validation but less precise on the test
sets, k = 10 clearly weaker.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fpgui.core.architecture import FingerprintNet
from fpgui.core.crowding import Crowding
from fpgui.core.embedder import Embedder
from fpgui.core.model_files import ModelMetadata
from model_training.config import TrainConfig
from model_training.data import load_corpus_split, load_images
from model_training.evaluate import (
    ModelFingerprinter,
    QuerySet,
    calibrate_threshold,
    verdicts_of,
)

BACKGROUND_IMAGES = 4000
CROWDING_K = 3
BACKGROUND_LONG_SIDE = 384  # as the evaluation's images


def background_fingerprints(
    embedder: Embedder, corpus: Path, config: TrainConfig, count: int = BACKGROUND_IMAGES
) -> npt.NDArray[np.float32]:
    """Fingerprints of up to ``count`` training-split images, chosen by a fixed seed."""
    entries = list(load_corpus_split(corpus, config).train)
    random.Random("background").shuffle(entries)
    images = load_images([corpus / e.file for e in entries[:count]], BACKGROUND_LONG_SIDE)
    result: npt.NDArray[np.float32] = embedder.embed_images(images, batch_size=64)
    return result


def fit_crowding(
    background: npt.NDArray[np.float32],
    calibration_queries: npt.NDArray[np.float32],
    plain_threshold: float,
    k: int = CROWDING_K,
) -> Crowding | None:
    """The correction for these background fingerprints, or None when there are too few (a tiny
    corpus) to say anything about crowding."""
    if len(background) < max(k, 2) or len(calibration_queries) == 0:
        return None
    # Bundles store the background in fp16: fit and evaluate with exactly what the app will use.
    background = background.astype(np.float16).astype(np.float32)
    probe = Crowding(background, k, 1.0, 0.0)
    # With reference 1 and no radius, the factor is 1 / b_k.
    kth = 1.0 / probe.factors(calibration_queries, calibration_queries)
    return Crowding(background, k, float(np.median(kth)), max(0.0, plain_threshold / 2))


def crowding_for(
    network: FingerprintNet,
    meta: ModelMetadata,
    corpus: Path,
    config: TrainConfig,
    calibration: QuerySet,
) -> Crowding | None:
    """Fit the correction for ``network`` on the corpus's training split and the validation
    ``calibration`` queries."""
    plain = Embedder.from_network(network, meta, device="cpu")
    threshold = calibrate_threshold(verdicts_of(ModelFingerprinter("plain", plain), calibration))
    queries = plain.embed_images([q.image for q in calibration.queries], batch_size=64)
    return fit_crowding(background_fingerprints(plain, corpus, config), queries, threshold)
