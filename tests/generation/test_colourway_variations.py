"""Variations read as colour + material; the colourway backend; the local backend's material pass."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from chatcanvas.config import Settings
from chatcanvas.errors import SpecError
from chatcanvas.generation.colourway_backend import ColourwayBackend
from chatcanvas.generation.metadata import recipe_from_png
from chatcanvas.generation.variations import parse_variation, prepare_variations
from chatcanvas.store import Store
from tests.generation.colour_checks import background_psnr, median_delta_e, silhouette_iou
from tests.generation.drawn_products import shaded_bottle, slatted_chair

WHITE = (255, 255, 255)


@pytest.mark.parametrize(
    ("typed", "hexcode", "material"),
    [
        ("Cadet Blue", "#5f9ea0", None),
        ("in dodger-blue", "#1e90ff", None),
        ("#C0FFEE", "#c0ffee", None),
        ("camel suede", "#c69f59", "suede"),
        ("mint green in corduroy", "#8fff9f", "corduroy"),
        ("brushed steel blue", "#4682b4", "brushed"),
        ("maroon with white piping", "#800000", "with white piping"),
        ("lavender faux leather", "#e6e6fa", "faux leather"),
    ],
)
def test_colour_and_material_words(typed: str, hexcode: str, material: str | None) -> None:
    v = parse_variation(typed)
    assert v.colour is not None and v.colour.hex == hexcode
    assert v.material == material


def test_material_alone_keeps_the_products_colour() -> None:
    v = parse_variation("velvet")
    assert v.colour is None and v.material == "velvet"
    assert parse_variation("charcoal").colour is not None  # a colour, not a material


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [("mauvve", "mauve"), ("vermilion red", "vermillion"), ("lite blue", "light blue"), ("tourquoise", "turquoise")],
)
def test_unknown_colour_is_refused_with_the_nearest_names(typed: str, suggested: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_variation(typed)
    text = str(err.value)
    assert typed in text and suggested in text


def test_two_colours_in_one_variation_are_refused() -> None:
    with pytest.raises(SpecError, match="several colours"):
        parse_variation("black and gold")


def _stored(tmp_path, settings: Settings, photo: Image.Image, variations: list[str], **kw):  # type: ignore[no-untyped-def]
    store = Store(settings.data_dir)
    return store, prepare_variations(photo, variations, store, settings, **kw)


async def test_colourway_backend_makes_the_photo_in_each_colour(tmp_path, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    photo, cover = slatted_chair(232, 190, WHITE)
    store, specs = _stored(tmp_path, settings, photo, ["cobalt", "#2e8b57", "off white"], subject="chair", seed=3)
    assert [s.backend for s in specs] == ["colourway"] * 3 and all(s.width is None for s in specs)
    backend = ColourwayBackend(settings)
    made = await backend.generate([backend.resolve(s) for s in specs])
    for img, want in zip(made, ["#1e488f", "#2e8b57", "#ffffe4"], strict=True):
        out = Image.open(io.BytesIO(img.png)).convert("RGB")
        rgb = tuple(int(want[i : i + 2], 16) for i in (1, 3, 5))
        assert out.size == photo.size
        assert img.recipe.colourway is not None and img.recipe.colourway.hex == want
        assert (img.recipe.width, img.recipe.height) == photo.size and img.recipe.backend == "colourway"
        assert recipe_from_png(img.png).colourway == img.recipe.colourway  # the PNG says which colour
        assert silhouette_iou(photo, out, cover, WHITE) >= 0.95
        assert background_psnr(photo, out, cover) >= 35.0
        assert median_delta_e(out, cover >= 0.5, rgb) <= 12.0  # type: ignore[arg-type]
        assert img.recipe.colour_delta_e is not None and img.recipe.colour_delta_e <= 12.0
    store.close()


async def test_material_pass_keeps_size_and_background(tmp_path, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    from scipy import ndimage

    from chatcanvas.generation.diffusers_backend import DiffusersBackend

    photo, cover = shaded_bottle(100, 140, WHITE)
    store, specs = _stored(tmp_path, settings, photo, ["burgundy velvet"], subject="bottle", native=32, seed=9)
    spec = specs[0]
    assert spec.backend == "local" and spec.colourway is not None and spec.colourway.material == "velvet"
    assert spec.prompt == "a burgundy velvet bottle" and spec.strength < 0.6
    backend = DiffusersBackend(settings)
    img = (await backend.generate([backend.resolve(spec.model_copy(update={"steps": 2}))]))[0]
    out = np.asarray(Image.open(io.BytesIO(img.png)).convert("RGB"))
    assert out.shape[:2] == (140, 100)  # the photo's size, not the model's 32x32
    far = ~ndimage.binary_dilation(cover > 0, iterations=3)
    assert np.array_equal(out[far], np.asarray(photo)[far])  # background untouched
    recipe = json.loads(Image.open(io.BytesIO(img.png)).text["chatcanvas"])
    assert recipe["colourway"]["colour"] == "burgundy" and recipe["colourway"]["material"] == "velvet"
    await backend.aclose()
    store.close()
