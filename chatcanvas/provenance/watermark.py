"""The invisible watermark, in the ``dwtDct`` format of invisible-watermark (the one SDXL uses).

What a reader checks (``imwatermark.WatermarkDecoder("bytes", 32).decode(bgr, "dwtDct")``): the U plane
of OpenCV's YUV, its Haar LL band, cut in 4x4 blocks; in each block the largest coefficient but the
first holds one bit, ``1`` when it sits in the upper half of a step of 36; block ``n`` votes for bit
``n % 32`` and each bit is the majority of its votes.

imwatermark's own encoder sets that coefficient to the middle of the right half-step, but lowering it
often makes a neighbour the largest, so the reader looks at the wrong coefficient; on smooth pictures
(most diffusion output) the votes then lean towards ``1`` and the payload comes back wrong
(bench/provenance.py measures it). This embedder writes the same format and:

- keeps the marked coefficient the largest of its block (raising it, or lowering the neighbours,
  whichever changes the picture less), within the room each pixel has before a channel clips (white
  and black backgrounds move U through B alone, or R and G, instead of clipping);
- places it, in a second pass, where JPEG's chroma subsampling (a 2x2 average, then a triangular
  upsampling that pulls each LL coefficient 7/16 of the way towards its neighbours) still leaves it
  in the right half-step;
- works on 2x2 pixel groups (one LL coefficient each), vectorised, with numpy alone: no OpenCV, no
  torch; the colour conversion is OpenCV's fixed-point one, bit for bit.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

PAYLOAD = b"CCAI"
METHOD = "dwtDct"
MIN_PIXELS = 256 * 256  # imwatermark refuses smaller images (width * height)
BITS = len(PAYLOAD) * 8
MIN_BITS_FOUND = 30  # of 32: a chance match is about 1 in 8 million (sum C(32, k <= 2) / 2**32)

_SCALE = 36.0
_MARGIN = 4.0  # LL units the marked coefficient stays above its neighbours
_EDGE = 2.0  # LL units the marked coefficient stays inside its half-step
_WRONG_OK = 0.2  # a bit whose wrong votes stay under this share needs no third pass
# Ways to move U by one unit: (dR, dG, dB). First choice keeps Y and V; then B alone, or R and G alone,
# where a channel has no room left (white, black and saturated areas).
_WAYS = np.array([[0.0, -0.395, 2.032], [0.0, 0.0, 2.294], [-2.294, -2.294, 0.0]], dtype=np.float32)


def _bits(payload: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(payload, dtype=np.uint8)).astype(np.int64)


def _descale(x: np.ndarray) -> np.ndarray:
    return (x + (1 << 13)) >> 14


def _u_plane(rgb: np.ndarray) -> np.ndarray:
    """OpenCV's BGR2YUV U channel for uint8 RGB input, its 14-bit fixed point bit for bit."""
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    y = _descale(b * 1868 + g * 9617 + r * 4899)
    return np.clip(_descale((b - y) * 8061 + (128 << 14)), 0, 255).astype(np.float32)


def _grid(shape: tuple[int, ...]) -> tuple[int, int]:
    """Blocks down and across, as imwatermark crops: (h // 4 * 4) / 2 LL rows, in 4s."""
    return (shape[0] // 4 * 4 // 2) // 4, (shape[1] // 4 * 4 // 2) // 4


def _pairs(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return p[0::2, 0::2], p[0::2, 1::2], p[1::2, 0::2], p[1::2, 1::2]


def _ll(u: np.ndarray, br: int, bc: int) -> np.ndarray:
    """The Haar LL band of the part of ``u`` the blocks cover: (br * 4, bc * 4)."""
    a, b, c, d = _pairs(u[: br * 8, : bc * 8])
    return (a + b + c + d) / 2.0


def _to_blocks(plane: np.ndarray) -> np.ndarray:
    h, w = plane.shape[0] // 4, plane.shape[1] // 4
    return plane.reshape(h, 4, w, 4).transpose(0, 2, 1, 3).reshape(h, w, 16)


def _from_blocks(blocks: np.ndarray) -> np.ndarray:
    h, w = blocks.shape[:2]
    return blocks.reshape(h, w, 4, 4).transpose(0, 2, 1, 3).reshape(h * 4, w * 4)


def _block_bits(br: int, bc: int, nbits: int) -> np.ndarray:
    """Which bit each block votes for (row-major, ``n % nbits``)."""
    return (np.arange(br * bc).reshape(br, bc) % nbits).astype(np.int64)


def _votes(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per block: the index (1..15) of the coefficient the reader looks at, and the bit it reads.

    The reader takes absolute values; LL coefficients of a 0..255 plane are never negative.
    """
    pos = np.argmax(blocks[..., 1:], axis=-1) + 1
    val = np.take_along_axis(blocks, pos[..., None], axis=-1)[..., 0]
    return pos, (np.mod(val, _SCALE) > 0.5 * _SCALE).astype(np.int64)


def read_bits(rgb: np.ndarray, nbits: int = BITS) -> np.ndarray:
    """The bits a dwtDct reader finds in an RGB uint8 array (majority of the block votes)."""
    br, bc = _grid(rgb.shape)
    _, read = _votes(_to_blocks(_ll(_u_plane(rgb), br, bc)))
    owner = _block_bits(br, bc, nbits)
    ones = np.bincount(owner.ravel(), weights=read.ravel(), minlength=nbits)
    total = np.bincount(owner.ravel(), minlength=nbits)
    return (ones / np.maximum(total, 1) * 255 > 127).astype(np.int64)


def _jpeg_ll(ll: np.ndarray) -> np.ndarray:
    """What JPEG's 4:2:0 chroma does to an LL plane: box-averaged, then triangle-upsampled (libjpeg's
    "fancy" upsampling), seen again as 2x2 sums: each coefficient keeps 9/16, its edge neighbours give
    3/32 each, its corners 1/64 each."""
    p = np.pad(ll, 1, mode="edge")
    rows = 0.75 * p[1:-1] + 0.125 * (p[:-2] + p[2:])
    return 0.75 * rows[:, 1:-1] + 0.125 * (rows[:, :-2] + rows[:, 2:])


def _deltas(blocks: np.ndarray, want: np.ndarray, up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """LL changes (same shape as ``blocks``) that make each block vote ``want`` with a margin.

    For each block, four ways: the nearest level of the right half-step (down, here, up), pulling any
    neighbour that would outrank it below it, or the lowest level that stays above every neighbour.
    The cheapest within the pixels' room (``up`` / ``down``: how far each coefficient can move before a
    channel clips) is taken; if none fits, the cheapest of all.
    """
    pos, _ = _votes(blocks)
    val = np.take_along_axis(blocks, pos[..., None], axis=-1)[..., 0]
    base = np.floor(val / _SCALE) * _SCALE + 0.25 * _SCALE + 0.5 * _SCALE * want
    others = blocks.copy()
    np.put_along_axis(others, pos[..., None], -np.inf, axis=-1)
    others[..., 0] = -np.inf  # the reader never looks at the first coefficient
    second = others.max(axis=-1)
    above = base + _SCALE * np.ceil(np.maximum(second + _MARGIN - base, 0.0) / _SCALE)
    targets = np.stack([base - _SCALE, base, base + _SCALE, above], axis=-1)  # (..., 4)
    move = targets - val[..., None]
    pulls = np.maximum(others[..., None, :] - (targets[..., None] - _MARGIN), 0.0)  # (..., 4, 16)
    cost = move**2 + (pulls**2).sum(axis=-1)
    up_pos = np.take_along_axis(up, pos[..., None], axis=-1)
    down_pos = np.take_along_axis(down, pos[..., None], axis=-1)
    in_range = (targets >= 0.0) & (targets <= 510.0)
    fits = in_range & (move <= up_pos) & (-move <= down_pos) & np.all(pulls <= down[..., None, :], axis=-1)
    pick = np.where(
        fits.any(axis=-1),
        np.argmin(np.where(fits, cost, np.inf), axis=-1),
        np.argmin(np.where(in_range, cost, np.inf), axis=-1),
    )
    delta = -np.take_along_axis(pulls, pick[..., None, None], axis=-2)[..., 0, :]
    chosen = np.take_along_axis(move, pick[..., None], axis=-1)[..., 0]
    np.put_along_axis(delta, pos[..., None], chosen[..., None], axis=-1)
    return delta


def _for_jpeg(blocks: np.ndarray, jpeg: np.ndarray, want: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Moves of the marked coefficients (same shape as ``blocks``, zero elsewhere) that keep both the
    picture's value and its JPEG-smoothed value (``jpeg``) in the right half-step, as far as it can."""
    pos, got = _votes(blocks)
    val = np.take_along_axis(blocks, pos[..., None], axis=-1)[..., 0]
    smooth = np.take_along_axis(jpeg, pos[..., None], axis=-1)[..., 0]
    low = np.floor(val / (0.5 * _SCALE)) * (0.5 * _SCALE)  # the half-step the value is in
    # a move of d changes the smoothed value by 9/16 d; aim its middle, the value staying inside
    aim = low + 0.25 * _SCALE
    d = np.clip((aim - smooth) * 16.0 / 9.0, low + _EDGE - val, low + 0.5 * _SCALE - _EDGE - val)
    others = blocks.copy()
    np.put_along_axis(others, pos[..., None], -np.inf, axis=-1)
    others[..., 0] = -np.inf
    lead = val - others.max(axis=-1)
    d = np.maximum(d, _MARGIN - lead)  # never so low that a neighbour takes over
    d = np.minimum(d, np.take_along_axis(up, pos[..., None], axis=-1)[..., 0])
    d = np.where(got == want, d, 0.0)
    out = np.zeros_like(blocks)
    np.put_along_axis(out, pos[..., None], d[..., None], axis=-1)
    return out


def _room(region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per way and 2x2 group: how far U can go up, and down, before a channel of a pixel leaves 0..255.
    (3, h/2, w/2) each, in U units."""
    a, b, c, d = _pairs(region)
    lo = np.minimum(np.minimum(a, b), np.minimum(c, d)).astype(np.float32)
    hi = np.maximum(np.maximum(a, b), np.maximum(c, d)).astype(np.float32)
    (rl, gl, bl), (rh, gh, bh) = np.moveaxis(lo, -1, 0), np.moveaxis(hi, -1, 0)
    up = np.stack([np.minimum((255.0 - bh) / 2.032, gl / 0.395), (255.0 - bh) / 2.294, np.minimum(rl, gl) / 2.294])
    down = np.stack([np.minimum(bl / 2.032, (255.0 - gh) / 0.395), bl / 2.294, (255.0 - np.maximum(rh, gh)) / 2.294])
    return up, down


def _apply(region: np.ndarray, du: np.ndarray, up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """``region`` (int16, as (h/2, 2, w/2, 2, 3)) with U moved by ``du`` per 2x2 group, each group the
    first way that fits (else the way with the most room); uint8 (h, w, 3)."""
    room = np.where(du >= 0, up, down)
    need = np.abs(du)
    way = np.where(room[0] >= need, 0, np.where(room[1] >= need, 1, np.where(room[2] >= need, 2, -1)))
    stuck = way < 0
    if stuck.any():
        way[stuck] = np.argmax(room[:, stuck], axis=0)
    # pixels are whole numbers, so rounding the step per group rounds every pixel of it the same
    step = np.rint(_WAYS[way] * du[..., None]).astype(np.int16)  # (h/2, w/2, 3)
    h2, _, w2, _, _ = region.shape
    out = region.reshape(h2, 2, w2, 6).copy()
    out += np.tile(step, (1, 1, 2))[:, None, :, :]  # the same step for both pixels of a row pair
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8).reshape(h2 * 2, w2 * 2, 3)


def embed(img: Image.Image, payload: bytes = PAYLOAD) -> Image.Image:
    """``img`` with ``payload`` in its pixels (alpha, if any, kept). Needs ``w * h >= MIN_PIXELS``."""
    if img.width * img.height < MIN_PIXELS:
        raise ValueError("image too small for the watermark")
    alpha = img.getchannel("A") if img.mode in ("RGBA", "LA") else None
    rgb = np.array(img if img.mode == "RGB" else img.convert("RGB"))
    br, bc = _grid(rgb.shape)
    region0 = rgb[: br * 8, : bc * 8].copy()
    up_px, down_px = _room(region0)
    grouped = region0.reshape(br * 4, 2, bc * 4, 2, 3).astype(np.int16)
    up_any, down_any = up_px.max(axis=0) * 2.0, down_px.max(axis=0) * 2.0  # LL units
    nbits = len(payload) * 8
    owner = _block_bits(br, bc, nbits)
    per_bit = np.maximum(np.bincount(owner.ravel(), minlength=nbits), 1)
    want = _bits(payload)[owner]
    du = np.zeros((br * 4, bc * 4), dtype=np.float32)  # U change per 2x2 group
    region = region0
    for n in range(3):
        ll = _ll(_u_plane(region), br, bc)
        blocks = _to_blocks(ll)
        up = _to_blocks(up_any - np.maximum(2 * du, 0))
        down = _to_blocks(down_any - np.maximum(-2 * du, 0))
        if n == 0:  # first pass: every block
            d = _deltas(blocks, want, up, down)
        elif n == 1:  # second: make the marks survive JPEG's chroma smoothing
            d = _for_jpeg(blocks, _to_blocks(_jpeg_ll(ll)), want, up)
        else:  # last, if some bit's majority is thin: the blocks that still vote wrong
            wrong = _votes(blocks)[1] != want
            share = np.bincount(owner.ravel(), weights=wrong.ravel(), minlength=nbits) / per_bit
            if share.max() < _WRONG_OK:
                break
            d = _deltas(blocks, want, up, down)
            d[~wrong] = 0.0
        du += _from_blocks(d) / 2.0
        region = _apply(grouped, du, up_px, down_px)
    rgb[: br * 8, : bc * 8] = region
    out = Image.fromarray(rgb, "RGB")
    if alpha is not None:
        out.putalpha(alpha)
    return out


def detect(img: Image.Image, payload: bytes = PAYLOAD) -> int | None:
    """How many of the payload's bits a dwtDct reader finds (``None``: too small to carry one)."""
    if img.width * img.height < MIN_PIXELS:
        return None
    want = _bits(payload)
    got = read_bits(np.asarray(img.convert("RGB")), len(want))
    return int((got == want).sum())
