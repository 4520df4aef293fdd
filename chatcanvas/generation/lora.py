"""LoRA files activated from the prompt, the way AUTOMATIC1111 users write them: ``<lora:name:weight>``.

Files live in ``CHATCANVAS_LORA_DIR`` (``.safetensors``, ``.pt``, ``.bin``; a folder holding
``pytorch_lora_weights.safetensors`` counts as one LoRA named after the folder), in kohya/AUTOMATIC1111
(``lora_unet_…`` / ``lora_te_…`` keys) or diffusers format; diffusers' ``load_lora_weights`` converts
them and injects PEFT layers. The tag is removed from the text the encoder reads and kept in the
recipe's prompt; the recipe also carries ``Lora hashes: "name: hash"`` as AUTOMATIC1111 writes it.

State is per request: before every pipeline call :meth:`LoraSet.activate` makes exactly the LoRAs of
this batch active with their weights (``set_adapters``), or turns LoRA off when the batch names none,
and :meth:`LoraSet.deactivate` turns it off afterwards; the engine batches only requests with the same
LoRA set (:func:`lora_key`). Loaded adapters stay cached (up to ``MAX_CACHED``) so the next request
with the same file does not read it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatcanvas import messages as m
from chatcanvas.errors import SpecError

if TYPE_CHECKING:
    from chatcanvas.config import Settings

log = logging.getLogger(__name__)

EXTENSIONS = (".safetensors", ".pt", ".bin", ".ckpt")
DIFFUSERS_FILE = "pytorch_lora_weights.safetensors"
MAX_CACHED = 8
_TAG = re.compile(r"<lora:([^:>]+)(?::([^:>]*))?(?::[^>]*)?>", re.I)


@dataclass(frozen=True)
class LoraTag:
    name: str
    weight: float


@dataclass(frozen=True)
class LoraFile:
    name: str
    path: Path

    @property
    def weights_path(self) -> Path:
        return self.path / DIFFUSERS_FILE if self.path.is_dir() else self.path


# ---------------------------------------------------------------- the prompt


def parse_loras(prompt: str) -> tuple[str, list[LoraTag]]:
    """(the prompt without its LoRA tags, the tags). A name given twice adds its weights.

    A tag without a weight (``<lora:name>``) has weight 1; an unreadable weight is a SpecError.
    """
    tags: dict[str, float] = {}
    for mt in _TAG.finditer(prompt):
        name, raw = mt.group(1).strip(), (mt.group(2) or "1").strip()
        try:
            w = float(raw)
        except ValueError:
            raise SpecError(m.LORA_BAD_WEIGHT.format(tag=mt.group(0))) from None
        tags[name] = tags.get(name, 0.0) + w
    text = _TAG.sub("", prompt)
    text = re.sub(r"\s+,", ",", re.sub(r"[ \t]{2,}", " ", text)).strip(" ,\t\n")
    return text, [LoraTag(n, w) for n, w in tags.items()]


def strip_loras(prompt: str) -> str:
    """The prompt the text encoder reads: LoRA tags removed (never raises)."""
    try:
        return parse_loras(prompt)[0]
    except SpecError:
        return _TAG.sub("", prompt).strip()


def lora_key(prompt: str) -> tuple[tuple[str, float], ...]:
    """What specs must share to run in one batch: the LoRA set with its weights (zero weights dropped)."""
    try:
        return tuple(sorted((t.name, t.weight) for t in parse_loras(prompt)[1] if t.weight != 0))
    except SpecError:
        return (("?", 0.0),)


# ---------------------------------------------------------------- the folder


def available_loras(settings: Settings) -> dict[str, LoraFile]:
    """LoRA name -> file, from ``CHATCANVAS_LORA_DIR`` (searched recursively; names are file stems)."""
    root = settings.lora_dir
    if root is None or not Path(root).is_dir():
        return {}
    found: dict[str, LoraFile] = {}
    for p in sorted(Path(root).rglob("*")):
        if p.is_file() and p.suffix.lower() in EXTENSIONS and p.name != DIFFUSERS_FILE:
            found.setdefault(p.stem, LoraFile(p.stem, p))
        elif p.is_dir() and (p / DIFFUSERS_FILE).is_file():
            found.setdefault(p.name, LoraFile(p.name, p))
    return dict(sorted(found.items(), key=lambda kv: kv[0].casefold()))


def _lookup(name: str, files: dict[str, LoraFile]) -> LoraFile | None:
    if name in files:
        return files[name]
    lower = {k.lower(): v for k, v in files.items()}
    return lower.get(name.lower())


def check_loras(prompt: str, settings: Settings) -> None:
    """Refuse (SpecError) a prompt naming a LoRA that is not in ``CHATCANVAS_LORA_DIR``, naming it."""
    _, tags = parse_loras(prompt)
    if not tags:
        return
    if settings.lora_dir is None:
        raise SpecError(m.LORA_DIR_UNSET.format(names=", ".join(t.name for t in tags)))
    files = available_loras(settings)
    missing = [t.name for t in tags if _lookup(t.name, files) is None]
    if missing:
        known = ", ".join(sorted(files)) or m.LORA_NONE_AVAILABLE
        raise SpecError(
            m.LORA_MISSING.format(names=", ".join(missing), folder=settings.lora_dir, known=known)
        )


# ---------------------------------------------------------------- hashes


_HASHES: dict[tuple[str, int, int], str] = {}


def lora_hash(path: Path) -> str:
    """AUTOMATIC1111's short LoRA hash: sha256 of a safetensors file's tensor bytes (the header
    skipped, the "addnet" hash), or of the whole file otherwise; first 12 hex digits."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _HASHES:
        return _HASHES[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        if path.suffix.lower() == ".safetensors":
            (n,) = struct.unpack("<Q", f.read(8))
            f.seek(n + 8)
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    _HASHES[key] = h.hexdigest()[:12]
    return _HASHES[key]


def lora_hashes(prompt: str, settings: Settings) -> str | None:
    """``"name: hash, other: hash"`` for the LoRAs this prompt uses (AUTOMATIC1111's ``Lora hashes``)."""
    try:
        _, tags = parse_loras(prompt)
    except SpecError:
        return None
    files = available_loras(settings) if tags else {}
    parts = []
    for t in tags:
        f = _lookup(t.name, files)
        if f is not None:
            parts.append(f"{t.name}: {lora_hash(f.weights_path)}")
    return ", ".join(parts) or None


def describe(f: LoraFile) -> str:
    """One line for ``chatcanvas loras``: name, format, hash, path."""
    kind = "diffusers"
    try:
        if f.weights_path.suffix.lower() == ".safetensors":
            with f.weights_path.open("rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                keys = list(json.loads(fh.read(n)))
            if any(k.startswith(("lora_unet_", "lora_te")) for k in keys):
                kind = "kohya"
        else:
            kind = "torch"
        digest = lora_hash(f.weights_path)
    except (OSError, ValueError, struct.error):
        return f"{f.name}  (unreadable)  {f.path}"
    return f"{f.name}  {kind}  {digest}  {f.path}"


# ---------------------------------------------------------------- the pipeline


def _adapter_name(name: str) -> str:
    return "lora_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _read_state_dict(path: Path) -> dict[str, Any]:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    import torch

    data = torch.load(str(path), map_location="cpu", weights_only=True)
    return dict(data.get("state_dict", data)) if isinstance(data, dict) else {}


class LoraSet:
    """The LoRA adapters loaded into one backend's pipeline (its components are shared by every mode)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loaded: OrderedDict[str, tuple[str, int]] = OrderedDict()  # adapter -> (path, mtime)
        self.active: tuple[tuple[str, float], ...] = ()

    def activate(self, pipe: Any, prompt: str) -> None:
        """Make exactly the LoRAs ``prompt`` names active with their weights; none: LoRA off."""
        _, tags = parse_loras(prompt)
        tags = [t for t in tags if t.weight != 0]
        if not tags:
            self.deactivate(pipe)
            return
        files = available_loras(self.settings)
        names, weights = [], []
        for t in tags:
            f = _lookup(t.name, files)
            if f is None:  # checked at admission; the file went away since
                raise SpecError(
                    m.LORA_MISSING.format(
                        names=t.name, folder=self.settings.lora_dir, known=", ".join(sorted(files)) or "-"
                    )
                )
            names.append(self._ensure(pipe, f))
            weights.append(t.weight)
        pipe.enable_lora()
        pipe.set_adapters(names, adapter_weights=weights)
        self.active = tuple(zip(names, weights, strict=True))

    def deactivate(self, pipe: Any) -> None:
        if self._loaded:
            pipe.disable_lora()
        self.active = ()

    def _ensure(self, pipe: Any, f: LoraFile) -> str:
        name = _adapter_name(f.name)
        path = f.weights_path
        stamp = (str(path), path.stat().st_mtime_ns)
        if self._loaded.get(name) == stamp:
            self._loaded.move_to_end(name)
            return name
        if name in self._loaded:  # the file changed on disk: load it again
            pipe.delete_adapters([name])
            del self._loaded[name]
        try:
            pipe.load_lora_weights(_read_state_dict(path), adapter_name=name)
        except ImportError as exc:
            raise SpecError(m.LORA_NEEDS_PEFT) from exc
        except (ValueError, KeyError, RuntimeError, OSError) as exc:
            detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise SpecError(m.LORA_UNREADABLE.format(name=f.name, detail=detail)) from exc
        self._loaded[name] = stamp
        log.info("loaded LoRA %s from %s", f.name, path)
        while len(self._loaded) > MAX_CACHED:
            old, _ = self._loaded.popitem(last=False)
            pipe.delete_adapters([old])
        return name
