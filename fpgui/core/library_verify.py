"""Verifying a library: do catalogue, saved index, model and files on disk agree? And the repairs.

The checks only read. The repair actions are the steps :meth:`Library.verify` takes, under the
write lock, when asked to repair; re-adding changed files and re-embedding are done by the
library's own add and re-embed, whose progress the repair follows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from fpgui.core.catalogue import Catalogue
from fpgui.core.embedder import Embedder
from fpgui.core.errors import FingerprintIndexError
from fpgui.core.index import FingerprintIndex
from fpgui.core.library_results import AddOutcome, AddProgress, VerifyReport
from fpgui.core.scanning import same_state, stat_file


def inspect_library(
    catalogue: Catalogue, mutex: threading.RLock, embedder: Embedder, index_folder: Path
) -> VerifyReport:
    """What is wrong with the library, for ``embedder``'s model; changes nothing."""
    sha, dim = embedder.model_sha256, embedder.embedding_dim
    report = VerifyReport(model_id=embedder.metadata.model_id)
    with mutex:
        report.catalogue_problems = catalogue.integrity_problems()
        rows = catalogue.all_images()
        report.images = len(rows)
        report.library_model_id = catalogue.get_meta("model_id")
        report.vectors_without_rows = catalogue.orphan_embedding_ids()
        wanted = catalogue.embedded_ids(sha)
    report.rows_without_vectors = [r.id for r in rows if r.model_sha256 is None]
    report.other_model = sum(1 for r in rows if r.model_sha256 not in (None, sha))
    for row in rows:
        state = stat_file(row.path)
        if isinstance(state, str):
            report.missing_files.append(row.path)
        elif not same_state(row, state):
            report.changed_files.append(row.path)
    try:
        saved = FingerprintIndex.load(index_folder, dim=dim, model_sha256=sha)
    except FingerprintIndexError as exc:
        if len(wanted):
            report.index_problem = str(exc)
        return report
    live = saved.live_ids()
    report.index_entries = len(live)
    extra = np.setdiff1d(live, wanted, assume_unique=True)
    missing = np.setdiff1d(wanted, live, assume_unique=True)
    report.vectors_without_rows += [int(i) for i in extra]
    if len(missing):
        report.index_problem = f"{len(missing)} fingerprints are missing from the saved index"
    return report


# -- repair actions ------------------------------------------------------------------------------


def remove_orphan_fingerprints(catalogue: Catalogue, mutex: threading.RLock) -> None:
    """Delete stored fingerprints whose image is no longer in the catalogue."""
    with mutex, catalogue.transaction():
        for image_id in catalogue.orphan_embedding_ids():
            catalogue.delete_embedding(image_id)


def follow_repair(
    steps: Iterable[AddProgress],
    report: VerifyReport,
    progress: Callable[[AddProgress], None] | None,
) -> int:
    """Run an add or re-embed to the end, passing on its progress and noting in ``report``
    the files it could not repair; returns how many images it re-embedded."""
    reembedded = 0
    for step in steps:
        if progress:
            progress(step)
        if step.outcome is AddOutcome.REEMBEDDED:
            reembedded += 1
        elif step.outcome is AddOutcome.FAILED and step.path:
            report.unrepaired.append((step.path, step.detail or ""))
    return reembedded


def mark_missing_files(catalogue: Catalogue, missing_files: Sequence[str]) -> int:
    """Set each image's status to "missing" or "ok"; returns how many are missing.

    Missing images keep their fingerprints: a protected image stays protected without its file.
    The caller holds the library's mutex.
    """
    missing = set(missing_files)
    with catalogue.transaction():
        for row in catalogue.all_images():
            status = "missing" if row.path in missing else "ok"
            if row.status != status:
                catalogue.set_status(row.id, status)
    return len(missing)
