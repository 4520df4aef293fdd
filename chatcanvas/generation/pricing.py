"""What an OpenAI image costs: a price table per model, quality and size.

The defaults are the published list prices (USD per image). ``CHATCANVAS_PRICES`` overrides any part
of the table with JSON in the same shape, e.g. ``{"dall-e-3": {"hd": {"1024x1024": 0.09}}}``; what it
does not name keeps its default.

gpt-image-1 is billed by tokens; the per-image prices here are OpenAI's published per-image
equivalents for text-to-image. Edits add input-image tokens, so an edit's recorded cost is a
slight under-estimate.
"""

from __future__ import annotations

from collections.abc import Mapping

from chatcanvas import messages as m
from chatcanvas.errors import ConfigError

PriceTable = dict[str, dict[str, dict[str, float]]]  # model -> quality -> "WxH" -> USD per image

DEFAULT_PRICES: PriceTable = {
    "dall-e-3": {
        "standard": {"1024x1024": 0.04, "1024x1792": 0.08, "1792x1024": 0.08},
        "hd": {"1024x1024": 0.08, "1024x1792": 0.12, "1792x1024": 0.12},
    },
    "dall-e-2": {
        "standard": {"256x256": 0.016, "512x512": 0.018, "1024x1024": 0.02},
    },
    "gpt-image-1": {
        "low": {"1024x1024": 0.011, "1024x1536": 0.016, "1536x1024": 0.016},
        "medium": {"1024x1024": 0.042, "1024x1536": 0.063, "1536x1024": 0.063},
        "high": {"1024x1024": 0.167, "1024x1536": 0.25, "1536x1024": 0.25},
    },
}

# The quality a price is looked up under when the request names none (or names "auto").
PRICE_QUALITY_FALLBACK = {"dall-e-3": "standard", "dall-e-2": "standard", "gpt-image-1": "high"}


def merge_prices(overrides: Mapping[str, Mapping[str, Mapping[str, float]]] | None) -> PriceTable:
    """The default table with ``overrides`` laid over it, cell by cell."""
    table: PriceTable = {
        model: {q: dict(sizes) for q, sizes in qs.items()} for model, qs in DEFAULT_PRICES.items()
    }
    for model, qualities in (overrides or {}).items():
        for quality, sizes in qualities.items():
            for size, price in sizes.items():
                if not isinstance(price, int | float) or price < 0:
                    raise ConfigError(
                        m.BAD_SETTING.format(
                            var="CHATCANVAS_PRICES",
                            problem=f"{model}/{quality}/{size} is {price!r}",
                            accepts='Accepts JSON like {"dall-e-3": {"hd": {"1024x1024": 0.08}}}.',
                        )
                    )
                table.setdefault(model, {}).setdefault(quality, {})[size] = float(price)
    return table


class Prices:
    """Looks up the price of one image."""

    def __init__(self, overrides: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None) -> None:
        self.table = merge_prices(overrides)

    def per_image(self, model: str, size: str, quality: str | None) -> float:
        """USD for one image; a missing entry is a configuration problem, named as such."""
        qualities = self.table.get(model)
        if not qualities:
            raise ConfigError(m.PRICE_MISSING.format(model=model, quality=quality or "-", size=size))
        q = quality if quality and quality != "auto" else PRICE_QUALITY_FALLBACK.get(model, "standard")
        if q not in qualities and len(qualities) == 1:
            q = next(iter(qualities))  # models with one quality (dall-e-2) price every request the same
        price = qualities.get(q, {}).get(size)
        if price is None:
            raise ConfigError(m.PRICE_MISSING.format(model=model, quality=q, size=size))
        return price
