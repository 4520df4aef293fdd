"""AUTOMATIC1111 prompt syntax: weights, escapes, BREAK, long prompts and clip skip, on tiny checkpoints."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chatcanvas.generation.diffusers_backend import DiffusersBackend
from chatcanvas.generation.metadata import parameters_from_png
from chatcanvas.generation.prompt_weighting import (
    CHUNK,
    chunks_for,
    count_tokens,
    parse_attention,
    plain_text,
    prompt_inputs,
)
from chatcanvas.types import ImageSpec


def px(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


@pytest.fixture
def backend(settings) -> DiffusersBackend:  # type: ignore[no-untyped-def]
    return DiffusersBackend(settings)


async def draw(backend: DiffusersBackend, prompt: str, **kw: object) -> np.ndarray:
    spec = backend.resolve(ImageSpec(prompt=prompt, seed=kw.pop("seed", 5), steps=3, **kw))  # type: ignore[arg-type]
    return px((await backend.generate([spec]))[0].png)


# ---------------------------------------------------------------- the syntax


def test_weights_as_a1111_reads_them() -> None:
    def w(text: str) -> dict[str, float]:
        return {f.strip(" ,"): round(x, 4) for f, x in parse_attention(text) if f.strip(" ,")}

    assert w("a (red) mug") == {"a": 1.0, "red": 1.1, "mug": 1.0}
    assert w("((glossy)) cap") == {"glossy": 1.21, "cap": 1.0}
    assert w("(navy blue:1.3) tote bag") == {"navy blue": 1.3, "tote bag": 1.0}
    assert w("sneaker, [blurry]") == {"sneaker": 1.0, "blurry": round(1 / 1.1, 4)}
    assert w("(mug, (red:1.5))") == {"mug": 1.1, "red": 1.65}
    assert w("(open bracket never closed") == {"open bracket never closed": 1.1}
    assert plain_text(r"logo \(tm\) on a \[box\]") == "logo (tm) on a [box]"
    assert plain_text("(red:1.0) mug") == "red mug"
    assert plain_text("(red:1.2) mug") is None
    assert [f for f, x in parse_attention("a cap BREAK a mug") if x == -1.0] == ["BREAK"]


def test_chunks_of_75_break_at_a_late_comma_and_at_break(backend: DiffusersBackend) -> None:
    tok = backend.tokenizer()  # one token per character
    chunks, n = chunks_for(tok, "x" * 100)
    assert n == 100 and len(chunks) == 2 and all(len(c.tokens) == CHUNK + 2 for c in chunks)
    # a comma 10 tokens before the 75th: the second chunk starts right after it
    chunks, _ = chunks_for(tok, "a" * 64 + "," + "b" * 30)
    assert chunks[0].tokens[1 : 1 + 65] == tok("a" * 64 + ",", add_special_tokens=False)["input_ids"]
    assert chunks[1].tokens[1 : 1 + 30] == tok("b" * 30, add_special_tokens=False)["input_ids"]
    chunks, _ = chunks_for(tok, "red mug BREAK studio")
    assert len(chunks) == 2
    assert count_tokens(tok, "(red:1.4) mug") == len("redmug")


def test_an_unweighted_short_prompt_encodes_exactly_as_the_pipeline_does(backend: DiffusersBackend) -> None:
    import torch

    from chatcanvas.generation.prompt_weighting import _encode_texts

    pipe = backend.load()
    with torch.inference_mode():
        ours, _ = _encode_texts(pipe, ["a red mug, studio"], None, 1)
        theirs, _ = pipe.encode_prompt("a red mug, studio", "cpu", 1, False)
        ours2, _ = _encode_texts(pipe, ["a red mug, studio"], 2, 1)
        theirs2, _ = pipe.encode_prompt("a red mug, studio", "cpu", 1, False, clip_skip=1)
    assert torch.equal(ours, theirs) and torch.equal(ours2, theirs2)


# ---------------------------------------------------------------- pixels


async def test_weight_one_is_the_plain_prompt_and_a_real_weight_is_not(backend: DiffusersBackend) -> None:
    plain = await draw(backend, "red mug")
    assert np.array_equal(await draw(backend, "(red:1.0) mug"), plain)
    assert not np.array_equal(await draw(backend, "(red:1.6) mug"), plain)
    assert not np.array_equal(await draw(backend, "[red] mug"), plain)
    import torch

    kw = prompt_inputs(backend.load(), ["a (red:1.2) cap", "((red)) mug"], ["", "[blurry]"])
    assert torch.isfinite(kw["prompt_embeds"]).all() and torch.isfinite(kw["negative_prompt_embeds"]).all()


async def test_words_after_the_77th_token_still_count(backend: DiffusersBackend) -> None:
    head = "a ceramic mug on a wooden table, studio light, soft shadows, product photo, "
    await asyncio.to_thread(backend.tokenizer)  # loaded off the event loop, as the warm-up does
    assert (backend.count_tokens(head) or 0) > 60
    a = await draw(backend, head + "bright red glaze, gold rim, steam rising")
    b = await draw(backend, head + "deep blue glaze, silver rim, ice cubes")
    assert backend.count_tokens(head + "bright red glaze") > 77
    assert not np.array_equal(a, b)


async def test_break_starts_a_new_chunk(backend: DiffusersBackend) -> None:
    assert not np.array_equal(await draw(backend, "red mug BREAK studio"), await draw(backend, "red mug studio"))


async def test_clip_skip_is_honoured_and_recorded(backend: DiffusersBackend) -> None:
    one = await draw(backend, "a green sneaker")
    spec = backend.resolve(ImageSpec(prompt="a green sneaker", seed=5, steps=3, clip_skip=2))
    img = (await backend.generate([spec]))[0]
    assert not np.array_equal(px(img.png), one)
    assert img.recipe.clip_skip == 2 and parameters_from_png(img.png)["Clip skip"] == "2"
    # weighted prompts honour it too
    weighted1 = await draw(backend, "a (green:1.3) sneaker")
    weighted2 = await draw(backend, "a (green:1.3) sneaker", clip_skip=2)
    assert not np.array_equal(weighted1, weighted2)


async def test_a_long_and_a_short_prompt_batched_each_draw_what_they_draw_alone(
    backend: DiffusersBackend,
) -> None:
    long = "a canvas tote bag, " * 6 + "forest green"
    short = "a (red:1.2) cap"
    specs = [backend.resolve(ImageSpec(prompt=p, seed=9, steps=3)) for p in (long, short, "a blue mug")]
    assert len({backend.batch_key(s) for s in specs}) == 1  # the engine may put them in one batch
    together = await backend.generate(specs)
    alone = [(await backend.generate([s]))[0] for s in specs]
    for t, a in zip(together, alone, strict=True):
        assert t.recipe.prompt == a.recipe.prompt
        assert np.abs(px(t.png) - px(a.png)).max() <= 1


async def test_a_long_negative_prompt_works(backend: DiffusersBackend) -> None:
    neg = "blurry, " * 15 + "watermark"
    a = await draw(backend, "a yellow cap", negative_prompt=neg)
    b = await draw(backend, "a yellow cap", negative_prompt="blurry")
    assert a.shape == b.shape and not np.array_equal(a, b)


# ---------------------------------------------------------------- SDXL: two text encoders


@pytest.fixture(scope="module")
def tiny_sdxl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fakes.tiny_sdxl import build_tiny_sdxl

    return build_tiny_sdxl(tmp_path_factory.mktemp("tiny-sdxl"))


async def test_sdxl_weights_and_long_prompts(settings, tiny_sdxl_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import torch

    from chatcanvas.generation.prompt_weighting import _encode_texts

    be = DiffusersBackend(settings.model_copy(update={"model": str(tiny_sdxl_dir)}))
    pipe = be.load()
    with torch.inference_mode():
        ours, pooled = _encode_texts(pipe, ["a red mug"], None, 1)
        theirs, _, theirs_pooled, _ = pipe.encode_prompt("a red mug", device="cpu", do_classifier_free_guidance=False)
    assert torch.equal(ours, theirs) and torch.equal(pooled, theirs_pooled)
    kw = prompt_inputs(pipe, ["(red:1.3) mug, " + "studio " * 12], [""], None)
    assert kw["prompt_embeds"].shape[1] == 2 * 77 and kw["pooled_prompt_embeds"].shape[0] == 1
    plain = await draw(be, "red mug")
    assert np.array_equal(await draw(be, "(red:1.0) mug"), plain)
    assert not np.array_equal(await draw(be, "(red:1.6) mug"), plain)
    long_a = await draw(be, "studio light, " * 6 + "red glaze")
    long_b = await draw(be, "studio light, " * 6 + "blue glaze")
    assert not np.array_equal(long_a, long_b)
