"""The tools' argument boundary: limits hold whatever the arguments say; images stay out of the text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from chatcanvas.tools.context import ToolContext
from chatcanvas.tools.image_tools import GenerateImageArgs, build_tools, spec_from_args
from chatcanvas.types import Event, GeneratedImage, Images, ImageSpec, Limits, Place, Recipe, Text, UserRef

LIM = Limits(max_count=4, max_side=1024, max_pixels=1024 * 1024)


def test_clamps_count_size_and_seed() -> None:
    ctx = ToolContext(limits=LIM)
    spec, notes, err = spec_from_args(
        ctx, GenerateImageArgs(prompt="a kite", count=500, width=8192, height=8192, seed=-3)
    )
    assert err is None and spec is not None
    assert (spec.count, spec.width, spec.height, spec.seed) == (4, 1024, 1024, 0)
    assert any("500 images" in n for n in notes) and any("8192x8192" in n for n in notes)


def test_aspect_and_style_without_touching_the_prompt() -> None:
    ctx = ToolContext(limits=LIM, native_size=512)
    spec, notes, _ = spec_from_args(
        ctx, GenerateImageArgs(prompt="  a  fox ", aspect="wide", style="watercolour")
    )
    assert spec is not None and notes == []
    assert spec.prompt == "a fox" and spec.style == "watercolor"
    assert spec.width is not None and spec.height is not None and spec.width > spec.height
    assert "photo" in spec.negative_prompt  # the preset's negative prompt when none was given
    dalle, _, _ = spec_from_args(
        ToolContext(limits=LIM, family="dalle"), GenerateImageArgs(prompt="a fox", negative_prompt="blur")
    )
    assert dalle is not None and dalle.negative_prompt == ""


def test_sd_prompts_over_the_window_go_back_to_the_model_then_pass_with_a_note() -> None:
    ctx = ToolContext(limits=LIM, count_tokens=len)  # every character a token
    args = GenerateImageArgs(prompt="x" * 100)
    for _ in range(2):
        spec, _, err = spec_from_args(ctx, args)
        assert spec is None and err is not None and "100 tokens" in err
    spec, notes, err = spec_from_args(ctx, args)
    assert spec is not None and spec.prompt == "x" * 100 and "only the first 75" in notes[0]


class FakeService:
    def __init__(self) -> None:
        self.specs: list[ImageSpec] = []

    async def generate(
        self, spec: ImageSpec, who: UserRef, where: Place, prompt_in: str = ""
    ) -> AsyncIterator[Event]:
        self.specs.append(spec)
        recipe = Recipe(
            prompt=spec.prompt,
            width=8,
            height=8,
            seed=1,
            steps=1,
            guidance=1.0,
            sampler="x",
            model="m",
            backend="b",
        )
        yield Images(
            job_id="j",
            images=tuple(GeneratedImage(png=b"PNG" + bytes([i]), recipe=recipe) for i in range(spec.count)),
        )

    def vary_product(
        self,
        image: bytes,
        variations: Sequence[str],
        who: UserRef,
        where: Place,
        mask: bytes | None = None,
        subject: str = "",
    ) -> AsyncIterator[Event]:
        return self.generate(ImageSpec(prompt=", ".join(variations), count=len(variations)), who, where)

    def upscale(self, image_id: str, who: UserRef, where: Place, factor: int = 2) -> AsyncIterator[Event]:
        return self.generate(ImageSpec(prompt=f"up {image_id}"), who, where)


async def test_tools_return_images_as_artifacts_and_stream_events() -> None:
    from langchain_core.messages import ToolMessage

    seen: list[Any] = []

    async def sink(ev: Event) -> None:
        seen.append(ev)

    service = FakeService()
    ctx = ToolContext(limits=LIM, service=service, sink=sink)
    tools = {t.name: t for t in build_tools(ctx)}
    call = {
        "name": "generate_image",
        "args": {"prompt": "a kite", "count": 9},
        "id": "c1",
        "type": "tool_call",
    }
    msg = await tools["generate_image"].ainvoke(call)
    assert isinstance(msg, ToolMessage)
    assert [len(a.png) for a in msg.artifact] == [4, 4, 4, 4]
    assert "PNG" not in msg.content and "Made 4 image(s) for: a kite" in msg.content
    assert isinstance(seen[0], Text) and "9 images" in seen[0].text and isinstance(seen[1], Images)
    # the per-turn budget is spent: the next call makes nothing
    again = await tools["generate_image"].ainvoke({**call, "id": "c2"})
    assert again.artifact == [] and "limit of 4 images" in again.content
    assert len(service.specs) == 1


async def test_vary_product_needs_a_photo_and_upscale_an_image() -> None:
    ctx = ToolContext(limits=LIM, service=FakeService())
    tools = {t.name: t for t in build_tools(ctx)}
    out = await tools["vary_product"].ainvoke(
        {"name": "vary_product", "args": {"variations": ["red"]}, "id": "v", "type": "tool_call"}
    )
    assert "attach a product photo" in out.content and out.artifact == []
    up = await tools["upscale"].ainvoke({"name": "upscale", "args": {}, "id": "u", "type": "tool_call"})
    assert "attach" in up.content
    ctx.recent_images.append("abc")
    up = await tools["upscale"].ainvoke({"name": "upscale", "args": {}, "id": "u2", "type": "tool_call"})
    assert len(up.artifact) == 1


@pytest.mark.parametrize("bad", [{"prompt": ""}, {"count": 2}])
async def test_invalid_arguments_are_rejected_before_any_work(bad: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        GenerateImageArgs(**bad)
