"""Checking a query image against the library: nearest fingerprints and a verdict.

The verdict is ``is_copy`` when the nearest library image is closer than the threshold (L2 between
unit-length embeddings, so in [0, 2]). The threshold is the model's own, from its metadata, unless
the caller overrides it (the settings' ``threshold_override``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from fpgui.core.errors import ImageLoadError
from fpgui.core.images import load_image_bytes
from fpgui.core.library import Library

DEFAULT_TOP_K = 5

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
    """

    query: str
    sha256: str
    matches: list[Match]
    is_copy: bool
    threshold: float
    model_id: str
    checked_at: datetime
    not_compared: int = 0

    @property
    def nearest(self) -> Match | None:
        return self.matches[0] if self.matches else None

    def to_json_dict(self) -> dict[str, Any]:
        """The command line's ``--json`` object for this query (a documented, stable schema)."""
        return {
            "query": self.query,
            "sha256": self.sha256,
            "is_copy": self.is_copy,
            "threshold": self.threshold,
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

    ``threshold`` overrides the model's; ``name`` is what ``CheckResult.query`` shows for bytes or
    an in-memory image. Raises :class:`ImageLoadError` when the query cannot be decoded.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, not {top_k}")
    embedder = library.embedder
    min_size = embedder.metadata.input_size * 2
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
    found = library.nearest(vector, top_k)
    limit = embedder.metadata.threshold if threshold is None else float(threshold)
    matches = [
        Match(rank, protected.id, protected.path, protected.sha256, distance)
        for rank, (protected, distance) in enumerate(found, start=1)
    ]
    return CheckResult(
        query=label,
        sha256=digest,
        matches=matches,
        is_copy=bool(matches) and matches[0].distance < limit,
        threshold=limit,
        model_id=embedder.metadata.model_id,
        checked_at=datetime.now(UTC),
        not_compared=library.needs_reembed(),
    )


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
