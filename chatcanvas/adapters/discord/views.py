"""Result buttons that survive a restart: dynamic items whose custom ids carry the image id.

``cc:<action>:<image id>``: ``r`` reroll (new seed), ``v`` variation (image-to-image from that image),
``u`` upscale, ``i`` recipe (ephemeral), and the outpainting ones: ``z`` zoom out 1.5×, ``l`` / ``p`` /
``n`` / ``d`` pan left / right / up / down, ``b`` make a 3:1 banner. The bot registers :class:`ImageButton` once
(``bot.add_dynamic_items``); any press of any such button, on any message, ever, reaches the cog.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal, Protocol, cast, runtime_checkable

import discord
from discord import ui

Action = Literal["r", "v", "u", "i", "z", "l", "p", "n", "d", "b"]
ACTIONS: dict[str, str] = {"r": "reroll", "v": "vary", "u": "upscale", "i": "recipe"}
OUTPAINT: dict[str, str] = {  # button -> the Assistant's outpaint action
    "z": "zoom_out_1.5",
    "l": "pan_left",
    "p": "pan_right",
    "n": "pan_up",
    "d": "pan_down",
    "b": "banner",
}
_OUTPAINT_LABELS = {"z": ("Zoom out 1.5×", "🔍"), "l": ("←", None), "p": ("→", None), "n": ("↑", None), "d": ("↓", None)}
COG_NAME = "Chatcanvas"
MAX_IMAGE_BUTTONS = 5  # one row of V1..V5 and one of U1..U5


def custom_id(action: Action, image_id: str) -> str:
    return f"cc:{action}:{image_id}"


class ImageButton(
    ui.DynamicItem[ui.Button[Any]], template=r"cc:(?P<action>[rvuizlpndb]):(?P<image_id>[0-9a-f]{8,64})"
):
    def __init__(
        self,
        action: Action,
        image_id: str,
        *,
        label: str | None = None,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        emoji: str | None = None,
        row: int | None = None,
    ) -> None:
        super().__init__(
            ui.Button(label=label, style=style, emoji=emoji, custom_id=custom_id(action, image_id)),
            row=row,
        )
        self.action: Action = action
        self.image_id = image_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: re.Match[str], /
    ) -> ImageButton:
        action = cast(Action, match["action"])
        return cls(action, match["image_id"], label=getattr(item, "label", None))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog = interaction.client.get_cog(COG_NAME) if hasattr(interaction.client, "get_cog") else None
        if not isinstance(cog, ButtonHandler):
            from chatcanvas import messages as m

            await interaction.response.send_message(m.INTERNAL_ERROR, ephemeral=True)
            return
        await cog.on_image_button(interaction, self.action, self.image_id)


@runtime_checkable
class ButtonHandler(Protocol):
    """What the buttons call: the cog, found by name (so this module needs no import of it)."""

    async def on_image_button(self, interaction: discord.Interaction[Any], action: str, image_id: str) -> None: ...


def result_view(image_ids: Sequence[str]) -> ui.View:
    """V1..Vn, U1..Un, reroll and recipe, for the images of one result message."""
    view = ui.View(timeout=None)
    ids = list(image_ids)[:MAX_IMAGE_BUTTONS]
    if not ids:
        return view
    many = len(ids) > 1
    for n, image_id in enumerate(ids, 1):
        view.add_item(ImageButton("v", image_id, label=f"V{n}" if many else "Vary", row=0))
    for n, image_id in enumerate(ids, 1):
        view.add_item(ImageButton("u", image_id, label=f"U{n}" if many else "Upscale", row=1))
    view.add_item(
        ImageButton("r", ids[0], label="Reroll", emoji="🎲", style=discord.ButtonStyle.primary, row=2)
    )
    view.add_item(ImageButton("i", ids[0], label="Recipe", emoji="📋", row=2))
    view.add_item(ImageButton("b", ids[0], label="Make a banner (3:1)", emoji="🖼️", row=2))
    for action, (label, emoji) in _OUTPAINT_LABELS.items():
        view.add_item(ImageButton(action, ids[0], label=label, emoji=emoji, row=3))  # type: ignore[arg-type]
    return view
