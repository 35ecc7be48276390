"""Regenerate the README screenshots from the real main window.

Run under a virtual X server so the real platform plugin, fonts and style are used::

    xvfb-run -a -s "-screen 0 1400x1000x24" .venv/bin/python docs/make_screenshots.py

Builds a throw-away library of generated photos in a temporary data dir (the user's own library
is never touched), uses the active model (or a random-weights one when none is installed), and
writes ``docs/screenshot-*.png``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(tempfile.mkdtemp(prefix="fpgui-shots-"))
os.environ["FPGUI_DATA_DIR"] = str(DATA)
os.environ.setdefault("QT_QPA_PLATFORM", "xcb" if os.environ.get("DISPLAY") else "offscreen")

from PIL import ImageEnhance  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from fpgui.ui.app import create_application  # noqa: E402
from fpgui.ui.main_window import CHECK_TAB, LIBRARY_TAB, MainWindow, choose_model_dir  # noqa: E402
from fpgui.ui.settings_dialog import SettingsStore  # noqa: E402
from fpgui.ui.tasks import SyncTaskRunner  # noqa: E402
from fpgui.ui.thumbnails import ThumbnailCache  # noqa: E402
from tests.conftest import make_photo  # noqa: E402

OUT = ROOT / "docs"
SIZE = (1200, 800)


def model_dir() -> tuple[Path, bool]:
    """The installed model, or a random-weights one (then verdict thresholds are overridden)."""
    folder = choose_model_dir()
    if (folder / "model.json").is_file():
        return folder, False
    import torch

    from fpgui.core.architecture import FingerprintNet
    from fpgui.core.model_files import ModelMetadata, save_model_bundle

    torch.manual_seed(0)
    network = FingerprintNet(embedding_dim=128, in_channels=1, l2_normalize=True).eval()
    meta = ModelMetadata(name="demo-random", version="0", input_size=128, threshold=0.35)
    target = DATA / "model"
    save_model_bundle(network, meta, target)
    return target, True


def settle(app: QApplication, seconds: float = 1.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def shoot(window: MainWindow, app: QApplication, name: str) -> None:
    settle(app)
    path = OUT / f"screenshot-{name}.png"
    window.grab().save(str(path))
    print("wrote", path.relative_to(ROOT))


def main() -> int:
    photos = DATA / "Photos" / "2024 Portfolio"
    photos.mkdir(parents=True)
    names = ["harbour", "dunes", "market", "lighthouse", "orchard", "glacier", "bridge", "forest"]
    for i in range(24):
        make_photo(i, size=(480, 360)).save(photos / f"{names[i % 8]}_{i:02d}.jpg", quality=90)
    queries = DATA / "Downloads"
    queries.mkdir()
    edited = ImageEnhance.Brightness(make_photo(3, size=(480, 360))).enhance(1.15)
    edited = edited.crop((20, 15, 460, 345))
    edited.save(queries / "found_online.jpg", quality=70)
    make_photo(500, size=(480, 360)).save(queries / "holiday_snapshot.jpg")
    make_photo(9, size=(480, 360)).save(queries / "reposted_dunes.jpg", quality=60)
    (queries / "corrupt_download.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")

    folder, random_weights = model_dir()
    app = create_application()
    store = SettingsStore()
    window = MainWindow(
        SyncTaskRunner(),
        ThumbnailCache(),
        store,
        DATA / "library",
        model_dir=folder,
        device="cpu",
        window_state=QSettings(str(DATA / "window.ini"), QSettings.Format.IniFormat),
    )
    window.resize(*SIZE)
    window.show()
    window.start()
    window.library_view.add_paths([str(photos)])
    window.library_view.grid.clearSelection()
    window.tabs.setCurrentIndex(LIBRARY_TAB)
    settle(app, 3)
    shoot(window, app, "library")

    window.tabs.setCurrentIndex(CHECK_TAB)
    window.check_view.check_paths([str(queries / "found_online.jpg")])
    shoot(window, app, "check-copy")

    if random_weights:  # random weights put everything close: a strict threshold for the demo
        store.update(threshold_override=0.01)
    window.check_view.check_paths([str(queries / "holiday_snapshot.jpg")])
    shoot(window, app, "check-no-match")

    window.check_view.check_paths([str(queries)])
    shoot(window, app, "batch")

    window.check_view.check_paths([str(queries / "corrupt_download.jpg")])
    shoot(window, app, "error")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
