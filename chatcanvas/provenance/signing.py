"""C2PA Content Credentials for the PNGs chatcanvas writes (c2pa-python, ES256).

One manifest per image: a ``c2pa.actions`` assertion (``c2pa.created`` with the IPTC digital source
type ``trainedAlgorithmicMedia``; for image-to-image and inpainting ``c2pa.opened`` + ``c2pa.edited``
with the source image as the parent ingredient; ``c2pa.watermarked`` with a soft-binding assertion
when the invisible watermark is in the pixels), the claim generator (``chatcanvas`` and its version),
and the full recipe as the custom assertion ``org.chatcanvas.recipe``.

Cost: one signer per process (a c2pa ``Context`` holding it, made once per credentials), signing
from memory streams, no thumbnail (c2pa's default re-encodes the picture as a JPEG thumbnail: most of
the time, and twice the file size on noisy images) and no verification right after signing; the PNG
is not decoded or re-encoded, c2pa only adds a ``caBX`` chunk, so the ``parameters`` and
``chatcanvas`` text chunks stay as they are.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chatcanvas.provenance.credentials as credentials
from chatcanvas import __version__
from chatcanvas import messages as m
from chatcanvas.errors import ChatcanvasError, ConfigError
from chatcanvas.images import MIME_TYPES, sniff_format
from chatcanvas.provenance.watermark import METHOD, PAYLOAD
from chatcanvas.types import Mode, Recipe

if TYPE_CHECKING:
    from chatcanvas.config import Settings

log = logging.getLogger(__name__)

GENERATOR = "chatcanvas"
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
RECIPE_LABEL = "org.chatcanvas.recipe"
SOFT_BINDING_ALG = "org.chatcanvas.imwatermark.dwtdct"  # not a registered C2PA soft-binding algorithm
_SIGN_SETTINGS: dict[str, Any] = {
    "builder": {"thumbnail": {"enabled": False}},
    "verify": {"verify_after_sign": False},
}


class ProvenanceError(ChatcanvasError):
    """Content Credentials could not be made (the message says how to fix it or turn them off)."""


@dataclass(frozen=True)
class Ingredient:
    data: bytes
    title: str


@dataclass
class _Signer:
    creds: credentials.Credentials
    context: Any  # c2pa.Context holding the signer
    lock: threading.Lock


_signers: dict[tuple[str, str, str], _Signer] = {}
_signers_lock = threading.Lock()


def c2pa_module() -> Any:
    try:
        import c2pa
    except ImportError:
        raise ConfigError(m.C2PA_MISSING) from None
    return c2pa


def credentials_for(settings: Settings) -> credentials.Credentials:
    if settings.c2pa_cert and settings.c2pa_key:
        return credentials.configured(settings.c2pa_cert, settings.c2pa_key)
    return credentials.local(settings.data_dir)


def _signer(settings: Settings) -> _Signer:
    key = (settings.c2pa_cert or "", settings.c2pa_key or "", str(Path(settings.data_dir).resolve()))
    with _signers_lock:
        found = _signers.get(key)
        if found is None:
            c2pa = c2pa_module()
            creds = credentials_for(settings)
            try:
                info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, creds.chain_pem, creds.key_pem, None)
                context = c2pa.Context.from_dict(_SIGN_SETTINGS, signer=c2pa.Signer.from_info(info))
            except c2pa.C2paError as exc:
                raise ConfigError(m.C2PA_CREDENTIAL_BAD.format(detail=_short(exc))) from None
            found = _signers[key] = _Signer(creds, context, threading.Lock())
        return found


def _short(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def mime_of(data: bytes) -> str | None:
    fmt = sniff_format(data)
    return MIME_TYPES.get(fmt) if fmt else None


def has_manifest(data: bytes) -> bool:
    """Whether ``data`` (PNG / JPEG / WebP) carries a C2PA manifest store c2pa can read."""
    mime = mime_of(data)
    if mime is None:
        return False
    c2pa = c2pa_module()
    try:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data))
    except c2pa.C2paError:
        return True  # something is there, even if it does not validate: keep it as it is
    if reader is None:
        return False
    reader.close()
    return True


def _agent() -> dict[str, str]:
    return {"name": GENERATOR, "version": __version__}


def edit_kind(recipe: Recipe) -> str:
    """``text2img``, or what was done to a source image: img2img, inpaint, upscale, outpaint."""
    if getattr(recipe, "upscale_by", None):
        return "upscale"
    if getattr(recipe, "outpaint", None):
        return "outpaint"
    if recipe.mode == Mode.TEXT2IMG and recipe.init_image:
        return Mode.IMG2IMG.value
    return recipe.mode.value


def manifest(
    recipe: Recipe,
    *,
    parent: bool = False,
    parent_is_origin: bool = False,
    inputs: int = 0,
    watermarked: bool = False,
    when: dt.datetime | None = None,
) -> dict[str, Any]:
    """The manifest definition for one image (ingredients are added by :func:`sign_png`)."""
    stamp = (when or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
    made = {"model": recipe.model, "backend": recipe.backend}
    sources = {k: v for k, v in (("init_image", recipe.init_image), ("mask_image", recipe.mask_image)) if v}
    kind = edit_kind(recipe)
    params: dict[str, Any] = {**made, "mode": kind, **sources}
    if inputs:  # the mask and other images that went into the edit
        params["ingredientIds"] = [f"input{n}" for n in range(inputs)]
    edit: dict[str, Any] = {
        "action": "c2pa.edited",
        "digitalSourceType": TRAINED,
        "softwareAgent": _agent(),
        "when": stamp,
        "description": f"{kind} with {recipe.model}",
        "parameters": params,
    }
    actions: list[dict[str, Any]] = []
    if parent:
        opened = {"action": "c2pa.opened", "when": stamp, "softwareAgent": _agent()}
        actions.append({**opened, "parameters": {"ingredientIds": ["parent"]}})
        if not parent_is_origin:
            actions.append(edit)
    else:
        actions.append(
            {
                "action": "c2pa.created",
                "digitalSourceType": TRAINED,
                "softwareAgent": _agent(),
                "when": stamp,
                "parameters": made,
            }
        )
        if kind != Mode.TEXT2IMG.value:  # the source image was not at hand: named, not attached
            actions.append(edit)
    assertions: list[dict[str, Any]] = []
    if watermarked:
        actions.append(
            {
                "action": "c2pa.watermarked",
                "softwareAgent": _agent(),
                "when": stamp,
                "description": f"invisible watermark, invisible-watermark {METHOD} format, payload {PAYLOAD.decode()}",
            }
        )
        assertions.append(
            {
                "label": "c2pa.soft-binding",
                "data": {
                    "alg": SOFT_BINDING_ALG,
                    "blocks": [{"scope": {}, "value": base64.b64encode(PAYLOAD).decode()}],
                },
            }
        )
    return {
        "claim_generator_info": [_agent()],
        "title": f"{GENERATOR} image",
        "format": "image/png",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": actions}},
            *assertions,
            {"label": RECIPE_LABEL, "data": recipe.model_dump(mode="json", exclude_none=True)},
        ],
    }


def derived_manifest(action: str, sources: int, *, watermarked: bool) -> dict[str, Any]:
    """A manifest for a picture made from finished images: one (resized: its parent) or several (a sheet)."""
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    base = {"softwareAgent": _agent(), "when": stamp}
    if sources == 1:
        actions = [
            {"action": "c2pa.opened", **base, "parameters": {"ingredientIds": ["parent"]}},
            {"action": action, **base},
        ]
    else:
        composite = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
        actions = [{"action": "c2pa.created", **base, "digitalSourceType": composite}]
        actions += [
            {"action": "c2pa.placed", **base, "parameters": {"ingredientIds": [f"part{n}"]}} for n in range(sources)
        ]
    assertions: list[dict[str, Any]] = [{"label": "c2pa.actions", "data": {"actions": actions}}]
    if watermarked:
        actions.append({"action": "c2pa.watermarked", **base})
        assertions.append(
            {
                "label": "c2pa.soft-binding",
                "data": {"alg": SOFT_BINDING_ALG, "blocks": [{"scope": {}, "value": base64.b64encode(PAYLOAD).decode()}]},
            }
        )
    return {
        "claim_generator_info": [_agent()],
        "title": f"{GENERATOR} image",
        "format": "image/png",
        "assertions": assertions,
    }


def sign_derived(png: bytes, sources: Sequence[bytes], settings: Settings, *, action: str, watermarked: bool) -> bytes:
    c2pa = c2pa_module()
    signer = _signer(settings)
    out = io.BytesIO()
    try:
        with signer.lock, c2pa.Builder(
            derived_manifest(action, len(sources), watermarked=watermarked), context=signer.context
        ) as builder:
            if len(sources) == 1:
                _ingredient(builder, Ingredient(sources[0], "original"), "parentOf", "parent")
            else:
                for n, src in enumerate(sources):
                    _ingredient(builder, Ingredient(src, f"image {n + 1}"), "componentOf", f"part{n}")
            builder.sign("image/png", io.BytesIO(png), out)
    except c2pa.C2paError as exc:
        raise ProvenanceError(m.C2PA_SIGN_FAILED.format(detail=_short(exc))) from None
    return out.getvalue()


def sign_png(
    png: bytes,
    recipe: Recipe,
    settings: Settings,
    *,
    parent: Ingredient | None = None,
    parent_is_origin: bool = False,
    inputs: Sequence[Ingredient] = (),
    watermarked: bool = False,
) -> bytes:
    """``png`` with a signed C2PA manifest added (its other chunks untouched)."""
    c2pa = c2pa_module()
    signer = _signer(settings)
    definition = manifest(
        recipe,
        parent=parent is not None,
        parent_is_origin=parent_is_origin,
        inputs=len(inputs),
        watermarked=watermarked,
    )
    out = io.BytesIO()
    try:
        with signer.lock, c2pa.Builder(definition, context=signer.context) as builder:
            if parent is not None:
                _ingredient(builder, parent, "parentOf", "parent")
            for n, extra in enumerate(inputs):
                _ingredient(builder, extra, "inputTo", f"input{n}")
            builder.sign("image/png", io.BytesIO(png), out)
    except c2pa.C2paError as exc:
        raise ProvenanceError(m.C2PA_SIGN_FAILED.format(detail=_short(exc))) from None
    return out.getvalue()


def _ingredient(builder: Any, item: Ingredient, relationship: str, label: str) -> None:
    mime = mime_of(item.data)
    if mime is None:
        log.warning("ingredient %s is not a PNG, JPEG or WebP; left out of the manifest", item.title)
        return
    builder.add_ingredient(
        {"title": item.title, "relationship": relationship, "label": label}, mime, io.BytesIO(item.data)
    )
