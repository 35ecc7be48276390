"""Re-embedding, one batch at a time: fingerprint library images again with the current model.

A new model's fingerprints cannot be compared with the old one's, so after a model change every
image is fingerprinted again from its file. Files that are gone or changed since they were added
fail and keep their old fingerprint (adding them again is the way to take the new content).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from fpgui.core.catalogue import Catalogue, ImageRow
from fpgui.core.embedder import Embedder
from fpgui.core.library_adding import CommittedBatch
from fpgui.core.library_results import AddOutcome
from fpgui.core.scanning import same_state, stat_file


def reembed_batch(
    catalogue: Catalogue, mutex: threading.RLock, rows: list[ImageRow], embedder: Embedder
) -> CommittedBatch:
    """Fingerprint ``rows`` again and commit the new fingerprints; outcomes in input order."""
    outcomes: dict[str, tuple[AddOutcome, str | None]] = {}
    readable: list[ImageRow] = []
    for row in rows:
        state = stat_file(row.path)
        if isinstance(state, str):
            outcomes[row.path] = (AddOutcome.FAILED, f"cannot re-embed: {state}")
        elif not same_state(row, state):
            outcomes[row.path] = (
                AddOutcome.FAILED,
                "cannot re-embed: the file changed since it was added (add it again)",
            )
        else:
            readable.append(row)
    vectors: dict[int, np.ndarray] = {}
    by_path = {row.path: row for row in readable}
    for result in embedder.embed_paths(
        [Path(r.path) for r in readable], batch_size=max(1, len(readable))
    ):
        row = by_path[str(result.path)]
        if result.embedding is None:
            outcomes[row.path] = (AddOutcome.FAILED, f"cannot re-embed: {result.error}")
        else:
            vectors[row.id] = result.embedding
            outcomes[row.path] = (AddOutcome.REEMBEDDED, None)
    if vectors:
        with mutex, catalogue.transaction():
            for image_id, vector in vectors.items():
                catalogue.put_embedding(image_id, embedder.model_sha256, vector)
    results = [(row.path, *outcomes[row.path]) for row in rows]
    return CommittedBatch(results, vectors, [])
