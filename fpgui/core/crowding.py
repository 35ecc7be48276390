"""Crowding: how many unrelated look-alikes a picture has, and how the verdict allows for it.

Some pictures (dark frames, skies, star fields, textures, flat clip art) sit in crowded parts of
fingerprint space: unrelated images come close to them, so a small distance to a library image is
weak evidence of a copy. Others have no look-alikes at all, so even a heavily edited copy that
lands at a larger distance is still telling.

The model bundle carries the fingerprints of a few thousand unrelated **background** images (from
its training corpus, never from the evaluation sets). A query's distance ``b_k`` to its k-th
nearest background fingerprint measures how crowded its neighbourhood is; the verdict compares
``d * reference / b_k`` with its calibrated thresholds, where ``reference`` is the typical
``b_k`` of a query (so a typical query's distances are unchanged). Scaling every distance of a
query by one factor keeps the ranking and the ``d1 / d2`` ratio, so the app applies it to the
thresholds instead and shows the true distances: ``threshold / factor`` for that query.

Background images that are near-duplicates of the query's nearest library image (within
``radius``) are ignored, so protecting a picture that happens to be in the background set (a
well-known wallpaper, say) does not make its own copies look crowded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32] | npt.NDArray[np.float64]


@dataclass(frozen=True)
class Crowding:
    """Background fingerprints ``(N, D)`` and the calibrated constants of the correction."""

    background: npt.NDArray[np.float32]
    k: int
    reference: float
    radius: float

    def __post_init__(self) -> None:
        if self.background.ndim != 2 or len(self.background) < self.k:
            raise ValueError(
                f"crowding needs at least k={self.k} background fingerprints, "
                f"got an array of shape {self.background.shape}"
            )
        if self.k < 1 or self.reference <= 0 or self.radius < 0:
            raise ValueError("crowding needs k >= 1, reference > 0 and radius >= 0")

    def factors(self, queries: FloatArray, nearest: FloatArray) -> npt.NDArray[np.float64]:
        """Per query, ``reference / b_k``: how much its distances are scaled for the verdict.

        ``queries`` ``(Q, D)`` are query fingerprints, ``nearest`` ``(Q, D)`` the fingerprint of
        each query's nearest library image (its near-duplicates in the background are skipped).
        """
        to_query = self._distances_to(queries)
        to_nearest = self._distances_to(nearest)
        to_query[to_nearest < self.radius] = np.inf
        kth = np.partition(to_query, self.k - 1, axis=1)[:, self.k - 1]
        # Guards: every background image a twin of the nearest (inf) or the query itself one.
        kth = np.where(np.isfinite(kth), kth, self.reference)
        result: npt.NDArray[np.float64] = self.reference / np.maximum(kth, 1e-6)
        return result

    def factor(self, query: FloatArray, nearest: FloatArray) -> float:
        """:meth:`factors` for one query ``(D,)`` and its nearest library fingerprint ``(D,)``."""
        one = np.asarray(query, dtype=np.float64)[None, :]
        near = np.asarray(nearest, dtype=np.float64)[None, :]
        return float(self.factors(one, near)[0])

    @cached_property
    def _squared_norms(self) -> npt.NDArray[np.float64]:
        norms: npt.NDArray[np.float64] = (self.background.astype(np.float64) ** 2).sum(1)
        return norms

    def _distances_to(self, vectors: FloatArray) -> npt.NDArray[np.float64]:
        """``(Q, N)`` L2 distances from ``vectors`` to the background (float32 products)."""
        rows = np.asarray(vectors, dtype=np.float32)
        products = (rows @ self.background.T).astype(np.float64)
        squared = (
            (rows.astype(np.float64) ** 2).sum(1)[:, None] + self._squared_norms - 2 * products
        )
        result: npt.NDArray[np.float64] = np.sqrt(np.clip(squared, 0, None))
        return result
