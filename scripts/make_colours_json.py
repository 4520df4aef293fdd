"""Write chatcanvas/prompts/colours.json: CSS Color 4 names, the XKCD colour-survey names, a few shop words.

Run once with matplotlib importable (it ships both tables as ``matplotlib._color_data``);
matplotlib is not a dependency of chatcanvas:

    python -m venv /tmp/mpl && /tmp/mpl/bin/pip install matplotlib
    /tmp/mpl/bin/python scripts/make_colours_json.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import matplotlib._color_data as cd

OUT = Path(__file__).resolve().parents[1] / "chatcanvas" / "prompts" / "colours.json"

# Words that CSS runs together ("lightgoldenrodyellow"); the display name splits them.
CSS_WORDS = sorted(
    """alice antique almond aqua aquamarine azure blanched blue blush brown burly cadet chiffon coral cornflower
    cornsilk cream cyan dark deep dim dodger drab fire brick floral forest ghost gold goldenrod gray grey green
    honey dew hot indian khaki lace lavender lawn lemon light lime magenta medium midnight mint misty navajo old
    olive orange orchid pale papaya peach pink powder puff purple rebecca red rose rosy royal saddle salmon sandy sea
    shell silk sky slate smoke spring steel turquoise violet white whip wood yellow""".split(),
    key=len,
    reverse=True,
)
CSS_KEEP = {"gainsboro", "honeydew", "seashell", "firebrick", "cornsilk", "goldenrod"}

# Left out of the XKCD list: crude words nobody wants in a shop's colour menu.
CRUDE = ("shit", "poo", "puke", "vomit", "barf", "booger", "snot", "diarrhea", "bile")

# Common retail names missing from both lists. Hex values are typical shades, approximate.
EXTRA = {
    "cognac": ("#8b4a2b", "retail name for a reddish-brown leather; approximate typical shade"),
    "jet black": ("#0b0b0b", "retail name for the deepest black; approximate"),
    "heather grey": ("#9d9fa2", "retail name for mottled grey jersey; approximate typical shade"),
    "champagne": ("#f7e7ce", "Wikipedia 'Champagne (color)'"),
    "rose gold": ("#b76e79", "Wikipedia 'Rose gold'"),
    "oxblood": ("#5e1916", "retail name for a dark brownish red leather; approximate"),
    "oatmeal": ("#d6c9ae", "retail name for a light greyish beige; approximate"),
    "espresso": ("#3c2a21", "retail name for a very dark brown; approximate"),
    "graphite": ("#3b3d40", "retail name for a dark grey; approximate"),
    "space grey": ("#6e6e73", "retail name for a device grey; approximate"),
    "bone": ("#e3dac9", "Wikipedia 'Bone (color)'"),
}

# Names that are also everyday words: find_colour_phrases takes them in free text only as part of a
# longer colour phrase ("forest green", "light sand"); resolve_colour takes them as they are.
AMBIGUOUS = sorted(
    """dark pale light royal sea sky earth dirt mud ice ocean forest grass blood leaf apple tea dust desert
    twilight dusk midnight bland drab pine iris marine steel stone cement leather velvet denim linen moss clay
    brick sand butter coffee wine tomato banana pear kiwi pea mango melon watermelon strawberry blueberry
    raspberry cherry grape pumpkin avocado lemon celery asparagus mushroom eggplant grapefruit squash straw
    wheat spruce fern algae seaweed lichen bruise camo swamp dandelion sunflower carnation shamrock lipstick
    parchment putty golden snow moccasin seashell peru buff pinky custard manilla desert toupe rosa azul
    fawn hazel canary bubblegum heather leather topaz ruby sapphire emerald jade amber slate bone""".split()
)

def split_css(name: str) -> str:
    if name in CSS_KEEP:
        return name
    out: list[str] = []
    rest = name
    while rest:
        for w in CSS_WORDS:
            if rest.startswith(w):
                out.append(w)
                rest = rest[len(w) :]
                break
        else:
            return name  # one word ("beige", "peru")
    return " ".join(out)


def main() -> None:
    css = [{"name": split_css(k), "css": k, "hex": v.lower()} for k, v in sorted(cd.CSS4_COLORS.items())]
    xkcd = {}
    for k, v in cd.XKCD_COLORS.items():
        name = k.removeprefix("xkcd:")
        if any(re.search(rf"\b{w}", name) for w in CRUDE):
            continue
        xkcd[name] = v.lower()
    data = {
        "about": (
            "Colour names by name and sRGB hex. css: the 148 CSS Color Module Level 4 named colours "
            "(W3C), with a spaced display name; xkcd: the XKCD colour survey names (Randall Munroe, "
            "2010, CC0 1.0 public domain, https://xkcd.com/color/rgb/) as shipped in matplotlib "
            f"{matplotlib.__version__} matplotlib._color_data.XKCD_COLORS, less a few crude names; "
            "extra: common retail names missing from both, each with its source. CSS wins over XKCD "
            "on a clash. free_text_ambiguous: names that are also everyday words, taken in free text only "
            "inside a longer colour phrase. Written by scripts/make_colours_json.py."
        ),
        "css": css,
        "xkcd": dict(sorted(xkcd.items())),
        "extra": {k: {"hex": h, "source": s} for k, (h, s) in EXTRA.items()},
        "free_text_ambiguous": sorted(set(AMBIGUOUS)),
    }
    OUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(css)} css, {len(xkcd)} xkcd, {len(EXTRA)} extra")


if __name__ == "__main__":
    main()
