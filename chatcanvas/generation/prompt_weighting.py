"""Prompt weighting and long prompts in the syntax AUTOMATIC1111 users write.

``(word)`` stresses by 1.1, ``((word))`` by 1.21, ``(word:1.3)`` by 1.3, ``[word]`` weakens by 1.1,
``\\(`` and ``\\)`` are literal brackets, and ``BREAK`` starts a new 75-token chunk. A prompt longer
than 75 tokens is cut into 75-token chunks (at a comma when one is near the end of a chunk), each
chunk is encoded on its own as ``[start] tokens [end] [pad...]`` and the results are concatenated,
so the UNet sees 77·k tokens. Weights scale each token's embedding and then the chunk's mean is put
back to what it was (AUTOMATIC1111's "Original" emphasis). ``Clip skip`` N takes the N-th hidden
state from the end and applies the final layer norm, as AUTOMATIC1111 and diffusers' ``clip_skip``
(= N - 1) do.

Why this module rather than ``compel``: compel reads its own syntax (``(word)1.3``, ``word++``),
lowers a weight below 1 by blending with the prompt with that word masked out rather than by scaling
(so ``[word]`` and ``(word:0.8)`` would not mean what AUTOMATIC1111 users expect), knows no ``BREAK`` and
does not move a chunk boundary back to a comma, so long prompts would not match AUTOMATIC1111's
pixels; and its current release needs transformers 5 while this project is on transformers 4 (its
older releases pull in Jupyter ``notebook``). The encoder here is about 150 lines and follows the
behaviour people compare against.

A prompt with no weights, no ``BREAK`` and at most 75 tokens goes through the pipeline's own
``prompt=`` path, so ``(red:1.0) mug`` gives exactly the pixels of ``red mug``.

SDXL: both text encoders see the same chunks (their vocabularies are the same; each pads with its
own pad token), the chunk embeddings are concatenated feature-wise as diffusers does, and the pooled
embedding comes from the second encoder on the first chunk.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import torch

    from chatcanvas.types import ImageSpec

T = TypeVar("T")

CHUNK = 75  # tokens per chunk, without the start and end tokens
COMMA_BACKTRACK = 20  # a chunk that fills up within this many tokens of a comma breaks at the comma
UP, DOWN = 1.1, 1 / 1.1

_ATTENTION = re.compile(
    r"""
    \\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:
    """,
    re.X,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


# ---------------------------------------------------------------- parsing


def parse_attention(text: str) -> list[tuple[str, float]]:
    """``text`` as (fragment, weight) pairs; ``("BREAK", -1.0)`` marks a chunk break.

    ``"a (red:1.5) mug, [blurry]"`` -> ``[("a ", 1), ("red", 1.5), (" mug, ", 1), ("blurry", 1/1.1)]``
    """
    out: list[list[Any]] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for p in range(start, len(out)):
            out[p][1] *= factor

    for m in _ATTENTION.finditer(text):
        tok, weight = m.group(0), m.group(1)
        if tok.startswith("\\"):  # an escaped bracket (a lone backslash is dropped)
            out.append([tok[1:], 1.0])
        elif tok == "(":
            round_open.append(len(out))
        elif tok == "[":
            square_open.append(len(out))
        elif weight is not None and round_open:
            try:
                scale(round_open.pop(), float(weight))
            except ValueError:
                out.append([tok, 1.0])
        elif tok == ")" and round_open:
            scale(round_open.pop(), UP)
        elif tok == "]" and square_open:
            scale(square_open.pop(), DOWN)
        else:
            parts = _BREAK.split(tok)
            for i, part in enumerate(parts):
                if i > 0:
                    out.append(["BREAK", -1.0])
                out.append([part, 1.0])
    for start in round_open:  # an unclosed bracket stresses everything after it
        scale(start, UP)
    for start in square_open:
        scale(start, DOWN)
    merged: list[list[Any]] = []
    for frag, w in out:
        if frag == "":
            continue
        if merged and w == merged[-1][1] and w != -1.0 and frag != "BREAK" and merged[-1][0] != "BREAK":
            merged[-1][0] += frag
        else:
            merged.append([frag, w])
    if not merged:
        return [("", 1.0)]
    return [(str(f), float(w)) for f, w in merged]


def plain_text(text: str) -> str | None:
    """The prompt as the encoder would read it when it carries no weights and no BREAK, else None."""
    parts = parse_attention(text)
    if any(w != 1.0 for _, w in parts):
        return None
    return "".join(f for f, _ in parts)


# ---------------------------------------------------------------- tokens and chunks


@dataclass
class Chunk:
    tokens: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


def _token_ids(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]]


def _comma_id(tokenizer: Any) -> int | None:
    vocab = tokenizer.get_vocab()
    for key in (",</w>", ","):
        if key in vocab:
            return int(vocab[key])
    return None


def chunks_for(tokenizer: Any, text: str) -> tuple[list[Chunk], int]:
    """(75-token chunks with start/end tokens and padding, how many prompt tokens there are)."""
    start, end = int(tokenizer.bos_token_id), int(tokenizer.eos_token_id)
    comma = _comma_id(tokenizer)
    parsed = parse_attention(text)
    ids = _token_ids(tokenizer, [f for f, w in parsed if w != -1.0])
    chunks: list[Chunk] = []
    chunk = Chunk()
    count = 0
    last_comma = -1

    def close(last: bool = False) -> None:
        nonlocal chunk, count, last_comma
        count += len(chunk.tokens) if last else CHUNK
        pad = CHUNK - len(chunk.tokens)
        chunk.tokens = [start, *chunk.tokens, *([end] * pad), end]
        chunk.weights = [1.0, *chunk.weights, *([1.0] * pad), 1.0]
        chunks.append(chunk)
        chunk = Chunk()
        last_comma = -1

    it = iter(ids)
    for _frag, weight in parsed:
        if weight == -1.0:
            close()
            continue
        for tok in next(it):
            if tok == comma:
                last_comma = len(chunk.tokens)
            elif (
                len(chunk.tokens) == CHUNK and last_comma != -1 and CHUNK - last_comma <= COMMA_BACKTRACK
            ):
                cut = last_comma + 1
                moved, moved_w = chunk.tokens[cut:], chunk.weights[cut:]
                chunk.tokens, chunk.weights = chunk.tokens[:cut], chunk.weights[:cut]
                close()
                chunk.tokens, chunk.weights = moved, moved_w
            if len(chunk.tokens) == CHUNK:
                close()
            chunk.tokens.append(int(tok))
            chunk.weights.append(weight)
    if chunk.tokens or not chunks:
        close(last=True)
    return chunks, count


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens the encoder sees (weights and brackets removed), as AUTOMATIC1111 counts them."""
    return chunks_for(tokenizer, text)[1]


def needs_embeddings(tokenizer: Any, text: str) -> bool:
    """True when ``text`` has weights, a BREAK or more than 75 tokens (the pipeline's path would not do)."""
    plain = plain_text(text)
    if plain is None or "BREAK" in [f for f, _ in parse_attention(text)]:
        return True
    return count_tokens(tokenizer, text) > CHUNK


def shape_key(tokenizer: Any, prompt: str, negative: str) -> int:
    """What a batch must share to be encoded together: the chunk count. (A plain prompt encodes to the
    same embeddings on either path, so plain and weighted prompts of one chunk may share a call.)"""
    if tokenizer is None:
        return 1
    return max(len(chunks_for(tokenizer, prompt)[0]), len(chunks_for(tokenizer, negative)[0]))


# ---------------------------------------------------------------- encoding


def _encode_chunk_batch(
    encoder: Any, tokenizer: Any, batch: list[Chunk], layer: int, final_norm: bool, device: Any
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(hidden states (B, 77, D) after weighting, pooled text embeds (B, P) or None)."""
    import torch

    end = int(tokenizer.eos_token_id)
    pad = tokenizer.pad_token_id
    rows = []
    for c in batch:
        toks = list(c.tokens)
        if pad is not None and pad != end:  # after the first end token, the encoder's own pad token
            first = toks.index(end)
            toks[first + 1 :] = [int(pad)] * (len(toks) - first - 1)
        rows.append(toks)
    ids = torch.tensor(rows, dtype=torch.long, device=device)
    mask = None
    if getattr(encoder.config, "use_attention_mask", False):
        mask = torch.tensor([[1] * len(r) for r in rows], dtype=torch.long, device=device)
    out = encoder(ids, attention_mask=mask, output_hidden_states=True)
    if layer == -1 and final_norm:
        z = out.last_hidden_state
    else:
        z = out.hidden_states[layer]
        if final_norm:
            z = encoder.text_model.final_layer_norm(z)
    pooled = out.text_embeds if hasattr(out, "text_embeds") else None
    weights = torch.tensor([c.weights for c in batch], dtype=z.dtype, device=z.device)
    if bool((weights != 1.0).any()):
        # AUTOMATIC1111's "Original" emphasis, per prompt rather than per batch, so a prompt's pixels
        # do not depend on what it was batched with.
        # (A mean near zero, as in an encoder whose last layer norm has no bias, is left alone: the
        # ratio would blow up.)
        before = z.mean(dim=(1, 2), keepdim=True)
        z = z * weights.unsqueeze(-1)
        after = z.mean(dim=(1, 2), keepdim=True)
        scale = z.abs().mean(dim=(1, 2), keepdim=True)
        ok = (after.abs() > 1e-3 * scale) & (before.abs() > 1e-3 * scale)
        z = z * torch.where(ok, before / torch.where(ok, after, torch.ones_like(after)), torch.ones_like(after))
    return z, pooled


def _is_xl(pipe: Any) -> bool:
    return getattr(pipe, "text_encoder_2", None) is not None


def _encode_texts(
    pipe: Any, texts: list[str], clip_skip: int | None, n_chunks: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Embeddings (B, 77·n_chunks, D) for ``texts`` (padded with empty chunks), pooled (SDXL) or None."""
    import torch

    tok = pipe.tokenizer if pipe.tokenizer is not None else pipe.tokenizer_2
    per_text = []
    for t in texts:
        cs = chunks_for(tok, t)[0]
        cs += [chunks_for(tok, "")[0][0] for _ in range(n_chunks - len(cs))]
        per_text.append(cs)
    skip = max(1, clip_skip or 1)
    device = pipe._execution_device
    pairs: list[tuple[Any, Any, int, bool]] = []
    if _is_xl(pipe):
        # diffusers' SDXL: the penultimate layer, no final norm; clip_skip moves further back
        for enc, tk in ((pipe.text_encoder, pipe.tokenizer), (pipe.text_encoder_2, pipe.tokenizer_2)):
            if enc is not None:
                pairs.append((enc, tk, -(skip + 1), False))
    else:
        pairs.append((pipe.text_encoder, pipe.tokenizer, -skip, True))
    columns = []
    pooled = None
    for i in range(n_chunks):
        batch = [cs[i] for cs in per_text]
        parts = []
        for enc, tk, layer, norm in pairs:
            z, p = _encode_chunk_batch(enc, tk, batch, layer, norm, device)
            parts.append(z)
            if p is not None and i == 0:
                pooled = p
        columns.append(torch.cat(parts, dim=-1))
    return torch.cat(columns, dim=1), pooled


def prompt_inputs(
    pipe: Any, prompts: list[str], negatives: list[str], clip_skip: int | None = None
) -> dict[str, Any]:
    """The pipeline keyword arguments for these prompts: the plain ``prompt=`` path when it will do,
    else ``prompt_embeds`` / ``negative_prompt_embeds`` (and the pooled pair for SDXL).

    ``prompts`` and ``negatives`` are what the encoder should read (LoRA tags already removed);
    ``clip_skip`` is AUTOMATIC1111's (1 = the last layer). All prompts must share one chunk count
    (:func:`shape_key`); shorter negatives are padded with empty chunks as AUTOMATIC1111 does.
    """
    import torch

    tok = pipe.tokenizer if getattr(pipe, "tokenizer", None) is not None else pipe.tokenizer_2
    skip = clip_skip if clip_skip and clip_skip > 1 else None
    if tok is None or not any(needs_embeddings(tok, t) for t in [*prompts, *negatives]):
        plain_p = [plain_text(p) or "" for p in prompts]
        plain_n = [plain_text(n) or "" for n in negatives]
        out: dict[str, Any] = {
            "prompt": plain_p,
            "negative_prompt": plain_n if any(plain_n) else None,
        }
        if skip is not None:
            out["clip_skip"] = skip - 1
        return out
    n = max(len(chunks_for(tok, t)[0]) for t in [*prompts, *negatives])
    with torch.inference_mode():
        pos, pooled = _encode_texts(pipe, prompts, clip_skip, n)
        xl = _is_xl(pipe)
        zeros = xl and not any(negatives) and bool(getattr(pipe.config, "force_zeros_for_empty_prompt", False))
        if zeros:
            neg, neg_pooled = torch.zeros_like(pos), (torch.zeros_like(pooled) if pooled is not None else None)
        else:
            neg, neg_pooled = _encode_texts(pipe, negatives, clip_skip, n)
    out = {"prompt_embeds": pos, "negative_prompt_embeds": neg}
    if xl:
        out["pooled_prompt_embeds"] = pooled
        out["negative_pooled_prompt_embeds"] = neg_pooled
    return out


def in_shape_groups(tokenizer: Any, specs: list[ImageSpec], run: Callable[[list[ImageSpec]], list[T]]) -> list[T] | None:
    """When ``specs`` do not share one :func:`shape_key` (a long prompt batched with a short one),
    ``run`` each group on its own and return the images in the specs' order; else None.

    A prompt padded to another's chunk count would give other pixels than alone, so it never is.
    """
    from chatcanvas.generation.lora import strip_loras

    def key(s: ImageSpec) -> int:
        neg = s.negative_prompt if s.guidance is None or s.guidance > 1 else ""
        return shape_key(tokenizer, strip_loras(s.prompt), strip_loras(neg))

    keys = [key(s) for s in specs]
    if len(set(keys)) <= 1:
        return None
    groups: dict[int, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    rows: list[list[T]] = [[] for _ in specs]
    for idx in groups.values():
        made = iter(run([specs[i] for i in idx]))
        for i in idx:
            rows[i] = [next(made) for _ in range(specs[i].count)]
    return [img for row in rows for img in row]
