"""The web chat page in real headless Chromium (Debian's, driven by Playwright) against uvicorn."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from chatcanvas.config import DEMO_MODEL_DIR, Settings
from chatcanvas.generation.demo.draw import draw_product
from tests.adapters.web.conftest import running

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 120_000  # a generation on a shared CPU; the page must show it by then

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="needs Debian's chromium at /usr/bin/chromium: apt-get install -y chromium (make test does)",
    ),
]


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


DEMO_READY = (DEMO_MODEL_DIR / "model_index.json").is_file()


@pytest.mark.parametrize(
    "model",
    [
        "tiny",
        pytest.param(
            "demo",
            marks=pytest.mark.skipif(
                not DEMO_READY, reason=f"the demo model is not trained yet ({DEMO_MODEL_DIR})"
            ),
        ),
    ],
)
async def test_type_a_request_and_see_the_image(
    browser, make_settings: Callable[..., Settings], model: str
) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import expect

    settings = make_settings() if model == "tiny" else make_settings(model=None, default_steps=None)
    async with running(settings) as srv:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(srv.url + "/")
        await page.fill("#prompt", "a blue mug")
        await page.press("#prompt", "Enter")
        card = page.locator(".job").last
        img = card.locator("img.result").first
        await expect(img).to_be_visible(timeout=WAIT_MS)
        await expect(card).to_have_attribute("data-status", "done", timeout=WAIT_MS)
        loaded = await img.evaluate("i => i.complete && i.naturalWidth > 0")
        assert loaded
        assert "blue mug" in (await img.get_attribute("alt") or "")
        assert await card.locator(".prompts li").count() >= 1  # the rewritten prompt is shown
        assert "Done" in (await card.locator(".status").inner_text())
        href = await card.locator("a.download").first.get_attribute("href")
        assert href and href.endswith(".png?download=1")

        # Reroll from the image's button: a second card with a new image.
        await card.locator("button.reroll").first.click()
        second = page.locator(".job").nth(1)
        await expect(second.locator("img.result").first).to_be_visible(timeout=WAIT_MS)
        assert not errors, errors


async def test_drop_a_product_photo_and_list_colours(  # type: ignore[no-untyped-def]
    browser, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    photo = tmp_path / "red-mug.png"
    draw_product("mug", "red", np.random.default_rng(5), size=64).save(photo)
    async with running(make_settings()) as srv:
        page = await browser.new_page()
        await page.goto(srv.url + "/")
        await page.set_input_files("#file", str(photo))
        await expect(page.locator("#drop")).to_be_visible()
        await page.fill("#prompt", "mug: blue, green")
        await page.click("#send")
        card = page.locator(".job").last
        await expect(card).to_have_attribute("data-status", "done", timeout=WAIT_MS)
        await expect(card.locator("img.result")).to_have_count(2)
        prompts = await card.locator(".prompts li").all_inner_texts()
        assert prompts == ["a blue mug", "a green mug"]
        # Typed as in any chat: the server reads it, as it reads Slack's and Discord's text
        await page.set_input_files("#file", str(photo))
        await page.fill("#prompt", "could I see this mug in teal and burnt orange please?")
        await page.click("#send")
        card = page.locator(".job").last
        await expect(card).to_have_attribute("data-status", "done", timeout=WAIT_MS)
        assert await card.locator(".prompts li").all_inner_texts() == ["a teal mug", "a burnt orange mug"]
        # Errors show as a clear message, not a crash: a GIF is refused.
        gif = tmp_path / "x.gif"
        from PIL import Image

        Image.new("RGB", (8, 8)).save(gif)
        await page.set_input_files("#file", str(gif))
        await page.fill("#prompt", "red")
        await page.click("#send")
        bad = page.locator(".job").last
        await expect(bad).to_have_attribute("data-status", "failed", timeout=WAIT_MS)
        assert "PNG, JPEG or WebP" in await bad.locator(".status").inner_text()


async def test_paint_a_mask_with_the_brush_and_see_the_colour_swatch(  # type: ignore[no-untyped-def]
    browser, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A product on a busy background can only be recoloured through a painted mask."""
    import io

    from PIL import Image
    from playwright.async_api import expect

    from tests.generation.colour_checks import background_psnr, median_delta_e
    from tests.generation.drawn_products import shaded_bottle

    product, cover = shaded_bottle(192, 160, (255, 255, 255))
    rng = np.random.default_rng(11)
    busy = rng.integers(0, 256, (160, 192, 3), dtype=np.uint8)  # a patterned tablecloth
    truth = cover >= 0.5
    scene = np.where(truth[..., None], np.asarray(product), busy).astype(np.uint8)
    path = tmp_path / "bottle-on-cloth.png"
    Image.fromarray(scene).save(path)
    ys, xs = np.nonzero(truth)

    async with running(make_settings()) as srv:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(srv.url + "/")
        canvas = page.locator("#mask-canvas")

        async def attach() -> None:
            await page.set_input_files("#file", str(path))
            await expect(page.locator("#drop")).to_be_visible()
            await page.wait_for_function("document.querySelector('#mask-canvas').width === 192")

        async def paint(step: int) -> None:
            box = await canvas.bounding_box()
            assert box is not None
            sx, sy = box["width"] / 192, box["height"] / 160
            for y in range(int(ys.min()) + 2, int(ys.max()) - 1, step):
                row = xs[ys == y]
                await page.mouse.move(box["x"] + (row.min() + 2) * sx, box["y"] + y * sy)
                await page.mouse.down()
                await page.mouse.move(box["x"] + (row.max() - 2) * sx, box["y"] + y * sy, steps=4)
                await page.mouse.up()

        # Without a mask the busy background is refused, with a message that says what to do.
        await attach()
        await expect(page.locator("#mask-state")).to_contain_text("No mask")
        await page.fill("#prompt", "navy")
        await page.click("#send")
        refused = page.locator(".job").last
        await expect(refused).to_have_attribute("data-status", "failed", timeout=WAIT_MS)
        assert "mask" in (await refused.locator(".status").inner_text())

        # Paint, clear, paint again with a smaller brush; erase a stroke past the bottle's neck.
        await attach()
        await paint(step=6)
        await expect(page.locator("#mask-state")).to_contain_text("Mask painted")
        await page.click("#mask-clear")
        await expect(page.locator("#mask-state")).to_contain_text("No mask")
        await page.locator("#brush-size").evaluate("e => { e.value = 6; e.dispatchEvent(new Event('input')); }")
        await expect(page.locator("#brush-size-out")).to_have_text("6")
        await paint(step=3)
        await page.click("#brush-erase")
        await expect(page.locator("#brush-erase")).to_have_attribute("aria-pressed", "true")
        box = await canvas.bounding_box()
        assert box is not None
        await page.mouse.move(box["x"] + 5, box["y"] + 5)  # erasing where nothing was painted is harmless
        await page.mouse.down()
        await page.mouse.move(box["x"] + 30, box["y"] + 5, steps=3)
        await page.mouse.up()
        await expect(page.locator("#mask-state")).to_contain_text("Mask painted")

        await page.fill("#prompt", "bottle: navy")
        await page.click("#send")
        card = page.locator(".job").last
        await expect(card).to_have_attribute("data-status", "done", timeout=WAIT_MS)
        swatch = card.locator(".swatch").first
        await expect(swatch).to_be_visible(timeout=WAIT_MS)
        await expect(swatch).to_have_attribute("data-hex", "#000080")
        await expect(swatch.locator(".hex")).to_have_text("#000080")

        src = await card.locator("img.result").first.get_attribute("src")
        assert src
        png = (await srv.client.get(src)).content
        out = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        assert out.shape == scene.shape
        assert median_delta_e(Image.fromarray(out), truth, (0, 0, 128)) <= 12.0
        # Away from the painted product the tablecloth is the photo's own (up to the watermark).
        from scipy import ndimage

        far = ~ndimage.binary_dilation(truth, iterations=8)
        assert background_psnr(Image.fromarray(scene), Image.fromarray(out), np.where(far, 0.0, 1.0)) >= 35.0
        assert not errors, errors
