"""Procedural product photos for the bundled demo model.

Pure PIL + numpy: small, flat-shaded product shots (t-shirt, mug, sneaker, cap,
tote bag) on a white background, with variation in pose, flip, scale and
position. White products get a grey outline and a stronger ground shadow, so they stand
out from the white background. Used to train the demo checkpoint (``scripts/train_demo_model.py``),
by the adherence benchmark and by tests that need a realistic product image.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

__all__ = ["COLORS", "PRODUCTS", "PRODUCT_WORDS", "caption", "draw_product"]

PRODUCTS: tuple[str, ...] = ("t-shirt", "mug", "sneaker", "cap", "tote bag")

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 40),
    "orange": (245, 135, 20),
    "yellow": (245, 205, 30),
    "green": (40, 160, 60),
    "blue": (35, 85, 210),
    "purple": (120, 50, 170),
    "pink": (240, 110, 175),
    "black": (30, 30, 32),
    "white": (244, 244, 241),
    "grey": (128, 128, 130),
    "brown": (122, 74, 40),
    "beige": (222, 202, 162),
    "navy": (28, 38, 100),
    "teal": (20, 130, 128),
    "maroon": (122, 22, 42),
    "olive": (122, 120, 32),
}

#: Words a caption may use for each product (the first is the canonical name).
PRODUCT_WORDS: dict[str, tuple[str, ...]] = {
    "t-shirt": ("t-shirt", "tshirt", "t shirt", "tee", "shirt", "cotton t-shirt"),
    "mug": ("mug", "cup", "coffee mug", "ceramic mug"),
    "sneaker": ("sneaker", "shoe", "trainer", "running shoe"),
    "cap": ("cap", "baseball cap", "hat"),
    "tote bag": ("tote bag", "tote", "canvas tote", "shopping bag"),
}

_TEMPLATES: tuple[str, ...] = (
    "{a} {c} {p}",
    "{c} {p}",
    "{p}, {c}, studio photo",
    "a photo of {a} {c} {p} on white",
    "{c} {p} product shot",
    "{a} {c} {p} on a white background",
    "product photo of {a} {c} {p}",
    "studio shot of {a} {c} {p}",
    "a picture of {a} {c} {p}",
    "{c} {p} on white background, product photo",
    "the {c} {p}",
    "{a} {c} {p}, studio lighting",
)

_BIG = 256  # drawing resolution; downsampled to the requested size

Shape = tuple[Image.Image, list[tuple[Image.Image, float]]]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def caption(product: str, color: str, rng: np.random.Generator) -> str:
    """A varied caption for ``product`` in ``color``, e.g. "a photo of a red mug on white"."""
    if product not in PRODUCT_WORDS:
        raise ValueError(f"unknown product {product!r}; choose one of {', '.join(PRODUCTS)}")
    if color not in COLORS:
        raise ValueError(f"unknown color {color!r}; choose one of {', '.join(COLORS)}")
    words = PRODUCT_WORDS[product]
    # The canonical word is used more often than each synonym.
    p = words[0] if rng.random() < 0.4 else words[int(rng.integers(len(words)))]
    template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
    return template.format(a=_article(color), c=color, p=p)


def _new_mask() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("L", (_BIG, _BIG), 0)
    return img, ImageDraw.Draw(img)


@cache
def _tshirt() -> Shape:
    body, d = _new_mask()
    d.polygon(
        [
            (100, 40),
            (70, 50),
            (28, 96),
            (54, 124),
            (80, 104),
            (80, 218),
            (176, 218),
            (176, 104),
            (202, 124),
            (228, 96),
            (186, 50),
            (156, 40),
            (144, 56),
            (128, 62),
            (112, 56),
        ],
        fill=255,
    )
    collar, dc = _new_mask()
    dc.arc((98, 14, 158, 64), 20, 160, fill=255, width=7)
    hem, dh = _new_mask()
    dh.line([(82, 208), (174, 208)], fill=255, width=4)
    dh.line([(38, 104), (60, 118)], fill=255, width=4)
    dh.line([(218, 104), (196, 118)], fill=255, width=4)
    return body, [(collar, 0.6), (hem, 0.8)]


@cache
def _mug() -> Shape:
    body, d = _new_mask()
    d.rounded_rectangle((64, 58, 164, 212), radius=18, fill=255)
    d.ellipse((64, 196, 164, 222), fill=255)
    handle, dh = _new_mask()
    dh.ellipse((132, 88, 212, 186), fill=255)
    hole, dho = _new_mask()
    dho.ellipse((150, 106, 194, 168), fill=255)
    mask = Image.fromarray(
        np.maximum(np.asarray(body), np.minimum(np.asarray(handle), 255 - np.asarray(hole))).astype(np.uint8)
    )
    rim, dr = _new_mask()
    dr.ellipse((64, 46, 164, 72), fill=255)
    full = Image.fromarray(np.maximum(np.asarray(mask), np.asarray(rim)).astype(np.uint8))
    inside, di = _new_mask()
    di.ellipse((71, 50, 157, 68), fill=255)
    return full, [(inside, 0.45)]


@cache
def _sneaker() -> Shape:
    upper, d = _new_mask()
    d.polygon(
        [
            (36, 168),
            (34, 118),
            (44, 84),
            (92, 80),
            (116, 58),
            (140, 62),
            (150, 96),
            (200, 128),
            (226, 148),
            (230, 168),
        ],
        fill=255,
    )
    sole, ds = _new_mask()
    ds.rounded_rectangle((26, 160, 236, 190), radius=12, fill=255)
    mask = Image.fromarray(np.maximum(np.asarray(upper), np.asarray(sole)).astype(np.uint8))
    stripe, dt = _new_mask()
    dt.line([(70, 150), (120, 110), (170, 146)], fill=255, width=9)
    laces, dl = _new_mask()
    for i in range(4):
        x, y = 122 + 14 * i, 78 + 12 * i
        dl.line([(x - 8, y + 8), (x + 10, y - 6)], fill=255, width=5)
    collar, dc = _new_mask()
    dc.line([(46, 88), (92, 84)], fill=255, width=6)
    # Negative "shade" values mean a fixed light grey (soles are white-ish rubber).
    return mask, [(stripe, 1.5), (laces, -1.0), (collar, 0.55), (sole, -2.0)]


@cache
def _cap() -> Shape:
    crown, d = _new_mask()
    d.chord((44, 54, 184, 214), 180, 360, fill=255)
    d.rectangle((44, 132, 184, 146), fill=255)
    brim, db = _new_mask()
    db.ellipse((118, 126, 240, 166), fill=255)
    mask = Image.fromarray(np.maximum(np.asarray(crown), np.asarray(brim)).astype(np.uint8))
    seams, dse = _new_mask()
    dse.arc((84, 54, 144, 270), 200, 270, fill=255, width=4)
    dse.arc((84, 54, 144, 270), 270, 340, fill=255, width=4)
    dse.ellipse((106, 48, 122, 60), fill=255)
    band, dba = _new_mask()
    dba.line([(46, 140), (182, 140)], fill=255, width=6)
    return mask, [(brim, 0.72), (seams, 0.6), (band, 0.6)]


@cache
def _tote() -> Shape:
    bag, d = _new_mask()
    d.polygon([(58, 104), (198, 104), (188, 226), (68, 226)], fill=255)
    handles, dh = _new_mask()
    dh.arc((76, 36, 136, 170), 180, 360, fill=255, width=11)
    dh.arc((120, 36, 180, 170), 180, 360, fill=255, width=11)
    mask = Image.fromarray(np.maximum(np.asarray(bag), np.asarray(handles)).astype(np.uint8))
    hem, dm = _new_mask()
    dm.line([(60, 116), (196, 116)], fill=255, width=4)
    pocket, dp = _new_mask()
    dp.rectangle((100, 150, 156, 196), outline=255, width=3)
    return mask, [(handles, 0.78), (hem, 0.65), (pocket, 0.7)]


_SHAPES: dict[str, Callable[[], Shape]] = {
    "t-shirt": _tshirt,
    "mug": _mug,
    "sneaker": _sneaker,
    "cap": _cap,
    "tote bag": _tote,
}

_MAX_ROTATION = {"t-shirt": 8.0, "mug": 12.0, "sneaker": 12.0, "cap": 12.0, "tote bag": 8.0}


def _place(
    img: Image.Image, flip: bool, angle: float, scale: float, dx: int, dy: int, resample: Image.Resampling
) -> Image.Image:
    if flip:
        img = ImageOps.mirror(img)
    img = img.rotate(angle, resample=resample, center=(_BIG / 2, _BIG / 2))
    side = max(1, round(_BIG * scale))
    small = img.resize((side, side), resample=resample)
    out = Image.new("L", (_BIG, _BIG), 0)
    off = (_BIG - side) // 2
    out.paste(small, (off + dx, off + dy))
    return out


def draw_product(product: str, color: str, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """Draw one ``product`` in ``color`` on white, with random pose, scale and position."""
    if product not in _SHAPES:
        raise ValueError(f"unknown product {product!r}; choose one of {', '.join(PRODUCTS)}")
    if color not in COLORS:
        raise ValueError(f"unknown color {color!r}; choose one of {', '.join(COLORS)}")
    mask_img, details = _SHAPES[product]()
    flip = bool(rng.random() < 0.5)
    max_rot = _MAX_ROTATION[product]
    angle = float(rng.uniform(-max_rot, max_rot))
    scale = float(rng.uniform(0.72, 1.0))
    shift = int(round(_BIG * 0.1 * (1.0 - scale) / 0.28 + _BIG * 0.04))
    dx = int(rng.integers(-shift, shift + 1))
    dy = int(rng.integers(-shift, shift + 1))

    def place(img: Image.Image, resample: Image.Resampling = Image.Resampling.BILINEAR) -> Image.Image:
        return _place(img, flip, angle, scale, dx, dy, resample)

    mask = np.asarray(place(mask_img), dtype=np.float32) / 255.0

    jitter = rng.uniform(-8.0, 8.0, size=3).astype(np.float32)
    if color in ("white", "grey"):  # neutral colours keep neutral: less tint
        jitter = jitter * 0.3
    base = np.array(COLORS[color], dtype=np.float32) + jitter
    base = np.clip(base, 0.0, 255.0)
    is_black = color == "black"
    is_white = color == "white"

    # Soft light from the top-left (or top-right when flipped), a gentle gradient over the object.
    yy, xx = np.mgrid[0:_BIG, 0:_BIG].astype(np.float32) / _BIG
    lx = (1.0 - xx) if not flip else xx
    light = 0.84 + 0.2 * (0.55 * lx + 0.45 * (1.0 - yy))
    rgb = np.ones((_BIG, _BIG, 3), dtype=np.float32) * 255.0

    # Soft ground shadow under the object.
    ys, xs = np.nonzero(mask > 0.5)
    if len(ys):
        shadow, dsh = _new_mask()
        cx = float(xs.mean())
        w = float(xs.max() - xs.min()) * 0.45
        bottom = float(ys.max())
        dsh.ellipse((cx - w, bottom - 8, cx + w, bottom + 10), fill=255)
        sh = np.asarray(shadow.filter(ImageFilter.GaussianBlur(8)), dtype=np.float32) / 255.0
        rgb *= (1.0 - (0.2 if is_white else 0.1) * sh)[..., None]

    obj = base[None, None, :] * light[..., None]
    if is_black:
        obj = base[None, None, :] + 40.0 * (light[..., None] - 0.84)
    elif is_white:  # gentler shading: a white product stays white, not grey
        obj = base[None, None, :] * (0.96 + 0.35 * (light[..., None] - 0.94))
    for detail_img, shade in details:
        dm = np.asarray(place(detail_img), dtype=np.float32)[..., None] / 255.0
        if shade < 0:
            tone = np.full(3, 232.0 if shade < -1.5 else 250.0, dtype=np.float32) * light[..., None] / 1.04
        elif shade > 1.0:
            # A lighter tint of the base colour (e.g. a stripe).
            tint = base * 0.55 + 255.0 * 0.45 if not is_black else np.full(3, 235.0, dtype=np.float32)
            tone = tint[None, None, :] * light[..., None]
        elif is_black:
            tone = (base * (0.4 + 0.6 * shade))[None, None, :] + 0.0 * light[..., None]
        elif is_white:  # faint grey details, the product stays white
            tone = base[None, None, :] * (0.7 + 0.3 * shade) * light[..., None]
        else:
            tone = base[None, None, :] * shade * light[..., None]
        obj = obj * (1.0 - dm) + tone * dm

    # Outline: a darker edge of the object silhouette.
    hard = place(mask_img, Image.Resampling.NEAREST)
    eroded = hard.filter(ImageFilter.MinFilter(11 if is_white else 7))
    edge = np.clip(np.asarray(hard, dtype=np.float32) - np.asarray(eroded, dtype=np.float32), 0, 255) / 255.0
    edge = np.asarray(Image.fromarray((edge * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2)))
    edge_f = edge.astype(np.float32)[..., None] / 255.0
    outline = base * (0.3 if is_black else 0.5 if is_white else 0.62)
    obj = obj * (1.0 - edge_f) + outline[None, None, :] * edge_f

    m = mask[..., None]
    rgb = rgb * (1.0 - m) + obj * m
    out = Image.fromarray(np.clip(rgb, 0.0, 255.0).astype(np.uint8), "RGB")
    if size != _BIG:
        out = out.resize((size, size), Image.Resampling.LANCZOS)
    return out
