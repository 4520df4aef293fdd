"""What an OpenAI image costs: price tables per model, quality and size, for generations and for edits.

The defaults are the published list prices (USD per image). ``CHATCANVAS_PRICES`` overrides any part
of the generation table with JSON in the same shape, e.g. ``{"dall-e-3": {"hd": {"1024x1024": 0.09}}}``,
and ``CHATCANVAS_EDIT_PRICES`` any part of the edits table (``images.edit``: image-to-image,
inpainting, product variations); what they do not name keeps its default.

gpt-image-1 is billed by tokens; its per-image prices here are OpenAI's published per-image
equivalents for the output image. An edit also sends the init image, billed as image input tokens:
the edits table adds it at the output size (the init image is sent at that size), counted the way
OpenAI counts vision input (85 tokens + 170 per 512-px tile: 765 tokens for 1024x1024, 1105 for
1536x1024) at $10 per million. The prompt's text tokens are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from chatcanvas import messages as m
from chatcanvas.errors import ConfigError
from chatcanvas.generation.openai_models import check_quality, resolve_spec
from chatcanvas.types import ImageSpec, Mode

if TYPE_CHECKING:
    from chatcanvas.config import Settings

__all__ = ["DEFAULT_EDIT_PRICES", "DEFAULT_PRICES", "PriceTable", "Prices", "estimate_cost", "merge_prices"]

PriceTable = dict[str, dict[str, dict[str, float]]]  # model -> quality -> "WxH" -> USD per image
Overrides = Mapping[str, Mapping[str, Mapping[str, float]]]

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

# gpt-image-1: the init image of an edit as image input tokens (see the module docstring), USD.
_USD_PER_IMAGE_TOKEN = 10 / 1_000_000
_GPT_IMAGE_1_INPUT_IMAGE = {
    size: tokens * _USD_PER_IMAGE_TOKEN
    for size, tokens in {"1024x1024": 765, "1024x1536": 1105, "1536x1024": 1105}.items()
}

DEFAULT_EDIT_PRICES: PriceTable = {
    # dall-e-2 edits are listed at its generation prices; dall-e-3 makes no edits.
    "dall-e-2": {"standard": dict(DEFAULT_PRICES["dall-e-2"]["standard"])},
    "gpt-image-1": {
        quality: {size: round(usd + _GPT_IMAGE_1_INPUT_IMAGE[size], 5) for size, usd in sizes.items()}
        for quality, sizes in DEFAULT_PRICES["gpt-image-1"].items()
    },
}

# The quality a price is looked up under when the request names none (or names "auto").
PRICE_QUALITY_FALLBACK = {"dall-e-3": "standard", "dall-e-2": "standard", "gpt-image-1": "high"}


def merge_prices(
    overrides: Overrides | None, base: PriceTable = DEFAULT_PRICES, var: str = "CHATCANVAS_PRICES"
) -> PriceTable:
    """``base`` with ``overrides`` (the setting ``var``) laid over it, cell by cell."""
    table: PriceTable = {model: {q: dict(sizes) for q, sizes in qs.items()} for model, qs in base.items()}
    for model, qualities in (overrides or {}).items():
        for quality, sizes in qualities.items():
            for size, price in sizes.items():
                if not isinstance(price, int | float) or price < 0:
                    raise ConfigError(
                        m.BAD_SETTING.format(
                            var=var,
                            problem=f"{model}/{quality}/{size} is {price!r}",
                            accepts='Accepts JSON like {"dall-e-3": {"hd": {"1024x1024": 0.08}}}.',
                        )
                    )
                table.setdefault(model, {}).setdefault(quality, {})[size] = float(price)
    return table


class Prices:
    """Looks up the price of one image, made (``images.generate``) or edited (``images.edit``)."""

    def __init__(self, overrides: Overrides | None = None, edit_overrides: Overrides | None = None) -> None:
        self.table = merge_prices(overrides)
        self.edit_table = merge_prices(edit_overrides, DEFAULT_EDIT_PRICES, "CHATCANVAS_EDIT_PRICES")

    @classmethod
    def from_settings(cls, settings: Settings) -> Prices:
        return cls(settings.prices, settings.edit_prices)

    def per_image(self, model: str, size: str, quality: str | None, *, edit: bool = False) -> float:
        """USD for one image; a missing entry is a configuration problem, named as such."""
        table, missing = (self.edit_table, m.EDIT_PRICE_MISSING) if edit else (self.table, m.PRICE_MISSING)
        qualities = table.get(model)
        if not qualities:
            raise ConfigError(missing.format(model=model, quality=quality or "-", size=size))
        q = quality if quality and quality != "auto" else PRICE_QUALITY_FALLBACK.get(model, "standard")
        if q not in qualities and len(qualities) == 1:
            q = next(iter(qualities))  # models with one quality (dall-e-2) price every request the same
        price = qualities.get(q, {}).get(size)
        if price is None:
            raise ConfigError(missing.format(model=model, quality=q, size=size))
        return price

    def for_spec(self, spec: ImageSpec, quality: str | None) -> float:
        """USD for one image of a resolved ``spec``: an edit (init image given) from the edits table."""
        return self.per_image(
            spec.model or "", f"{spec.width}x{spec.height}", quality, edit=spec.mode is not Mode.TEXT2IMG
        )


def estimate_cost(spec: ImageSpec, settings: Settings, prices: Prices | None = None) -> float:
    """List price in USD of all ``spec.count`` images of ``spec`` on the openai backend."""
    spec = resolve_spec(spec, settings)
    prices = prices or Prices.from_settings(settings)
    return prices.for_spec(spec, check_quality(spec.model or "", settings.openai_quality)) * spec.count
