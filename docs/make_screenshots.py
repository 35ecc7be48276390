"""Regenerate the README screenshots from the real main window.

Run under a virtual X server so the real platform plugin, fonts and style are used::

    xvfb-run -a -s "-screen 0 1400x1000x24" .venv/bin/python docs/make_screenshots.py

Builds a throw-away library in a temporary data dir (the user's own library is never touched) from
the wallpaper photos in ``corpus/holdout/images`` (generated photos when that folder is missing),
checks an edited copy of one of them (cropped, captioned) and a photo the library does not hold,
uses the bundled model ``resources/model`` (else the active one, else random weights), and writes
``docs/screenshot-*.png``.
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

from PIL import Image, ImageDraw, ImageEnhance, ImageFont  # noqa: E402
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
PHOTO_DIR = ROOT / "corpus" / "holdout" / "images"
BUNDLED_MODEL = ROOT / "resources" / "model"
NOT_IN_LIBRARY = "EveningGlow"  # the unrelated photo for the "No match" screenshot


def real_photos() -> dict[str, Path]:
    """Original wallpapers (not their ``_t*`` variants) by short name, e.g. ``Dune``."""
    found: dict[str, Path] = {}
    for path in sorted(PHOTO_DIR.glob("*/*.jpg")):
        stem = path.stem
        if "_t" in stem.rsplit("-", 1)[-1]:
            continue
        parts = stem.split("__")
        if "nature" in stem:  # mate: .../nature/Dune-<hash>
            name = parts[-1].split("-")[0]
        elif parts[-2] == "backgrounds":  # lomiri: .../backgrounds/Bridge_by_Someone-<hash>
            name = parts[-1].rsplit("-", 1)[0].split("_by_")[0]
        else:  # plasma: .../wallpapers/Kite/contents/images/<size>-<hash>
            name = parts[-4]
        found.setdefault(name, path)
    return found


def captioned(image: Image.Image, text: str) -> Image.Image:
    """A crop of ``image`` with a caption bar, as a re-post on a web page would look."""
    w, h = image.size
    out = image.crop((w // 10, h // 10, w - w // 12, h - h // 8)).convert("RGB")
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(14, out.height // 16))
    draw.rectangle((0, out.height - out.height // 8, out.width, out.height), fill=(0, 0, 0))
    draw.text((12, out.height - out.height // 9), text, fill=(255, 255, 255), font=font)
    return out


def model_dir() -> tuple[Path, bool]:
    """The bundled model, else the installed one, else random weights (thresholds overridden)."""
    if (BUNDLED_MODEL / "model.json").is_file():
        return BUNDLED_MODEL, False
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
    queries = DATA / "Downloads"
    queries.mkdir()
    real = real_photos()
    if len(real) >= 6 and NOT_IN_LIBRARY in real:
        for name, path in real.items():
            with Image.open(path) as opened:
                opened.draft("RGB", (1200, 900))
                image = opened.convert("RGB")
            image.thumbnail((1200, 900))
            out = (
                queries / "holiday_snapshot.jpg"
                if name == NOT_IN_LIBRARY
                else photos / f"{name}.jpg"
            )
            image.save(out, quality=88)
        with Image.open(photos / "Dune.jpg") as dune:
            captioned(dune, "Desert at dawn - free wallpaper").save(
                queries / "found_online.jpg", quality=70
            )
        with Image.open(photos / "LadyBird.jpg") as ladybird:
            ladybird.resize((ladybird.width // 2, ladybird.height // 2)).save(
                queries / "reposted_ladybird.jpg", quality=60
            )
    else:  # no corpus checked out: generated photos
        names = ["harbour", "dunes", "market", "lighthouse", "orchard", "glacier", "bridge"]
        for i in range(24):
            make_photo(i, size=(480, 360)).save(photos / f"{names[i % 7]}_{i:02d}.jpg", quality=90)
        edited = ImageEnhance.Brightness(make_photo(3, size=(480, 360))).enhance(1.15)
        edited.crop((20, 15, 460, 345)).save(queries / "found_online.jpg", quality=70)
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
