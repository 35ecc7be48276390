"""Checking a query image against the library: nearest fingerprints and a verdict.

The verdict (copy, possible copy or no match; see :mod:`fpgui.core.verdict`) comes from the
distance ``d1`` to the nearest library image (L2 between unit-length embeddings, so in [0, 2]) and,
when the model is calibrated for it, from the ratio of ``d1`` to ``d2``, the distance to the nearest
library image that is not a near-duplicate of the nearest one. The thresholds are the model's own,
from its metadata; the caller may override the strict distance threshold (the settings'
``threshold_override``).
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fpgui.core.errors import ImageLoadError
from fpgui.core.images import load_image_bytes
from fpgui.core.library import Library, Neighbourhood
from fpgui.core.verdict import Verdict, VerdictPolicy, VerdictRule, second_distinct

DEFAULT_TOP_K = 5
# Neighbours searched to find d2 past the nearest image's near-duplicates (e.g. a photo protected
# at several sizes), however few matches the caller wants back.
SECOND_DISTINCT_NEIGHBOURS = 10
# How people see each verdict: the batch table, its exports and reports use these words.
VERDICT_LABELS = {
    Verdict.COPY: "Copy",
    Verdict.POSSIBLE: "Possible copy",
    Verdict.NO_MATCH: "No match",
}

Query = str | os.PathLike[str] | bytes | Image.Image


@dataclass(frozen=True)
class Match:
    """A library image near the query; ``distance`` is L2 between fingerprints."""

    rank: int  # 1 = nearest
    image_id: int
    path: str
    sha256: str
    distance: float


@dataclass(frozen=True)
class CheckResult:
    """The answer for one query image.

    ``sha256`` is that of the query file's bytes (of the raw pixels for an in-memory image).
    ``not_compared`` counts library images that have no fingerprint from the current model yet.
    ``threshold`` is the strict (copy) distance threshold in use; ``second_distance`` is ``d2``
    (None when the library holds no image distinct from the nearest one); ``ratio`` is
    ``d1 / min(d2, reference_distance)``, None when the model has no ratio calibration (or when
    it is infinite: no distinct second image and no cap). ``ratio_threshold``, the ``possible_*``
    thresholds and ``reference_distance`` are None when not calibrated. ``crowding`` is the
    query's crowding factor (see :mod:`fpgui.core.crowding`; 1 when the model has none): the
    thresholds here are the model's divided by it, so they apply to the true distances shown.
    """

    query: str
    sha256: str
    matches: list[Match]
    verdict: Verdict
    threshold: float
    model_id: str
    checked_at: datetime
    not_compared: int = 0
    second_distance: float | None = None
    ratio: float | None = None
    ratio_threshold: float | None = None
    possible_threshold: float | None = None
    possible_ratio_threshold: float | None = None
    reference_distance: float | None = None
    crowding: float = 1.0

    @property
    def is_copy(self) -> bool:
        return self.verdict is Verdict.COPY

    @property
    def verdict_label(self) -> str:
        """ "Copy", "Possible copy" or "No match"."""
        return VERDICT_LABELS[self.verdict]

    @property
    def nearest(self) -> Match | None:
        return self.matches[0] if self.matches else None

    def headline(self) -> str:
        """The verdict in words: "Copy of beach.jpg", "Possible copy of beach.jpg - compare to
        confirm", "No match"."""
        nearest = self.nearest
        if nearest is None:
            return "No match - the library is empty"
        name = os.path.basename(nearest.path)
        if self.verdict is Verdict.COPY:
            return f"Copy of {name}"
        if self.verdict is Verdict.POSSIBLE:
            return f"Possible copy of {name} - compare to confirm"
        return "No match"

    def evidence_text(self, digits: int = 2) -> str:
        """The numbers that decided the verdict, e.g. "distance 0.31 (threshold 0.21); 0.38 x the
        next distinct image (ratio threshold 0.42)"; "" when the library had nothing to compare."""
        nearest = self.nearest
        if nearest is None:
            return ""

        def f(value: float) -> str:
            return f"{value:.{digits}f}"

        limits = f"threshold {f(self.threshold)}"
        if self.possible_threshold is not None and self.possible_threshold > self.threshold:
            limits += f", possible below {f(self.possible_threshold)}"
        text = f"distance {f(nearest.distance)} ({limits})"
        if abs(self.crowding - 1.0) >= 0.005:
            fewer = "fewer" if self.crowding < 1.0 else "more"
            text += (
                f"; thresholds x{f(1.0 / self.crowding)}: {fewer} look-alikes than most pictures"
            )
        if self.ratio_threshold is None and self.possible_ratio_threshold is None:
            return text
        if self.ratio is None:
            return f"{text}; no distinct second image to compare the distance with"
        ratio_limits = (
            [] if self.ratio_threshold is None else [f"threshold {f(self.ratio_threshold)}"]
        )
        if self.possible_ratio_threshold is not None and (
            self.ratio_threshold is None or self.possible_ratio_threshold > self.ratio_threshold
        ):
            ratio_limits.append(f"possible below {f(self.possible_ratio_threshold)}")
        return (
            f"{text}; {f(self.ratio)} x the next distinct image (ratio {', '.join(ratio_limits)})"
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The command line's ``--json`` object for this query (a documented, stable schema)."""
        return {
            "query": self.query,
            "sha256": self.sha256,
            "is_copy": self.is_copy,
            "threshold": self.threshold,
            "verdict": self.verdict.value,
            "ratio": self.ratio,
            "ratio_threshold": self.ratio_threshold,
            "matches": [
                {"rank": m.rank, "path": m.path, "sha256": m.sha256, "distance": m.distance}
                for m in self.matches
            ],
        }


def error_json_dict(query: str, message: str) -> dict[str, Any]:
    """The ``--json`` object for a query that could not be checked."""
    return {"query": query, "error": message}


def check(
    library: Library,
    query: Query,
    top_k: int = DEFAULT_TOP_K,
    *,
    threshold: float | None = None,
    name: str | None = None,
) -> CheckResult:
    """Embed ``query`` (a path, encoded bytes or a decoded image) and compare it with the library.

    ``threshold`` overrides the model's strict distance threshold; ``name`` is what
    ``CheckResult.query`` shows for bytes or an in-memory image. Raises :class:`ImageLoadError`
    when the query cannot be decoded.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, not {top_k}")
    embedder = library.embedder
    metadata = embedder.metadata
    min_size = metadata.input_size * 2
    if isinstance(query, Image.Image):
        label = name or "<image>"
        digest = hashlib.sha256(query.tobytes()).hexdigest()
        image = query if query.mode == "RGB" else query.convert("RGB")
    elif isinstance(query, bytes):
        label = name or "<image bytes>"
        digest = hashlib.sha256(query).hexdigest()
        image = load_image_bytes(query, name=label, min_size=min_size)
    else:
        label = name or str(query)
        data = read_query_bytes(Path(query))
        digest = hashlib.sha256(data).hexdigest()
        image = load_image_bytes(data, name=label, min_size=min_size)
    vector = embedder.embed_image(image)
    neighbours = library.neighbourhood(vector, max(top_k, SECOND_DISTINCT_NEIGHBOURS))
    crowding = 1.0
    if embedder.crowding is not None and neighbours.images:
        crowding = embedder.crowding.factor(vector, neighbours.fingerprints[0])
    policy = metadata.verdict_policy(threshold).scaled(crowding)
    nearest = neighbours.images[0][1] if neighbours.images else None
    # Near-duplicates are judged by the model's own threshold, the radius its ratio threshold was
    # calibrated with; a user's threshold override moves the verdict, not the library's twins.
    second = second_distance(neighbours, metadata.threshold)
    matches = [
        Match(rank, protected.id, protected.path, protected.sha256, distance)
        for rank, (protected, distance) in enumerate(neighbours.images[:top_k], start=1)
    ]
    balanced = policy.balanced
    return CheckResult(
        query=label,
        sha256=digest,
        matches=matches,
        verdict=policy.decide(nearest, second),
        threshold=policy.strict.threshold,
        model_id=metadata.model_id,
        checked_at=datetime.now(UTC),
        not_compared=library.needs_reembed(),
        second_distance=second,
        ratio=_ratio(policy, nearest, second),
        ratio_threshold=_calibrated(policy.strict.ratio_threshold),
        possible_threshold=None if balanced is None else balanced.threshold,
        possible_ratio_threshold=_calibrated(balanced.ratio_threshold if balanced else 0.0),
        reference_distance=_calibrated(policy.strict.reference_distance),
        crowding=crowding,
    )


def second_distance(neighbours: Neighbourhood, radius: float) -> float | None:
    """``d2`` of a query: its distance to the nearest found image that is at least ``radius``
    from the nearest one (see :func:`fpgui.core.verdict.second_distinct`).

    When every found image is a near-duplicate of the nearest but the index holds more, the last
    found distance stands in: a lower bound of ``d2``, so the ratio it gives errs towards no match.
    None when the library has no image distinct from the nearest.
    """
    distances = [distance for _, distance in neighbours.images]
    if not distances:
        return None
    vectors = neighbours.fingerprints
    apart = np.linalg.norm(vectors - vectors[0], axis=1).tolist()
    second = second_distinct(distances, apart, radius)
    if second is None and neighbours.searched > len(distances):
        return distances[-1]
    return second


def _ratio(policy: VerdictPolicy, nearest: float | None, second: float | None) -> float | None:
    """The ratio the policy tests, or None when it tests none (or it is infinite)."""
    rules = [policy.strict] if policy.balanced is None else [policy.strict, policy.balanced]
    rule: VerdictRule | None = next((r for r in rules if r.ratio_threshold > 0), None)
    if rule is None or nearest is None:
        return None
    ratio = rule.ratio(nearest, second)
    return None if math.isinf(ratio) else ratio


def _calibrated(value: float) -> float | None:
    return value if value > 0 else None


def read_query_bytes(path: Path) -> bytes:
    """The bytes of a query file; ImageLoadError with a specific reason when it can't be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(path, "is a folder") from None
    except PermissionError:
        raise ImageLoadError(path, "permission denied") from None
    except OSError as exc:
        raise ImageLoadError(path, f"cannot read file: {exc.strerror or exc}") from None
