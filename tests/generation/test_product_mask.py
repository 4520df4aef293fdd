"""product_mask on demo product photos, uniform backgrounds, busy backgrounds."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from chatcanvas.errors import InputImageError
from chatcanvas.generation.demo.draw import PRODUCTS, draw_product
from chatcanvas.generation.demo.score import foreground_mask
from chatcanvas.generation.product_mask import background_color, product_mask


@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize("product", PRODUCTS)
def test_mask_covers_the_product_and_not_the_background(product: str, size: int) -> None:
    img = draw_product(product, "red", np.random.default_rng(7), size=size)
    mask = product_mask(img)
    assert mask.mode == "L" and mask.size == img.size
    on = np.asarray(mask) > 127
    assert set(np.unique(np.asarray(mask))) <= {0, 255}
    truth = foreground_mask(img)
    assert (on & truth).sum() / truth.sum() > 0.98  # the whole product
    assert (on & ~truth).sum() / truth.sum() < 0.35  # plus a thin edge, not the background
    # The corners (pure background) stay out.
    assert not on[0, 0] and not on[-1, -1] and not on[0, -1] and not on[-1, 0]


def test_uniform_coloured_background_and_aspect() -> None:
    img = Image.new("RGB", (300, 180), (40, 90, 160))  # blue studio backdrop, landscape
    ImageDraw.Draw(img).ellipse((110, 40, 190, 140), fill=(240, 200, 30))
    noise = np.random.default_rng(0).normal(0, 3, (180, 300, 3))
    img = Image.fromarray(np.clip(np.asarray(img, dtype=np.float64) + noise, 0, 255).astype(np.uint8))
    bg, share, _ = background_color(img)
    assert share > 0.9 and abs(bg[2] - 160) < 10
    on = np.asarray(product_mask(img)) > 127
    assert on[90, 150] and not on[90, 30] and not on[10, 150]
    assert 0.1 < on.mean() < 0.25


def test_soft_shadow_is_not_product() -> None:
    img = Image.new("RGB", (128, 128), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.ellipse((30, 100, 100, 120), fill=(232, 232, 232))  # a 10% ground shadow
    d.rectangle((45, 30, 85, 100), fill=(200, 30, 30))
    on = np.asarray(product_mask(img)) > 127
    assert on[60, 65] and not on[115, 40]


def test_large_photo_is_analysed_small_but_masked_full_size() -> None:
    img = Image.new("RGB", (2000, 1200), (255, 255, 255))
    ImageDraw.Draw(img).rectangle((800, 300, 1200, 900), fill=(20, 120, 40))
    mask = product_mask(img)
    assert mask.size == (2000, 1200)
    on = np.asarray(mask) > 127
    assert on[600, 1000] and not on[100, 100] and not on[600, 700]


def test_blank_photo_has_no_product() -> None:
    with pytest.raises(InputImageError, match="couldn't find a product"):
        product_mask(Image.new("RGB", (64, 64), (255, 255, 255)))


def test_busy_background_is_refused() -> None:
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    with pytest.raises(InputImageError, match="background"):
        product_mask(img)
