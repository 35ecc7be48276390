"""Realistic "modified copy" generators and extra photo-like anchors for triplet training.

Every modification is ``fn(img, rng, *, other=None) -> Image`` on a PIL image: ``img`` is the
protected original (any mode; it is converted to RGB and never mutated), ``rng`` a
``random.Random`` that is the only source of randomness (same seed, same output), and ``other`` an
unrelated corpus image that ``mix_content`` blends or pastes (one is synthesised when missing).
The result is always RGB, with every side >= :data:`MIN_SIDE` px and the long side at most
:data:`MAX_GROWTH` times the input's long side.

The first five follow the published approach (text, brightness, screenshot, mixed content,
rotation); the rest are the edits people make when they repost an image. The network sees the
whole image resized to 128x128 grey, so modifications that change the frame (crops, borders,
captions, screenshots, aspect) are as important as pixel edits.

Speed matters: training calls these about 100 times a second on two cores beside the network, so
everything is PIL or small numpy work, typically 0.1-5 ms on a 256x256 input.

Determinism holds for a given machine: ``add_text`` and friends pick from the TrueType fonts found
under ``/usr/share/fonts`` (plus Pillow's built-in font), so a machine with other fonts draws other
glyphs for the same seed.
"""

from __future__ import annotations

import functools
import io
import math
import random
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

MIN_SIDE = 16
MAX_GROWTH = 4
FONT_DIR = Path("/usr/share/fonts")

Colour = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Box = tuple[int, int, int, int]

_BILINEAR = Image.Resampling.BILINEAR
_RESAMPLERS = (
    Image.Resampling.NEAREST,
    Image.Resampling.BILINEAR,
    Image.Resampling.BICUBIC,
    Image.Resampling.LANCZOS,
    Image.Resampling.BOX,
)

_WORDS = (
    "the",
    "best",
    "day",
    "ever",
    "look",
    "at",
    "this",
    "new",
    "photo",
    "when",
    "you",
    "me",
    "love",
    "summer",
    "vibes",
    "LOL",
    "omg",
    "wow",
    "nice",
    "share",
    "follow",
    "like",
    "sale",
    "free",
    "today",
    "only",
    "news",
    "breaking",
    "meanwhile",
    "nobody",
    "literally",
    "my",
    "cat",
    "monday",
    "weekend",
    "travel",
    "food",
    "goals",
    "2024",
    "#tbt",
    "@user",
    "repost",
    "credit",
    "original",
    "art",
    "by",
    "check",
    "out",
    "link",
    "in",
    "bio",
    "sunset",
    "city",
    "dog",
    "be",
    "like",
    "that",
    "feeling",
    "mood",
    "real",
    "fake",
    "100%",
    "!!!",
    "...",
    "why",
    "how",
)


class Modification(Protocol):
    """A modified-copy generator: original in, RGB modified copy out (see module docstring)."""

    __name__: str

    def __call__(
        self, img: Image.Image, rng: random.Random, *, other: Image.Image | None = None
    ) -> Image.Image: ...


MODIFICATIONS: dict[str, Modification] = {}

# Relative frequencies for random_modification; combo is frequent because reposts stack edits.
DEFAULT_WEIGHTS: dict[str, float] = {
    "add_text": 1.0,
    "brightness": 0.6,
    "screenshot": 0.8,
    "mix_content": 0.7,
    "rotate": 0.7,
    "crop": 1.0,
    "rescale": 0.5,
    "jpeg": 0.6,
    "blur": 0.5,
    "noise": 0.5,
    "hflip": 0.4,
    "border": 0.7,
    "colour": 0.8,
    "overlay": 0.8,
    "caption": 0.7,
    "aspect": 0.5,
    "combo": 2.5,
}


# --------------------------------------------------------------------------------------------
# Small helpers


def _fit(out: Image.Image, source_size: tuple[int, int]) -> Image.Image:
    """Enforce the output contract: RGB, sides >= MIN_SIDE, long side <= MAX_GROWTH x input's."""
    if out.mode != "RGB":
        out = out.convert("RGB")
    limit = max(MIN_SIDE, MAX_GROWTH * max(source_size))
    w, h = out.size
    if max(w, h) > limit:
        factor = limit / max(w, h)
        w, h = max(1, round(w * factor)), max(1, round(h * factor))
    if min(w, h) < MIN_SIDE:
        factor = MIN_SIDE / min(w, h)
        w, h = min(limit, round(w * factor)), min(limit, round(h * factor))
        w, h = max(MIN_SIDE, w), max(MIN_SIDE, h)
    if (w, h) != out.size:
        out = out.resize((w, h), _BILINEAR)
    return out


def _modification(fn: Modification) -> Modification:
    """Register ``fn`` in MODIFICATIONS, feeding it RGB and holding its output to the contract."""

    def wrapper(
        img: Image.Image, rng: random.Random, *, other: Image.Image | None = None
    ) -> Image.Image:
        source = img if img.mode == "RGB" else img.convert("RGB")
        if other is not None and other.mode != "RGB":
            other = other.convert("RGB")
        return _fit(fn(source, rng, other=other), img.size)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    MODIFICATIONS[fn.__name__] = wrapper
    return wrapper


def _np_rng(rng: random.Random) -> np.random.Generator:
    return np.random.default_rng(rng.getrandbits(63))


def _random_colour(rng: random.Random) -> Colour:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _text_colour(rng: random.Random) -> Colour:
    """Mostly white or black, as real overlays are; otherwise a saturated colour."""
    roll = rng.random()
    if roll < 0.35:
        return (255, 255, 255)
    if roll < 0.6:
        return (0, 0, 0)
    hue = [rng.randrange(256), rng.randrange(256), rng.randrange(256)]
    hue[rng.randrange(3)] = rng.choice((0, 255))
    return (hue[0], hue[1], hue[2])


def _contrasting(colour: Colour) -> Colour:
    luma = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    return (0, 0, 0) if luma > 128 else (255, 255, 255)


def _fill_colour(rng: random.Random) -> Colour:
    """Fill for padding and rotation corners: black, white, grey or any colour."""
    roll = rng.random()
    if roll < 0.35:
        return (0, 0, 0)
    if roll < 0.65:
        return (255, 255, 255)
    if roll < 0.8:
        grey = rng.randrange(256)
        return (grey, grey, grey)
    return _random_colour(rng)


def _phrase(rng: random.Random, low: int, high: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(low, high))]
    text = " ".join(words)
    roll = rng.random()
    if roll < 0.25:
        return text.upper()
    if roll < 0.45:
        return text.capitalize()
    return text


def _random_text(rng: random.Random) -> str:
    """A single word, a phrase, or a two-to-three line caption."""
    roll = rng.random()
    if roll < 0.35:
        return _phrase(rng, 1, 1)
    if roll < 0.7:
        return _phrase(rng, 2, 5)
    return "\n".join(_phrase(rng, 1, 4) for _ in range(rng.randint(2, 3)))


@functools.lru_cache(maxsize=1)
def _font_files() -> tuple[str, ...]:
    if not FONT_DIR.is_dir():
        return ()
    found = [p for p in FONT_DIR.rglob("*") if p.suffix.lower() in (".ttf", ".otf")]
    return tuple(sorted(str(p) for p in found))


@functools.lru_cache(maxsize=1024)
def _load_font(path: str, size: int) -> Font:
    if path:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    return ImageFont.load_default(size=size)


def _font(rng: random.Random, size: int) -> Font:
    """Pillow's default font (a third of the time) or a system TrueType font, ``size`` px."""
    files = _font_files()
    path = "" if not files or rng.random() < 0.33 else rng.choice(files)
    size = max(6, min(400, size))
    if size > 16:  # ~10% steps keep the font cache small; nobody sees 41 vs 44 px
        size = round(16 * 1.1 ** round(math.log(size / 16, 1.1)))
    return _load_font(path, size)


def _text_size(
    draw: ImageDraw.ImageDraw, text: str, font: Font, stroke: int = 0
) -> tuple[int, int, int, int]:
    """(left, top, width, height) of ``text`` drawn at the origin."""
    left, top, right, bottom = draw.multiline_textbbox(
        (0, 0), text, font=font, stroke_width=stroke, align="center"
    )
    return int(left), int(top), int(math.ceil(right - left)), int(math.ceil(bottom - top))


def _fitting_font(
    draw: ImageDraw.ImageDraw, rng: random.Random, text: str, size: int, max_width: int
) -> Font:
    """A font of about ``size`` px, shrunk once so ``text`` fits ``max_width`` where it can."""
    font = _font(rng, size)
    _, _, width, _ = _text_size(draw, text, font)
    if width > max_width > 0:
        path = getattr(font, "path", "")
        font = _load_font(path if isinstance(path, str) else "", max(6, size * max_width // width))
    return font


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` scaled and centre-cropped to fill ``size`` exactly."""
    return ImageOps.fit(image, size, _BILINEAR)


def _scaled(
    image: Image.Image, factor: float, resample: Image.Resampling = _BILINEAR
) -> Image.Image:
    w, h = image.size
    return image.resize((max(1, round(w * factor)), max(1, round(h * factor))), resample)


def _jpeg(image: Image.Image, quality: int, subsampling: int = 2) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def _opacity_lut(opacity: float) -> list[int]:
    return [round(v * opacity) for v in range(256)]


def _gradient(size: tuple[int, int], rng: random.Random, a: Colour, b: Colour) -> Image.Image:
    """A linear gradient from ``a`` to ``b`` at a random angle, RGB ``size``."""
    ramp = Image.linear_gradient("L")
    if rng.random() < 0.5:
        ramp = ramp.rotate(rng.uniform(0, 360), resample=_BILINEAR, expand=False)
        ramp = ramp.crop((48, 48, 208, 208))
    return ImageOps.colorize(ramp.resize(size, _BILINEAR), a, b)


# --------------------------------------------------------------------------------------------
# The five modifications of the published approach


@_modification
def add_text(
    img: Image.Image, rng: random.Random, *, other: Image.Image | None = None
) -> Image.Image:
    """One to three texts: words to multi-line captions, any font, size, colour, opacity, stroke."""
    w, h = img.size
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    scale = math.sqrt(w * h)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        text = _random_text(rng)
        font = _font(rng, round(scale * rng.uniform(0.05, 0.2)))
        size = int(getattr(font, "size", 10))
        stroke = rng.randint(1, max(1, size // 8)) if rng.random() < 0.4 else 0
        left, top, tw, th = _text_size(draw, text, font, stroke)
        x = rng.randint(-tw // 5, max(-tw // 5, w - 4 * tw // 5)) - left
        y = rng.randint(-th // 5, max(-th // 5, h - 4 * th // 5)) - top
        alpha = round(255 * rng.uniform(0.5, 1.0)) if rng.random() < 0.4 else 255
        colour = _text_colour(rng)
        draw.multiline_text(
            (x, y),
            text,
            font=font,
            fill=(*colour, alpha),
            stroke_width=stroke,
            stroke_fill=(*_contrasting(colour), alpha),
            align=rng.choice(("left", "center", "right")),
            spacing=rng.randint(0, max(1, size // 3)),
        )
    return Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")


@_modification
def brightness(
    img: Image.Image, rng: random.Random, *, other: Image.Image | None = None
) -> Image.Image:
    """Darker or brighter: a linear factor, a gamma curve, or an offset."""
    darker = rng.random() < 0.5
    roll = rng.random()
    if roll < 0.4:
        factor = rng.uniform(0.3, 0.75) if darker else rng.uniform(1.3, 2.0)
        return ImageEnhance.Brightness(img).enhance(factor)
    if roll < 0.85:
        gamma = rng.uniform(1.4, 2.6) if darker else rng.uniform(0.35, 0.7)
        lut = [round(255.0 * (v / 255.0) ** gamma) for v in range(256)]
    else:
        offset = -rng.randint(30, 90) if darker else rng.randint(30, 90)
        lut = [min(255, max(0, v + offset)) for v in range(256)]
    return img.point(lut * 3)


def _traffic_lights(draw: ImageDraw.ImageDraw, x: int, cy: int, r: int) -> None:
    for i, colour in enumerate(((255, 95, 86), (255, 189, 46), (39, 201, 63))):
        cx = x + r + i * 3 * r
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)


def _window_buttons(draw: ImageDraw.ImageDraw, right: int, cy: int, r: int, fg: Colour) -> None:
    """Minimise, maximise and close glyphs, right-aligned at ``right``."""
    cx = right - 2 * r
    draw.line((cx - r, cy - r, cx + r, cy + r), fill=fg, width=max(1, r // 4))
    draw.line((cx - r, cy + r, cx + r, cy - r), fill=fg, width=max(1, r // 4))
    cx -= 4 * r
    draw.rectangle((cx - r, cy - r, cx + r, cy + r), outline=fg, width=max(1, r // 4))
    cx -= 4 * r
    draw.line((cx - r, cy, cx + r, cy), fill=fg, width=max(1, r // 4))


def _shade(colour: Colour, delta: int) -> Colour:
    return (
        min(255, max(0, colour[0] + delta)),
        min(255, max(0, colour[1] + delta)),
        min(255, max(0, colour[2] + delta)),
    )


def _window_frame(
    content: Image.Image, rng: random.Random, unit: int, bg: Colour, fg: Colour
) -> Image.Image:
    """A desktop window: title bar with buttons and title, maybe a menu bar, thin border."""
    cw, ch = content.size
    pad = rng.choice((0, 0, max(1, unit // 6), unit // 2))
    title_h = round(unit * rng.uniform(1.1, 1.6))
    menu_h = round(unit * 1.1) if rng.random() < 0.5 else 0
    status_h = round(unit * 0.9) if rng.random() < 0.3 else 0
    canvas = Image.new("RGB", (cw + 2 * pad, title_h + menu_h + ch + pad + status_h), bg)
    draw = ImageDraw.Draw(canvas)
    bar = _shade(bg, rng.choice((-25, -12, 12)))
    draw.rectangle((0, 0, canvas.width, title_h), fill=bar)
    r = max(2, title_h // 5)
    if rng.random() < 0.5:
        _traffic_lights(draw, r * 2, title_h // 2, r)
    else:
        _window_buttons(draw, canvas.width - r, title_h // 2, r, fg)
    font = _font(rng, max(6, title_h // 2))
    title = _phrase(rng, 1, 4) + rng.choice((".jpg", ".png", " - Photos", " - Viewer", ""))
    draw.text((canvas.width // 2, title_h // 2), title, font=font, fill=fg, anchor="mm")
    if menu_h:
        font = _font(rng, max(6, menu_h // 2))
        x = unit // 2
        for word in ("File", "Edit", "View", "Image", "Help")[: rng.randint(3, 5)]:
            draw.text((x, title_h + menu_h // 2), word, font=font, fill=fg, anchor="lm")
            x += int(draw.textlength(word, font=font)) + unit
    if status_h:
        y = canvas.height - status_h
        draw.rectangle((0, y, canvas.width, canvas.height), fill=bar)
        font = _font(rng, max(6, status_h // 2))
        draw.text((unit // 2, y + status_h // 2), f"{cw} x {ch}", font=font, fill=fg, anchor="lm")
    canvas.paste(content, (pad, title_h + menu_h))
    if pad:
        draw.rectangle((0, 0, canvas.width - 1, canvas.height - 1), outline=_shade(bg, -40))
    return canvas


def _browser_frame(
    content: Image.Image, rng: random.Random, unit: int, bg: Colour, fg: Colour
) -> Image.Image:
    """A browser: tab strip, address bar with URL and navigation icons, optional scroll bar."""
    cw, ch = content.size
    tabs_h = round(unit * 1.3)
    address_h = round(unit * 1.5)
    scroll_w = max(3, unit // 2) if rng.random() < 0.5 else 0
    margin = rng.choice((0, unit))
    top = tabs_h + address_h
    canvas = Image.new("RGB", (cw + scroll_w + 2 * margin, top + ch + 2 * margin), bg)
    draw = ImageDraw.Draw(canvas)
    strip = _shade(bg, -30 if bg[0] > 128 else 25)
    draw.rectangle((0, 0, canvas.width, tabs_h), fill=strip)
    font = _font(rng, max(6, tabs_h // 2))
    x = unit // 2
    tab_w = max(unit * 3, canvas.width // 5)
    for i in range(rng.randint(1, 3)):
        fill = bg if i == 0 else _shade(strip, 10)
        draw.rounded_rectangle(
            (x, unit // 5, x + tab_w, tabs_h + unit), radius=unit // 3, fill=fill
        )
        draw.text(
            (x + unit // 2, tabs_h // 2 + unit // 10),
            _phrase(rng, 1, 3),
            font=font,
            fill=fg,
            anchor="lm",
        )
        x += tab_w + unit // 4
    draw.rectangle((0, tabs_h, canvas.width, top), fill=bg)
    cy = tabs_h + address_h // 2
    r = max(2, unit // 3)
    icon_x = unit // 2
    for _ in range(3):
        draw.ellipse((icon_x, cy - r, icon_x + 2 * r, cy + r), outline=fg, width=max(1, r // 3))
        icon_x += 3 * r
    field = _shade(bg, -18 if bg[0] > 128 else 18)
    draw.rounded_rectangle(
        (
            icon_x + r,
            tabs_h + address_h // 6,
            max(icon_x + r, canvas.width - unit),
            top - address_h // 6,
        ),
        radius=address_h // 3,
        fill=field,
    )
    url = f"https://www.{rng.choice(_WORDS).strip('#@!.%')}site.com/{rng.choice(_WORDS)}/"
    draw.text(
        (icon_x + 2 * r, cy),
        url + str(rng.randint(1, 99999)),
        font=_font(rng, max(6, address_h // 2)),
        fill=fg,
        anchor="lm",
    )
    canvas.paste(content, (margin, top + margin))
    if scroll_w:
        x0 = canvas.width - scroll_w
        draw.rectangle((x0, top, canvas.width, canvas.height), fill=_shade(bg, -10))
        thumb = rng.randint(top, max(top, canvas.height - unit * 2))
        draw.rectangle((x0 + 1, thumb, canvas.width - 2, thumb + unit * 2), fill=_shade(bg, -60))
    return canvas


def _phone_frame(
    content: Image.Image, rng: random.Random, unit: int, bg: Colour, fg: Colour
) -> Image.Image:
    """A phone screen: status bar, app bar or post header, the image, action icons, nav bar."""
    cw, ch = content.size
    status_h = round(unit * 1.2)
    header_h = round(unit * rng.uniform(1.8, 2.6))
    footer_h = round(unit * rng.uniform(2.0, 4.0)) if rng.random() < 0.7 else 0
    nav_h = round(unit * 1.6) if rng.random() < 0.6 else 0
    canvas = Image.new("RGB", (cw, status_h + header_h + ch + footer_h + nav_h), bg)
    draw = ImageDraw.Draw(canvas)
    font = _font(rng, max(6, status_h * 2 // 3))
    clock = f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}"
    draw.text((unit // 2, status_h // 2), clock, font=font, fill=fg, anchor="lm")
    bx = cw - unit * 2
    draw.rectangle((bx, status_h // 4, bx + unit, status_h * 3 // 4), outline=fg)
    draw.rectangle(
        (bx + 1, status_h // 4 + 1, bx + rng.randint(2, unit), status_h * 3 // 4 - 1), fill=fg
    )
    for i in range(4):
        x = bx - unit - i * max(2, unit // 3)
        draw.rectangle(
            (
                x,
                status_h * 3 // 4 - (4 - i) * status_h // 10,
                x + max(1, unit // 5),
                status_h * 3 // 4,
            ),
            fill=fg,
        )
    y = status_h
    avatar = header_h * 2 // 3
    if rng.random() < 0.6:
        draw.ellipse(
            (
                unit // 2,
                y + (header_h - avatar) // 2,
                unit // 2 + avatar,
                y + (header_h + avatar) // 2,
            ),
            fill=_random_colour(rng),
        )
        name = rng.choice(("@", "")) + rng.choice(_WORDS).strip("#@") + str(rng.randint(0, 999))
        draw.text(
            (unit + avatar, y + header_h // 2),
            name,
            font=_font(rng, header_h // 3),
            fill=fg,
            anchor="lm",
        )
    else:
        draw.line(
            (unit // 2, y + header_h // 2, unit * 3 // 2, y + header_h // 2),
            fill=fg,
            width=max(1, unit // 6),
        )
        draw.text(
            (cw // 2, y + header_h // 2),
            _phrase(rng, 1, 2),
            font=_font(rng, header_h // 3),
            fill=fg,
            anchor="mm",
        )
    y += header_h
    canvas.paste(content, (0, y))
    y += ch
    if footer_h:
        r = max(2, unit // 2)
        for i in range(rng.randint(2, 4)):
            x = unit // 2 + i * 3 * r
            draw.ellipse(
                (x, y + unit // 3, x + 2 * r, y + unit // 3 + 2 * r),
                outline=fg,
                width=max(1, r // 4),
            )
        draw.text(
            (unit // 2, y + unit // 3 + 3 * r),
            _phrase(rng, 2, 6),
            font=_font(rng, max(6, unit * 2 // 3)),
            fill=fg,
        )
        y += footer_h
    if nav_h:
        draw.rectangle((0, y, cw, canvas.height), fill=_shade(bg, -8 if bg[0] > 128 else 8))
        for i in range(5):
            cx = (2 * i + 1) * cw // 10
            draw.rectangle(
                (cx - unit // 3, y + nav_h // 3, cx + unit // 3, y + nav_h * 2 // 3),
                outline=fg,
                width=max(1, unit // 8),
            )
    return canvas


@_modification
def screenshot(
    img: Image.Image, rng: random.Random, *, other: Image.Image | None = None
) -> Image.Image:
    """The image in a window, browser or phone screen (drawn chrome), rescaled, JPEG saved."""
    w, h = img.size
    # a viewer zooms a tiny image; below ~96 px the chrome's buttons and text would not fit
    content = _scaled(img, max(rng.uniform(0.6, 1.0), 96 / max(w, h)))
    unit = max(4, min(content.width // 6, round(max(content.size) * rng.uniform(0.03, 0.06))))
    dark = rng.random() < 0.35
    grey = rng.randint(18, 60) if dark else rng.randint(228, 255)
    bg: Colour = (grey, grey, grey)
    fg = _contrasting(bg)
    style = rng.choice(("window", "browser", "phone"))
    if style == "window":
        shot = _window_frame(content, rng, unit, bg, fg)
        if rng.random() < 0.4:  # the window on a desktop
            sw, sh = shot.size
            desk = _gradient(
                (sw + 4 * unit, sh + 4 * unit), rng, _random_colour(rng), _random_colour(rng)
            )
            desk.paste(shot, (rng.randint(0, 4 * unit), rng.randint(0, 4 * unit)))
            shot = desk
    elif style == "browser":
        shot = _browser_frame(content, rng, unit, bg, fg)
    else:
        shot = _phone_frame(content, rng, unit, bg, fg)
    target = max(w, h) * rng.uniform(0.6, 1.2)
    shot = _scaled(shot, target / max(shot.size), rng.choice(_RESAMPLERS[1:4]))
    return _jpeg(shot, rng.randint(45, 95))


@_modification
def mix_content(
    img: Image.Image, rng: random.Random, *, other: Image.Image | None = None
) -> Image.Image:
    """Blend with ``other`` (alpha 0.1-0.4), paste part of it over <=30%, or paste into it."""
    w, h = img.size
    if other is None:
        other = dead_leaves((max(MIN_SIDE, w // 2), max(MIN_SIDE, h // 2)), rng, shapes=60)
    roll = rng.random()
    if roll < 0.3:
        return Image.blend(img, _cover(other, img.size), rng.uniform(0.1, 0.4))
    if roll < 0.65:
        area = rng.uniform(0.06, 0.3) * w * h
        aspect = math.exp(rng.uniform(-0.7, 0.7))
        pw = max(2, min(w, round(math.sqrt(area * aspect))))
        ph = max(2, min(h, round(area / pw)))
        ow, oh = other.size
        sw = rng.randint(max(1, ow // 4), ow)
        sh = max(1, min(oh, round(sw * ph / pw)))
        sx, sy = rng.randint(0, ow - sw), rng.randint(0, oh - sh)
        patch = other.crop((sx, sy, sx + sw, sy + sh)).resize((pw, ph), _BILINEAR)
        out = img.copy()
        pos = (rng.randint(0, w - pw), rng.randint(0, h - ph))
        if rng.random() < 0.3:
            mask = Image.new("L", patch.size, 0)
            ImageDraw.Draw(mask).ellipse((0, 0, pw - 1, ph - 1), fill=255)
            out.paste(patch, pos, mask)
        else:
            out.paste(patch, pos)
        return out
    fraction = rng.uniform(0.6, 0.92)
    split = rng.random()
    cw = max(w + 1, round(w * fraction**-split))
    ch = max(h, round(h * fraction ** -(1.0 - split)))
    canvas = _cover(other, (cw, ch))
    canvas.paste(img, (rng.randint(0, cw - w), rng.randint(0, ch - h)))
    return canvas


def _largest_inner_rect(w: int, h: int, radians: float) -> tuple[float, float]:
    """Largest axis-aligned (width, height) inside a ``w`` x ``h`` box turned by ``radians``."""
    long_side, short_side = (w, h) if w >= h else (h, w)
    sin_a, cos_a = abs(math.sin(radians)), abs(math.cos(radians))
    if short_side <= 2.0 * sin_a * cos_a * long_side or abs(sin_a - cos_a) < 1e-10:
        half = 0.5 * short_side
        return (half / sin_a, half / cos_a) if w >= h else (half / cos_a, half / sin_a)
    cos_2a = cos_a * cos_a - sin_a * sin_a
    return (w * cos_a - h * sin_a) / cos_2a, (h * cos_a - w * sin_a) / cos_2a


def quarter_turn(img: Image.Image, rng: random.Random) -> Image.Image:
    """``img`` turned by 90, 180 or 270 degrees (lossless; width and height swap on odd turns)."""
    turn = rng.choice(
        (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)
    )
    return img.transpose(turn)


@_modification
def rotate(
    img: Image.Image, rng: random.Random, *, other: Image.Image | None = None
) -> Image.Image:
    """A quarter turn, or a small tilt (2-15 degrees) expanded, clipped, or cropped to valid."""
    if rng.random() < 0.3:
        return quarter_turn(img, rng)
    angle = rng.uniform(2.0, 15.0) * rng.choice((-1.0, 1.0))
    resample = rng.choice((Image.Resampling.BILINEAR, Image.Resampling.BICUBIC))
    variant = rng.choice(("expand", "clip", "crop"))
    if variant != "crop":
        return img.rotate(
            angle, resample=resample, expand=variant == "expand", fillcolor=_fill_colour(rng)
        )
    turned = img.rotate(angle, resample=resample, expand=True)
    w, h = img.size
    iw, ih = _largest_inner_rect(w, h, math.radians(angle))
    iw, ih = max(1, int(iw) - 2), max(1, int(ih) - 2)
    left, top = (turned.width - iw) // 2, (turned.height - ih) // 2
    out = turned.crop((left, top, left + iw, top + ih))
    return out.resize(img.size, resample) if rng.random() < 0.5 else out


# --------------------------------------------------------------------------------------------
# Reposting edits


@_modification
def crop(img: Image.Image, rng: random.Random, *, other: Image.Image | None = None) -> Image.Image:
    """Keep 50-95% of the area, any aspect within that, centred or anywhere (corners too)."""
    w, h = img.size
    keep = rng.uniform(0.5, 0.95)
    split = rng.uniform(0.2, 0.8)
    cw = max(1, min(w, round(w * keep**split)))
    ch = max(1, min(h, round(h * keep ** (1.0 - split))))
    if (cw, ch) == (w, h):
        cw = max(1, w - 1) if w > h else w
        ch = h if cw < w else max(1, h - 1)
    roll = rng.random()
    if roll < 0.35:  # roughly centred
        x = (w - cw) // 2 + round(rng.uniform(-0.1, 0.1) * (w - cw))
        y = (h - ch) // 2 + round(rng.uniform(-0.1, 0.1) * (h - ch))
    elif roll < 0.55:  # a corner
        x = rng.choice((0, w - cw))
        y = rng.choice((0, h - ch))
    else:
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return img.crop((x, y, x + cw, y + ch))


@_modification
def rescale(
    img: Image.Image, rng: random.Random, *, other: Image.Image | None = None
) -> Image.Image:
    """Down to 0.25-0.85x, then often back up (to the original or another size)."""
    w, h = img.size
    small = _scaled(img, rng.uniform(0.25, 0.85), rng.choice(_RESAMPLERS))
    roll = rng.random()
    if roll < 0.5:
        return small.resize((w, h), rng.choice(_RESAMPLERS))
    if roll < 0.7:
        return _scaled(
            small, max(w / small.width, 1.0) * rng.uniform(0.8, 1.5), rng.choice(_RESAMPLERS)
        )
    return small


@_modification
def jpeg(img: Image.Image, rng: random.Random, *, other: Image.Image | None = None) -> Image.Image:
    """JPEG at quality 10-70, sometimes after an earlier, better save (double compression)."""
    if rng.random() < 0.25:
        img = _jpeg(img, rng.randint(60, 95))
    return _jpeg(img, rng.randint(10, 70), rng.choice((0, 1, 2, 2)))


@_modification
def blur(img: Image.Image, rng: random.Random, *, other: Image.Image | None = None) -> Image.Image:
    """Gaussian, box or motion blur, scaled to the image size."""
    scale = max(1.0, max(img.size) / 256.0)
    roll = rng.random()
    if roll < 0.4:
        return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 3.0) * scale))
    if roll < 0.85:
        return img.filter(ImageFilter.BoxBlur(rng.uniform(0.7, 2.5) * scale))
    kernel = [0.0] * 25
    direction = rng.randrange(4)  # horizontal, vertical, two diagonals
    for i in range(5):
        row, col = ((2, i), (i, 2), (i, i), (i, 4 - i))[direction]
        kernel[row * 5 + col] = 1.0
    return img.filter(ImageFilter.Kernel((5, 5), kernel, scale=5.0))


@functools.lru_cache(maxsize=1)
def _noise_bank() -> npt.NDArray[np.float32]:
    """(512, 512, 3) float32 standard normal samples, drawn once; windows of it are cheap noise."""
    return np.random.default_rng(20240601).standard_normal((512, 512, 3), dtype=np.float32)


def _standard_normal(rng: random.Random, h: int, w: int, channels: int) -> npt.NDArray[np.float32]:
    """(h, w, channels) float32 ~N(0, 1): a random window of the bank, or fresh when too big."""
    bank = _noise_bank()
    if h > bank.shape[0] or w > bank.shape[1]:
        return _np_rng(rng).standard_normal((h, w, channels), dtype=np.float32)
    y, x = rng.randint(0, bank.shape[0] - h), rng.randint(0, bank.shape[1] - w)
    c = rng.randrange(4 - channels)
    window = bank[y : y + h, x : x + w, c : c + channels]
    return window if rng.random() < 0.5 else -window


@_modification
def noise(img: Image.Image, rng: random.Random, *, other: Image.Image | None = None) -> Image.Image:
    """Gaussian noise (colour or luma, sigma 4-25) or salt-and-pepper (0.5-5% of pixels)."""
    pixels = np.asarray(img, dtype=np.float32)
    h, w = pixels.shape[:2]
    if rng.random() < 0.65:
        channels = 3 if rng.random() < 0.6 else 1
        jitter = _standard_normal(rng, h, w, channels) * rng.uniform(4.0, 25.0)
        out = np.clip(pixels + jitter, 0, 255).astype(np.uint8)
    else:
        out = np.asarray(img, dtype=np.uint8).copy()
        amount = rng.uniform(0.005, 0.05)
        threshold = statistics.NormalDist().inv_cdf(1.0 - amount / 2)
        z = _standard_normal(rng, h, w, 1)[:, :, 0]
        out[z < -threshold] = 0
        out[z > threshold] = 255
    return Image.fromarray(out, "RGB")


@_modification
def hflip(img: Image.Image, rng: random.Random, *, other: Image.Image | None = None) -> Image.Image:
    """Mirror left to right."""
    return ImageOps.mirror(img)


_ASPECTS = (1.0, 4 / 5, 9 / 16, 16 / 9, 4 / 3, 3 / 4)


def _target_canvas(w: int, h: int, rng: random.Random) -> tuple[int, int]:
    """A canvas of a common aspect that holds ``w`` x ``h`` with visible padding."""
    aspect = rng.choice(_ASPECTS)
    if abs(math.log((w / h) / aspect)) < 0.08:  # already that shape: pad all round
        grow = rng.uniform(1.1, 1.3)
        return round(w * grow), round(h * grow)
    if w / h < aspect:
        return round(h * aspect), h
    return w, round(w / aspect)


@_modification
def border(
    img: Image.Image, rng: random.Random, *, other: Image.Image | None = None
) -> Image.Image:
    """Solid padding (even or not), a blurred-fill background, or a letterbox to a common aspect."""
    w, h = img.size
    roll = rng.random()
    if roll < 0.4:
        side = max(w, h)
        if rng.random() < 0.5:
            pads = [max(1, round(side * rng.uniform(0.02, 0.15)))] * 4
        else:
            pads = [round(side * rng.uniform(0.0, 0.2)) for _ in range(4)]
            pads[rng.randrange(4)] = max(1, round(side * rng.uniform(0.03, 0.2)))
        return ImageOps.expand(
            img, border=(pads[0], pads[1], pads[2], pads[3]), fill=_fill_colour(rng)
        )
    cw, ch = _target_canvas(w, h, rng)
    factor = max(w, h) / max(cw, ch)  # platforms re-encode to a fixed long side
    cw, ch = max(MIN_SIDE, round(cw * factor)), max(MIN_SIDE, round(ch * factor))
    inner = _scaled(img, min(cw / w, ch / h) * rng.uniform(0.85, 1.0))
    if roll < 0.7:
        canvas = img.resize((8, 8), _BILINEAR).resize((cw, ch), _BILINEAR)
        canvas = ImageEnhance.Brightness(canvas).enhance(rng.uniform(0.5, 1.0))
    else:
        canvas = Image.new("RGB", (cw, ch), _fill_colour(rng))
    canvas.paste(inner, ((cw - inner.width) // 2, (ch - inner.height) // 2))
    return canvas


def _hue_shift(img: Image.Image, rng: random.Random) -> Image.Image:
    hue, sat, val = img.convert("HSV").split()
    shift = rng.randint(20, 236)
    hue = hue.point([(v + shift) % 256 for v in range(256)])
    return Image.merge("HSV", (hue, sat, val)).convert("RGB")


def _temperature(img: Image.Image, rng: random.Random) -> Image.Image:
    warm = rng.uniform(0.08, 0.3) * rng.choice((-1.0, 1.0))
    gains = (1.0 + warm, 1.0, 1.0 - warm)
    lut = [min(255, round(v * g)) for g in gains for v in range(256)]
    return img.point(lut)


def _vignette(img: Image.Image, rng: random.Random) -> Image.Image:
    mask = Image.radial_gradient("L").resize(img.size, _BILINEAR)
    strength = rng.uniform(0.5, 1.0)
    mask = mask.point([min(255, round(max(0.0, v - 90) * 1.6 * strength)) for v in range(256)])
    return Image.composite(Image.new("RGB", img.size, (0, 0, 0)), img, mask)


def _sepia(img: Image.Image, rng: random.Random) -> Image.Image:
    dark = (rng.randint(30, 60), rng.randint(15, 35), rng.randint(0, 20))
    light = (rng.randint(230, 255), rng.randint(210, 235), rng.randint(160, 200))
    return ImageOps.colorize(ImageOps.grayscale(img), dark, light)


_COLOUR_EDITS: dict[str, Callable[[Image.Image, random.Random], Image.Image]] = {
    "contrast": lambda im, r: ImageEnhance.Contrast(im).enhance(
        r.uniform(0.4, 0.75) if r.random() < 0.5 else r.uniform(1.3, 2.0)
    ),
    "saturation": lambda im, r: ImageEnhance.Color(im).enhance(
        r.uniform(0.0, 0.6) if r.random() < 0.5 else r.uniform(1.5, 2.5)
    ),
    "hue": _hue_shift,
    "grayscale": lambda im, r: ImageOps.grayscale(im).convert("RGB"),
    "sepia": _sepia,
    "posterize": lambda im, r: ImageOps.posterize(im, r.randint(2, 4)),
    "temperature": _temperature,
    "equalize": lambda im, r: ImageOps.equalize(im),
    "tint": lambda im, r: Image.blend(
        im, Image.new("RGB", im.size, _random_colour(r)), r.uniform(0.12, 0.35)
    ),
    "vignette": _vignette,
}


@_modification
def colour(
    img: Image.Image, rng: random.Random, *, other: Image.Image | None = None
) -> Image.Image:
    """One or two of: contrast, saturation, hue, grey, sepia, posterize, warmth, equalize, tint,
    vignette (never invert)."""
    names = rng.sample(sorted(_COLOUR_EDITS), 1 if rng.random() < 0.7 else 2)
    for name in names:
        img = _COLOUR_EDITS[name](img, rng)
    return img


def _sticker(rng: random.Random, size: int) -> Image.Image:
    """An RGBA emoji face, heart, star, badge or logo, ``size`` px square."""
    sticker = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(sticker)
    s = size - 1
    kind = rng.choice(("face", "heart", "star", "badge", "logo"))
    colour = (*_random_colour(rng), 255)
    if kind == "face":
        draw.ellipse((0, 0, s, s), fill=(255, rng.randint(190, 230), 40, 255))
        eye = max(1, size // 10)
        for ex in (size * 0.33, size * 0.67):
            draw.ellipse(
                (ex - eye, size * 0.35 - eye * 1.4, ex + eye, size * 0.35 + eye * 1.4),
                fill=(60, 40, 20, 255),
            )
        draw.arc(
            (size * 0.25, size * 0.35, size * 0.75, size * 0.8),
            20,
            160,
            fill=(60, 40, 20, 255),
            width=max(1, size // 14),
        )
    elif kind == "heart":
        draw.ellipse((0, 0, s * 0.55, s * 0.55), fill=colour)
        draw.ellipse((s * 0.45, 0, s, s * 0.55), fill=colour)
        draw.polygon([(s * 0.03, s * 0.38), (s * 0.97, s * 0.38), (s * 0.5, s)], fill=colour)
    elif kind == "star":
        points = []
        for i in range(10):
            radius = s / 2 if i % 2 == 0 else s / 5
            angle = math.pi * i / 5 - math.pi / 2
            points.append((s / 2 + radius * math.cos(angle), s / 2 + radius * math.sin(angle)))
        draw.polygon(points, fill=colour, outline=(0, 0, 0, 255))
    else:
        if kind == "badge":
            draw.ellipse(
                (0, 0, s, s), fill=colour, outline=(255, 255, 255, 255), width=max(1, size // 16)
            )
        else:
            draw.rounded_rectangle((0, size // 5, s, s - size // 5), radius=size // 6, fill=colour)
        letters = "".join(rng.choice("ABCDEFGHKMNPRSTWXYZ") for _ in range(rng.randint(1, 3)))
        draw.text(
            (size / 2, size / 2),
            letters,
            font=_font(rng, size // (len(letters) + 1)),
            fill=(*_contrasting(colour[:3]), 255),
            anchor="mm",
        )
    return sticker


def _tiled_watermark(img: Image.Image, rng: random.Random) -> Image.Image:
    w, h = img.size
    text = rng.choice(("©", "@", "")) + _phrase(rng, 1, 2)
    font = _font(rng, round(math.sqrt(w * h) * rng.uniform(0.05, 0.11)))
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, tw, th = _text_size(probe, text, font)
    mask = Image.new("L", (tw + 2, th + 2), 0)
    ImageDraw.Draw(mask).text((1 - left, 1 - top), text, font=font, fill=255)
    mask = mask.rotate(rng.uniform(-45, 45), resample=_BILINEAR, expand=True)
    mask = mask.point(_opacity_lut(rng.uniform(0.2, 0.5)))
    ink = Image.new("RGB", mask.size, rng.choice(((255, 255, 255), (0, 0, 0), (128, 128, 128))))
    step_x = mask.width + rng.randint(th // 2, 3 * th)
    step_y = mask.height + rng.randint(th // 2, 3 * th)
    out = img.copy()
    offset = rng.randint(0, step_x)
    for row, y in enumerate(range(-rng.randint(0, step_y), h, step_y)):
        for x in range(-offset - (row % 2) * step_x // 2, w, step_x):
            out.paste(ink, (x, y), mask)
    return out


@_modification
def overlay(
    img: Image.Image, rng: random.Random, *, other: Image.Image | None = None
) -> Image.Image:
    """Stickers (emoji faces, hearts, stars, badges, logos) or a tiled translucent watermark."""
    if rng.random() < 0.3:
        return _tiled_watermark(img, rng)
    out = img.copy()
    w, h = img.size
    for _ in range(rng.choice((1, 1, 2, 3))):
        size = max(6, round(min(w, h) * rng.uniform(0.12, 0.4)))
        sticker = _sticker(rng, size)
        if rng.random() < 0.5:
            sticker = sticker.rotate(rng.uniform(-30, 30), resample=_BILINEAR, expand=True)
        if rng.random() < 0.25:  # a semi-transparent corner logo
            alpha = sticker.getchannel("A").point(_opacity_lut(rng.uniform(0.4, 0.8)))
            sticker.putalpha(alpha)
            margin = max(1, min(w, h) // 30)
            x = rng.choice((margin, w - sticker.width - margin))
            y = rng.choice((margin, h - sticker.height - margin))
        else:
            x = rng.randint(
                -sticker.width // 4, max(-sticker.width // 4, w - sticker.width * 3 // 4)
            )
            y = rng.randint(
                -sticker.height // 4, max(-sticker.height // 4, h - sticker.height * 3 // 4)
            )
        out.paste(sticker, (x, y), sticker)
    return out


def _centred_lines(
    draw: ImageDraw.ImageDraw,
    rng: random.Random,
    text: str,
    box: Box,
    size: int,
    fill: Colour,
    stroke: int = 0,
) -> None:
    left, top, right, bottom = box
    font = _fitting_font(draw, rng, text, size, int((right - left) * 0.95))
    draw.multiline_text(
        ((left + right) / 2, (top + bottom) / 2),
        text,
        font=font,
        fill=fill,
        anchor="mm",
        align="center",
        stroke_width=stroke,
        stroke_fill=_contrasting(fill),
    )


@_modification
def caption(
    img: Image.Image, rng: random.Random, *, other: Image.Image | None = None
) -> Image.Image:
    """Meme-style caption: a text bar added above and/or below, or outlined text on the image."""
    w, h = img.size
    if rng.random() < 0.35:  # classic meme: white, outlined, upper case, inside the picture
        out = img.copy()
        draw = ImageDraw.Draw(out)
        size = max(6, round(h * rng.uniform(0.08, 0.15)))
        stroke = max(1, size // 12)
        places = rng.choice(("top", "bottom", "both"))
        if places in ("top", "both"):
            _centred_lines(
                draw,
                rng,
                _phrase(rng, 1, 5).upper(),
                (0, 0, w, size * 2),
                size,
                (255, 255, 255),
                stroke,
            )
        if places in ("bottom", "both"):
            _centred_lines(
                draw,
                rng,
                _phrase(rng, 1, 5).upper(),
                (0, h - size * 2, w, h),
                size,
                (255, 255, 255),
                stroke,
            )
        return out
    bar_h = max(8, round(h * rng.uniform(0.12, 0.35)))
    places = rng.choice(("top", "top", "bottom", "both"))
    top_h = bar_h if places in ("top", "both") else 0
    bottom_h = bar_h if places in ("bottom", "both") else 0
    bar = rng.choice(((255, 255, 255), (255, 255, 255), (0, 0, 0), _random_colour(rng)))
    canvas = Image.new("RGB", (w, h + top_h + bottom_h), bar)
    canvas.paste(img, (0, top_h))
    draw = ImageDraw.Draw(canvas)
    ink = _contrasting(bar)
    for start, height in ((0, top_h), (top_h + h, bottom_h)):
        if height:
            lines = rng.choice((1, 1, 2))
            text = "\n".join(_phrase(rng, 2, 6) for _ in range(lines))
            size = max(6, round(height * rng.uniform(0.28, 0.45) / lines))
            _centred_lines(draw, rng, text, (0, start, w, start + height), size, ink)
    return canvas


@_modification
def aspect(
    img: Image.Image, rng: random.Random, *, other: Image.Image | None = None
) -> Image.Image:
    """Stretch or squeeze one axis by 0.6-0.88 or 1.12-1.6."""
    factor = rng.uniform(0.6, 0.88) if rng.random() < 0.5 else rng.uniform(1.12, 1.6)
    w, h = img.size
    if rng.random() < 0.5:
        return img.resize((max(1, round(w * factor)), h), _BILINEAR)
    return img.resize((w, max(1, round(h * factor))), _BILINEAR)


@_modification
def combo(img: Image.Image, rng: random.Random, *, other: Image.Image | None = None) -> Image.Image:
    """Two to four different modifications in sequence, as a much-reposted image collects them."""
    names = rng.sample(sorted(n for n in MODIFICATIONS if n != "combo"), rng.randint(2, 4))
    for name in names:
        img = MODIFICATIONS[name](img, rng, other=other)
    return img


# --------------------------------------------------------------------------------------------
# Choosing a modification


def modification_names() -> list[str]:
    """All registered modification names, sorted."""
    return sorted(MODIFICATIONS)


def random_modification(
    img: Image.Image,
    rng: random.Random,
    other: Image.Image | None = None,
    weights: dict[str, float] | None = None,
) -> tuple[Image.Image, str]:
    """Apply one modification drawn by ``weights`` (default :data:`DEFAULT_WEIGHTS`).

    Returns the modified RGB copy and the modification's name.
    """
    table = DEFAULT_WEIGHTS if weights is None else weights
    names = [name for name in sorted(table) if table[name] > 0]
    if not names:
        raise ValueError("no modification has a positive weight")
    unknown = [name for name in names if name not in MODIFICATIONS]
    if unknown:
        raise ValueError(f"unknown modifications: {', '.join(unknown)}")
    name = rng.choices(names, weights=[table[n] for n in names])[0]
    return MODIFICATIONS[name](img, rng, other=other), name


# --------------------------------------------------------------------------------------------
# More photo-like anchors


def _power_law_radius(rng: random.Random, r_min: float, r_max: float, exponent: float) -> float:
    """Radius with density proportional to r**-exponent on [r_min, r_max] (inverse CDF)."""
    power = 1.0 - exponent
    low, high = r_min**power, r_max**power
    return float((low + rng.random() * (high - low)) ** (1.0 / power))


def dead_leaves(
    size: tuple[int, int], rng: random.Random, *, shapes: int | None = None
) -> Image.Image:
    """A dead-leaves image: overlapping shapes whose radii follow a power law (density ~ r^-3).

    ``size`` is (width, height) px; ``shapes`` defaults to about 250 for 256x256, scaled by area.
    Colours come from a small random palette (as a photo's do), a few leaves carry gradients, and
    the result is sometimes softened or grainy. Returns RGB.
    """
    w, h = max(1, size[0]), max(1, size[1])
    long_side = max(w, h)
    palette = [_random_colour(rng) for _ in range(rng.randint(3, 8))]
    if rng.random() < 0.5:
        canvas = _gradient((w, h), rng, rng.choice(palette), rng.choice(palette))
    else:
        canvas = Image.new("RGB", (w, h), rng.choice(palette))
    draw = ImageDraw.Draw(canvas)
    count = shapes if shapes is not None else max(40, min(800, round(250 * w * h / 65536)))
    r_min, r_max = max(1.0, 0.008 * long_side), max(2.0, 0.45 * long_side)
    jitter = rng.randint(10, 50)
    for _ in range(count):
        r = _power_law_radius(rng, r_min, r_max, 3.0)
        cx, cy = rng.uniform(-r, w + r), rng.uniform(-r, h + r)
        base = rng.choice(palette) if rng.random() < 0.8 else _random_colour(rng)
        fill = _shade(base, rng.randint(-jitter, jitter))
        if r > 0.12 * long_side and rng.random() < 0.15:  # a textured leaf
            box = (round(cx - r), round(cy - r), round(cx + r), round(cy + r))
            side = max(2, box[2] - box[0])
            patch = _gradient((side, side), rng, fill, _random_colour(rng))
            mask = Image.new("L", (side, side), 0)
            ImageDraw.Draw(mask).ellipse((0, 0, side - 1, side - 1), fill=255)
            canvas.paste(patch, box[:2], mask)
            continue
        kind = rng.random()
        if kind < 0.55:
            aspect_ratio = rng.uniform(0.5, 1.0)
            draw.ellipse((cx - r, cy - r * aspect_ratio, cx + r, cy + r * aspect_ratio), fill=fill)
        elif kind < 0.8:
            draw.rectangle((cx - r, cy - r * rng.uniform(0.3, 1.0), cx + r, cy + r), fill=fill)
        elif kind < 0.95:
            draw.regular_polygon(
                (cx, cy, r), rng.randint(3, 6), rotation=rng.uniform(0, 360), fill=fill
            )
        else:
            draw.ellipse(
                (cx - r, cy - r, cx + r, cy + r),
                outline=fill,
                width=max(1, round(r * rng.uniform(0.1, 0.4))),
            )
    roll = rng.random()
    if roll < 0.3:
        canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5) * long_side / 256))
    elif roll < 0.5:
        grain = _standard_normal(rng, h, w, 1) * rng.uniform(3, 10)
        pixels = np.asarray(canvas, dtype=np.float32) + grain
        canvas = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    return canvas


def _split(box: Box, count: int, rng: random.Random) -> list[Box]:
    """Cut ``box`` into ``count`` rectangles by random guillotine cuts."""
    if count == 1:
        return [box]
    left, top, right, bottom = box
    first = rng.randint(1, count - 1) if count > 3 else count // 2
    ratio = first / count * rng.uniform(0.75, 1.25)
    if (right - left) >= (bottom - top) or rng.random() < 0.25:
        cut = left + round((right - left) * ratio)
        a: Box = (left, top, cut, bottom)
        b: Box = (cut, top, right, bottom)
    else:
        cut = top + round((bottom - top) * ratio)
        a, b = (left, top, right, cut), (left, cut, right, bottom)
    return _split(a, first, rng) + _split(b, count - first, rng)


def compose_anchor(
    images: Sequence[Image.Image], rng: random.Random, *, size: tuple[int, int] | None = None
) -> Image.Image:
    """A new anchor: a mosaic or a scattered collage of 2-4 of ``images`` (at least two needed).

    ``size`` is (width, height) px; by default the long side follows the inputs (128-512 px) at a
    common aspect. Returns RGB.
    """
    if len(images) < 2:
        raise ValueError("compose_anchor needs at least two images")
    count = rng.randint(2, min(4, len(images)))
    chosen = [im.convert("RGB") for im in rng.sample(list(images), count)]
    if size is None:
        long_side = min(512, max(128, max(max(im.size) for im in chosen)))
        ratio = rng.choice(_ASPECTS)
        size = (
            (long_side, round(long_side / ratio))
            if ratio >= 1
            else (round(long_side * ratio), long_side)
        )
    w, h = max(MIN_SIDE, size[0]), max(MIN_SIDE, size[1])
    if rng.random() < 0.25:  # scattered prints on the first image
        canvas = _cover(chosen[0], (w, h))
        for im in chosen[1:]:
            side = max(8, round(max(w, h) * rng.uniform(0.3, 0.55)))
            tile = im.copy()
            tile.thumbnail((side, side), _BILINEAR)
            tile = ImageOps.expand(tile, border=max(1, side // 25), fill=(255, 255, 255))
            angle = rng.uniform(-20, 20)
            mask = Image.new("L", tile.size, 255).rotate(angle, expand=True)
            tile = tile.rotate(angle, resample=_BILINEAR, expand=True)
            canvas.paste(
                tile,
                (
                    rng.randint(-tile.width // 4, max(0, w - tile.width * 3 // 4)),
                    rng.randint(-tile.height // 4, max(0, h - tile.height * 3 // 4)),
                ),
                mask,
            )
        return canvas
    gutter = 0 if rng.random() < 0.5 else rng.randint(1, max(1, max(w, h) // 40))
    canvas = Image.new("RGB", (w, h), _fill_colour(rng))
    for im, (left, top, right, bottom) in zip(
        chosen, _split((0, 0, w, h), len(chosen), rng), strict=True
    ):
        tw, th = right - left - gutter, bottom - top - gutter
        if tw > 0 and th > 0:
            canvas.paste(_cover(im, (tw, th)), (left + gutter // 2, top + gutter // 2))
    return canvas
