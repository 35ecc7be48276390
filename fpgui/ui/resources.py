"""Small shared resources of the UI: the application icon, file-dialog filters, help text."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap


@cache
def image_file_filter() -> str:
    """The file-dialog filter for every image suffix the core can decode.

    Imported on first use: ``fpgui.core.images`` pulls in numpy and Pillow, which the first
    window does not need.
    """
    from fpgui.core.images import SUPPORTED_SUFFIXES

    patterns = " ".join(f"*{s}" for s in sorted(SUPPORTED_SUFFIXES))
    return f"Images ({patterns});;All files (*)"


def app_icon() -> QIcon:
    """A drawn icon (a fingerprint-blue rounded square with "fp"), so no asset file is needed."""
    icon = QIcon()
    for size in (16, 32, 64, 128, 256):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(QColor("#1f5f99"))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawRoundedRect(QRectF(0, 0, size, size), size * 0.2, size * 0.2)
        font = QFont()
        font.setBold(True)
        font.setPixelSize(max(6, int(size * 0.5)))
        painter.setFont(font)
        painter.setPen(QColor("white"))
        painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, "fp")
        painter.end()
        icon.addPixmap(pixmap)
    return icon


HELP_TEXT = """<h3>fpgui: is this image a copy of one of mine?</h3>
<p><b>1. Build your library.</b> In <i>Library</i>, add the folders holding the photos you want to
protect (Ctrl+Shift+A, or drop a folder on the grid). Each image is fingerprinted once; adding the
same folder again only picks up what changed.</p>
<p><b>2. Check an image.</b> In <i>Check</i>, drop an image, paste one (Ctrl+V) or open one
(Ctrl+O). The banner gives one of three verdicts: <i>Copy of &lt;name&gt;</i> (red) when your
image is almost certainly a modified copy of that protected image, <i>Possible copy of
&lt;name&gt;</i> (amber) when it may be one, so compare the two before you act, or <i>No match</i>
(green). The five closest protected images are shown below it; <i>Compare</i> puts one beside your
query. Several files or a folder give a table you can export.</p>
<p><b>Two numbers decide</b>, and the banner shows both: the distance to the closest protected
image (an L2 distance between fingerprints, 0 = identical, 2 = opposite), and, for models calibrated
for it, that distance as a fraction of the distance to the next different protected image (a copy
is much nearer its original than anything else, even when heavy edits push its distance up). The
thresholds come from the model's calibration and are scaled for each image by how many unrelated
look-alikes it has: looser for a distinctive picture, tighter for a dark frame, a sky or a texture
(the banner says when and by how much). You can override the copy distance threshold in
Settings.</p>
"""
