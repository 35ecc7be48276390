from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import make_photo


def write_tiny_corpus(folder: Path, count: int = 24) -> Path:
    """A corpus folder in the manifest format with ``count`` generated photos."""
    (folder / "images" / "gen").mkdir(parents=True)
    rows = []
    for i in range(count):
        rel = f"images/gen/img_{i:03d}.jpg"
        make_photo(100 + i, (160, 120)).save(folder / rel, quality=92)
        rows.append(
            {
                "file": rel,
                "package": "generated",
                "source_path": f"/gen/{i}",
                "width": 160,
                "height": 120,
                "sha256": hashlib.sha256((folder / rel).read_bytes()).hexdigest(),
                "licence": "generated",
                "kind": "photo" if i % 2 else "art",
                "group": f"g{i}",
                "phash": f"{i:016x}",
            }
        )
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus"), 40)
