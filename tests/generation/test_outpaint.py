"""Outpainting: the picture grows, the original stays as it was."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chatcanvas.errors import SpecError
from chatcanvas.generation.metadata import recipe_from_png
from chatcanvas.generation.outpaint import (
    banner_margins,
    composite,
    outpaint_spec,
    pan_margins,
    prepare_canvas,
    zoom_out_margins,
)
from chatcanvas.types import Margins
from tests.generation.test_upscale import mug_picture, psnr, run


def rgb(path_or_png: Path | bytes) -> np.ndarray:
    src = io.BytesIO(path_or_png) if isinstance(path_or_png, bytes) else path_or_png
    return np.asarray(Image.open(src).convert("RGB"))


def test_outpaint_left_32_widens_and_keeps_the_original(tmp_path: Path, tiny_model_dir: Path) -> None:
    src = mug_picture(tmp_path / "mug.png")
    p = run(tmp_path, tiny_model_dir, "outpaint", str(src), "--left", "32", "-o", "wide.png", "--seed", "3")
    assert p.returncode == 0, p.stderr
    out, orig = rgb(tmp_path / "wide.png"), rgb(src)
    assert out.shape == (32, 72, 3)
    assert psnr(out[:, 32:], orig) >= 30
    # the new strip is painted, not just the edge column stretched out
    stretched = np.repeat(orig[:, :1], 32, axis=1)
    assert np.abs(out[:, :24].astype(int) - stretched[:, :24]).mean() > 3
    r = recipe_from_png((tmp_path / "wide.png").read_bytes())
    assert r.outpaint == "left 32" and (r.width, r.height) == (72, 32) and r.mode == "inpaint"


def test_zoom_out_and_banner_from_the_command_line(tmp_path: Path, tiny_model_dir: Path) -> None:
    src = mug_picture(tmp_path / "mug.png", (48, 32))
    p = run(tmp_path, tiny_model_dir, "outpaint", str(src), "--zoom-out", "2", "-o", "zoom.png")
    assert p.returncode == 0, p.stderr
    out = rgb(tmp_path / "zoom.png")
    assert out.shape == (64, 96, 3)
    assert np.array_equal(out[16:48, 24:72], rgb(src))  # in the middle, pixel for pixel
    p = run(tmp_path, tiny_model_dir, "outpaint", str(src), "--banner", "-o", "banner.png")
    assert p.returncode == 0, p.stderr
    assert Image.open(tmp_path / "banner.png").size == (96, 32)


def test_a_canvas_past_the_limits_is_refused_by_the_command(tmp_path: Path, tiny_model_dir: Path) -> None:
    src = mug_picture(tmp_path / "mug.png")
    p = run(tmp_path, tiny_model_dir, "outpaint", str(src), "--right", "200", CHATCANVAS_MAX_SIDE="128")
    assert p.returncode == 1 and "CHATCANVAS_MAX_SIDE" in p.stderr
    p = run(tmp_path, tiny_model_dir, "outpaint", str(src))
    assert p.returncode == 1 and "--left" in p.stderr


def test_margins_for_the_buttons() -> None:
    assert zoom_out_margins(512, 512, 1.5) == Margins(left=128, right=128, up=128, down=128)
    assert zoom_out_margins(640, 480, 2) == Margins(left=320, right=320, up=240, down=240)
    with pytest.raises(SpecError):
        zoom_out_margins(512, 512, 3)
    assert pan_margins(512, 384, "left") == Margins(left=256)
    assert pan_margins(512, 384, "down") == Margins(down=192)
    m = banner_margins(512, 512)
    assert (512 + m.left + m.right) / 512 == 3 and abs(m.left - m.right) <= 1
    m = banner_margins(2000, 400)  # already wider than 3:1: taller instead
    assert 2000 / (400 + m.up + m.down) == pytest.approx(3, abs=0.01)


def test_the_seam_lies_in_the_new_area() -> None:
    rng = np.random.default_rng(0)
    src = Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
    canvas = prepare_canvas(src, Margins(left=20, down=13))
    assert canvas.fill.size == (72, 56) and canvas.size == (70, 53)  # drawn at multiples of 8
    mask = np.asarray(canvas.mask)
    assert mask[:, :20].min() == 255 and mask[5:30, 30:60].max() == 0  # the join is repainted too
    assert mask[5:30, 20:24].min() == 255
    painted = Image.fromarray(np.full((56, 72, 3), 7, dtype=np.uint8))
    out = np.asarray(composite(painted, canvas))
    assert out.shape == (53, 70, 3)
    assert np.array_equal(out[:40, 20:], np.asarray(src))  # exact
    assert (out[:40, :10] == 7).all() and (out[48:, 40:] == 7).all()  # past the seam: the painting
    # next to the image (1 px out) the new pixels are mostly the image's own edge, fading to the painting
    edge = np.asarray(src)[:, 0].astype(float)
    assert np.abs(out[:40, 19] - np.round(7 / 3 + edge * 2 / 3)).max() <= 1
    assert np.abs(out[:40, 18] - np.round(7 * 2 / 3 + edge / 3)).max() <= 1


async def test_buttons_scale_a_big_canvas_down_to_fit(settings) -> None:  # type: ignore[no-untyped-def]
    from chatcanvas.generation.diffusers_backend import DiffusersBackend
    from chatcanvas.store import Store

    small = settings.model_copy(update={"max_side": 64, "max_pixels": 64 * 64})
    store = Store(small.data_dir)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(buf, "PNG")
    ref = store.put_upload(buf.getvalue())
    store.close()
    with pytest.raises(SpecError, match="CHATCANVAS_MAX_SIDE"):
        outpaint_spec(ref, (48, 48), zoom_out_margins(48, 48, 2), small, fit=False)
    spec = outpaint_spec(ref, (48, 48), zoom_out_margins(48, 48, 2), small, fit=True, seed=1, steps=2)
    be = DiffusersBackend(small)
    img = (await be.generate([be.resolve(spec)]))[0]
    assert max(img.recipe.width, img.recipe.height) <= 64
    assert img.recipe.outpaint is not None and "scaled" in img.recipe.outpaint


async def test_the_buttons_through_the_assistant(app) -> None:  # type: ignore[no-untyped-def]
    from chatcanvas.generation.outpaint import BUTTONS, button_spec
    from chatcanvas.generation.upscale import upscale_spec
    from chatcanvas.types import Images, ImageSpec, Place, UserRef
    from tests.conftest import collect

    who, where = UserRef(platform="web", user="shopper"), Place(platform="web", channel="c1")
    evs = await collect(app.assistant.generate(ImageSpec(prompt="a green cap", seed=2, steps=2), who, where))
    first = next(e for e in evs if isinstance(e, Images)).images[0]
    assert set(BUTTONS) >= {"zoom_out_1.5", "pan_left", "pan_up", "banner"}
    sizes = {}
    for action in ("pan_left", "zoom_out_1.5", "banner"):
        spec = button_spec(action, first.id, first.recipe, app.settings)
        evs = await collect(app.assistant.run_specs([spec.model_copy(update={"steps": 2})], who, where))
        done = [e for e in evs if isinstance(e, Images)]
        assert done, evs
        img = done[0].images[0]
        sizes[action] = (img.recipe.width, img.recipe.height)
        assert img.recipe.prompt == "a green cap" and img.recipe.init_image == first.id
    assert sizes == {"pan_left": (48, 32), "zoom_out_1.5": (48, 48), "banner": (96, 32)}
    spec = upscale_spec(first.id, (32, 32), 2, app.settings, recipe=first.recipe, strength=0.0)
    evs = await collect(app.assistant.run_specs([spec], who, where))
    big = next(e for e in evs if isinstance(e, Images)).images[0]
    assert (big.recipe.width, big.recipe.height, big.recipe.upscale_by) == (64, 64, 2)
