"""A contact sheet of several images, as one PNG (the first attachment when count > 1)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence


def grid_png(pngs: Sequence[bytes], *, gap: int = 4, max_side: int = 2048) -> bytes:
    """Tile ``pngs`` in a near-square grid on a dark background; cells take the largest image's size."""
    from PIL import Image

    if not pngs:
        raise ValueError("no images to tile")
    images = [Image.open(io.BytesIO(p)).convert("RGB") for p in pngs]
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    cw = max(i.width for i in images)
    ch = max(i.height for i in images)
    sheet = Image.new("RGB", (cols * cw + (cols - 1) * gap, rows * ch + (rows - 1) * gap), (24, 24, 27))
    for n, img in enumerate(images):
        r, c = divmod(n, cols)
        x = c * (cw + gap) + (cw - img.width) // 2
        y = r * (ch + gap) + (ch - img.height) // 2
        sheet.paste(img, (x, y))
    if max(sheet.size) > max_side:
        scale = max_side / max(sheet.size)
        sheet = sheet.resize((max(1, int(sheet.width * scale)), max(1, int(sheet.height * scale))))
    from chatcanvas.provenance import derived_png

    return derived_png(sheet, list(pngs), action="c2pa.placed")  # credentials name the images it shows
