"""Colourways on product photos drawn here: the product recoloured, nothing else changed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from chatcanvas.colours import resolve_colour
from chatcanvas.errors import InputImageError
from chatcanvas.generation.colourway import recolour
from tests.generation.colour_checks import background_psnr, median_delta_e, silhouette_iou
from tests.generation.drawn_products import SHAPES

# CSS names, XKCD survey names and hex codes, dark and light ones included.
COLOURS = [
    "navy", "black", "white", "crimson", "olive",  # CSS
    "burnt orange", "ocean blue", "pale lilac", "bottle green",  # XKCD
    "#1f3a5f", "#f2c14e", "#e6e6e6",  # hex
]  # fmt: skip
WHITE, GREY = (255, 255, 255), (150, 150, 150)


@pytest.mark.parametrize("size", [(192, 160), (300, 500)])
@pytest.mark.parametrize("background", [WHITE, GREY], ids=["white", "grey"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_colourway_keeps_size_shape_background_and_hits_the_colour(
    shape: str, background: tuple[int, int, int], size: tuple[int, int]
) -> None:
    photo, cover = SHAPES[shape](*size, background, noise=1.5 if background == GREY else 0.0)
    truth = cover >= 0.5
    for name in COLOURS:
        colour = resolve_colour(name)
        assert colour is not None, name
        out = recolour(photo, None, colour.rgb).image
        assert out.size == photo.size and out.mode == "RGB"
        iou = silhouette_iou(photo, out, cover, background)
        psnr = background_psnr(photo, out, cover)
        de = median_delta_e(out, truth, colour.rgb)
        assert iou >= 0.95, (name, iou)
        assert psnr >= 35.0, (name, psnr)
        assert de <= 12.0, (name, de)


def test_background_is_pixel_identical_away_from_the_edge() -> None:
    from scipy import ndimage

    photo, cover = SHAPES["lamp"](300, 500, WHITE)  # with a soft floor shadow
    out = np.asarray(recolour(photo, None, (20, 30, 90)).image)
    far = ~ndimage.binary_dilation(cover > 0, iterations=2)
    assert np.array_equal(out[far], np.asarray(photo)[far])


@pytest.mark.parametrize("background", [WHITE, GREY], ids=["white", "grey"])
def test_a_dark_contact_shadow_stays_a_shadow(background: tuple[int, int, int]) -> None:
    from scipy import ndimage

    from tests.generation.drawn_products import table_lamp

    photo, cover = table_lamp(300, 500, background, shadow_depth=0.45)  # much darker than a soft shadow
    out = np.asarray(recolour(photo, None, (40, 160, 200)).image)
    beside = ~ndimage.binary_dilation(cover > 0, iterations=3)
    shadow = beside & (np.asarray(photo.convert("L")) < background[0] - 40)
    assert shadow.sum() > 500
    assert np.array_equal(out[shadow], np.asarray(photo)[shadow])  # not tinted with the new colour
    assert np.array_equal(out[beside], np.asarray(photo)[beside])
    changed = np.max(np.abs(out.astype(int) - np.asarray(photo, dtype=int)), axis=-1) > 24
    assert changed[cover > 0.95].mean() > 0.95  # and the whole lamp is recoloured, its base included


def test_shading_and_texture_survive() -> None:
    photo, cover = SHAPES["chair"](300, 500, GREY)
    truth = cover > 0.95
    out = recolour(photo, None, resolve_colour("teal").rgb).image  # type: ignore[union-attr]
    src = np.asarray(photo.convert("L"), dtype=np.float64)[truth]
    got = np.asarray(out.convert("L"), dtype=np.float64)[truth]
    # The wood grain (lightness variation) is still there and still in the same places.
    assert got.std() > 0.4 * src.std()
    assert np.corrcoef(src, got)[0, 1] > 0.9


def test_users_loose_mask_does_not_paint_a_halo() -> None:
    from scipy import ndimage

    photo, cover = SHAPES["bottle"](192, 160, WHITE)
    truth = cover >= 0.5
    loose = ndimage.binary_dilation(truth, iterations=12)  # a broad brush stroke around it
    mask = Image.fromarray(np.where(loose, 255, 0).astype(np.uint8), mode="L")
    out = recolour(photo, mask, (0, 0, 128)).image
    assert silhouette_iou(photo, out, cover, WHITE) >= 0.95
    assert background_psnr(photo, out, cover) >= 35.0


def test_busy_background_needs_a_mask_and_works_with_one() -> None:
    rng = np.random.default_rng(5)
    busy = rng.integers(0, 255, (160, 192, 3), dtype=np.uint8)  # confetti
    photo, cover = SHAPES["bottle"](192, 160, WHITE)
    truth = cover >= 0.5
    arr = np.where(truth[..., None], np.asarray(photo), busy)
    scene = Image.fromarray(arr.astype(np.uint8), mode="RGB")
    with pytest.raises(InputImageError, match="mask"):
        recolour(scene, None, (0, 0, 128))
    mask = Image.fromarray(np.where(truth, 255, 0).astype(np.uint8), mode="L")
    out = recolour(scene, mask, (0, 0, 128)).image
    assert median_delta_e(out, truth, (0, 0, 128)) <= 12.0
    assert np.array_equal(np.asarray(out)[~truth], arr[~truth])


def test_empty_or_missized_mask_is_refused() -> None:
    photo, _ = SHAPES["bottle"](192, 160, WHITE)
    with pytest.raises(InputImageError, match="all black"):
        recolour(photo, Image.new("L", photo.size, 0), (0, 0, 128))
    with pytest.raises(InputImageError, match="192x160"):
        recolour(photo, Image.new("L", (10, 10), 255), (0, 0, 128))
