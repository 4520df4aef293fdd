"""Images written together: every file in place and whole, the same picture twice stored once."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from chatcanvas.store import Store
from chatcanvas.types import GeneratedImage, Recipe


def _image(colour: tuple[int, int, int]) -> GeneratedImage:
    buf = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(buf, format="PNG")
    recipe = Recipe(prompt="a cap", width=24, height=16, seed=1, steps=1, guidance=1.0, sampler="Euler",
                    model="m", backend="local")
    return GeneratedImage(png=buf.getvalue(), recipe=recipe, seconds=0.0)


def test_write_several_images_at_once(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        images = [_image((200, 30, 30)), _image((30, 30, 200)), _image((200, 30, 30))]
        paths = store.write_image_files(images)
        assert paths[0] == paths[2] != paths[1]
        for img, path in zip(images, paths, strict=True):
            assert path.read_bytes() == img.png and path == store.image_file(img.id)
        assert not list(tmp_path.rglob("*.tmp"))
        again = store.write_image_files(images[:1])  # already there: left as it is
        assert again == paths[:1] and again[0].read_bytes() == images[0].png
    finally:
        store.close()
