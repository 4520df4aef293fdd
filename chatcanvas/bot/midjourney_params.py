"""Midjourney's parameters at the end of a prompt, the way its users type them out of habit:
``a lighthouse at dusk --ar 16:9 --no people, boats --seed 42 --v 6.1``.

``--ar``/``--aspect`` set the shape, ``--no`` the negative prompt, ``--seed``/``--sameseed`` the seed,
``--r``/``--repeat`` the number of images. The rest (``--v``, ``--stylize``, ``--chaos``, ``--style raw``,
``--niji``, ``--tile``, ``--sref`` …) mean nothing to a diffusion model: they are taken out of the text
the model sees, and the user is told which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chatcanvas import messages as m
from chatcanvas.types import MAX_SEED, ImageSpec, Limits

__all__ = ["MidjourneyParams", "apply_params", "split_params"]

# Midjourney's parameter names (V5-V7, niji): only these are read as parameters, so prose keeps its dashes
_NAMES = (
    "ar aspect no seed sameseed r repeat v version s stylize c chaos q quality style niji tile weird w iw "
    "sref cref sw cw sv oref ow p profile personalize stop relax fast turbo draft raw hd test testp creative "
    "video motion loop bs exp uplight upbeta upanime"
).split()
_FLAGS = frozenset("tile relax fast turbo draft hd test testp creative video loop uplight upbeta upanime p personalize".split())
# a parameter: "--name" and its words up to the next one ("—" is how phones autocorrect "--")
_START = rf"(?:--|\u2014)(?:{'|'.join(sorted(_NAMES, key=len, reverse=True))})\b"
_PARAM = re.compile(rf"(?:(?<=\s)|^)(?:--|\u2014)(?P<name>[a-z]+)\b(?P<value>(?:(?!\s{_START})[^\n])*)", re.I)
_RATIO = re.compile(r"^\s*(\d{1,3})\s*:\s*(\d{1,3})\s*$")
_INT = re.compile(r"^\s*(\d{1,10})\s*$")
_MAX_REPEAT = 40


@dataclass
class MidjourneyParams:
    prompt: str  # the text without the parameters
    ratio: tuple[int, int] | None = None
    negatives: list[str] = field(default_factory=list)
    seed: int | None = None
    repeat: int | None = None
    ignored: list[str] = field(default_factory=list)  # as typed: "--v 6.1", "--stylize 250"

    @property
    def any(self) -> bool:
        return bool(self.ratio or self.negatives or self.seed is not None or self.repeat or self.ignored)

    def as_words(self) -> str:
        """The prompt with the parameters in plain words, for the offline rules ("…, 16:9, no people")."""
        parts = [self.prompt.rstrip(" ,")]
        if self.ratio:
            parts.append(f"{self.ratio[0]}:{self.ratio[1]}")
        parts += [f"no {n}" for n in self.negatives]
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        return ", ".join(p for p in parts if p)


def split_params(text: str) -> MidjourneyParams:
    """The prompt and its Midjourney parameters; text without any comes back as it was."""
    found = [mt for mt in _PARAM.finditer(text) if mt["name"].lower() in _NAMES]
    if not found:
        return MidjourneyParams(prompt=text)
    kept, at, read = [], 0, []
    for mt in found:
        kept.append(text[at : mt.start()])
        at = mt.end()
        name, value = mt["name"].lower(), mt["value"].strip()
        if name != "no":  # one value (none for a flag); words after it are the prompt's ("--ar 3:2 in snow")
            ratio = re.match(r"\d{1,3}\s*:\s*\d{1,3}(?!\S)", value) if name in ("ar", "aspect") else None
            head, _, rest = value.partition(" ")
            if ratio:
                head, rest = ratio.group(0), value[ratio.end() :]
            if name in _FLAGS:
                head, rest = "", value
            value = head
            kept.append(" " + rest)
        read.append((name, value))
    out = MidjourneyParams(prompt="".join([*kept, text[at:]]).strip())
    out.prompt = re.sub(r"\s{2,}", " ", out.prompt).strip(" ,")
    for name, value in read:
        typed = f"--{name} {value}".strip()
        if name in ("ar", "aspect"):
            rm = _RATIO.match(value)
            if rm and int(rm[1]) and int(rm[2]):
                out.ratio = (int(rm[1]), int(rm[2]))
                continue
        elif name == "no":
            out.negatives += [n.strip() for n in re.split(r"[,;]", value) if n.strip()]
            continue
        elif name in ("seed", "sameseed"):
            im = _INT.match(value)
            if im:
                out.seed = min(int(im[1]), MAX_SEED)
                continue
        elif name in ("r", "repeat"):
            im = _INT.match(value)
            if im and int(im[1]) > 0:
                out.repeat = min(int(im[1]), _MAX_REPEAT)
                continue
        out.ignored.append(typed)
    return out


def apply_params(
    spec: ImageSpec, got: MidjourneyParams, limits: Limits, native: int
) -> tuple[ImageSpec, list[str]]:
    """``spec`` with the Midjourney parameters its prompt ended in (``got``: :func:`split_params` of it)
    applied: the shape (over the form's aspect: it is the more specific ask), the negative prompt, the
    seed and the count where the form left them unset; plus a note naming the parameters left out."""
    if not got.any:
        return spec, []
    upd: dict[str, object] = {"prompt": got.prompt or spec.prompt}
    if got.ratio:
        w, h = limits.size_for(None, got.ratio[0] / got.ratio[1], None, native, sdxl_buckets=True)
        upd.update(width=w, height=h)
    if got.negatives:
        upd["negative_prompt"] = ", ".join(p for p in (spec.negative_prompt, *got.negatives) if p)
    if got.seed is not None and spec.seed is None:
        upd["seed"] = got.seed
    if got.repeat and spec.count == 1:
        upd["count"] = got.repeat
    return spec.model_copy(update=upd), ([m.MIDJOURNEY_IGNORED.format(params=", ".join(got.ignored))] if got.ignored else [])
