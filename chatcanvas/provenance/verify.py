"""Reading an image's provenance back: its C2PA manifest, its invisible watermark, its recipe.

:func:`verify_image` is the one function the CLI (``chatcanvas verify``), the web API
(``POST /v1/verify``) and the chat adapters call; it never raises on bad input, it says so in the
report (``verdict="unreadable"``).
"""

from __future__ import annotations

import io
import json
import threading
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from chatcanvas import messages as m

if TYPE_CHECKING:
    from chatcanvas.config import Settings

Verdict = Literal["ours", "altered", "invalid", "other", "absent", "unreadable"]
ManifestState = Literal["valid", "altered", "invalid", "absent"]

UNTRUSTED = "signingCredential.untrusted"
TRUSTED = "signingCredential.trusted"
# the content binding: the bytes (pixels and metadata) are not the ones that were signed
ALTERED = {
    "assertion.dataHash.mismatch",
    "assertion.boxesHash.mismatch",
    "assertion.bmffHash.mismatch",
    "assertion.collectionHash.mismatch",
}
MODEL_SOURCES = {
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeSynthetic",
}


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignerReport(_Out):
    issuer: str | None = None  # the certificate issuer's organization
    common_name: str | None = None
    alg: str | None = None
    serial: str | None = None
    trusted: bool = False  # on a trust list this reader was given (CHATCANVAS_C2PA_TRUST_ANCHORS)
    signed_here: bool = False  # with this installation's own signing certificate


class IngredientReport(_Out):
    title: str | None = None
    relationship: str | None = None
    format: str | None = None
    has_manifest: bool = False


class WatermarkReport(_Out):
    checked: bool  # false: the image is too small to carry one
    found: bool = False
    bits: int | None = None  # payload bits that match, of 32
    method: str = "dwtDct"
    payload: str = "CCAI"


class VerifyReport(_Out):
    verdict: Verdict
    ok: bool  # a valid chatcanvas image: manifest valid (untrusted signer allowed), generator chatcanvas
    summary: str
    manifest: ManifestState = "absent"
    format: str | None = None
    width: int | None = None
    height: int | None = None
    generator: str | None = None
    model: str | None = None
    created: str | None = None
    actions: list[str] = []
    digital_source_types: list[str] = []
    made_by_model: bool = False  # a trained-model digital source type anywhere in the manifest store
    signer: SignerReport | None = None
    ingredients: list[IngredientReport] = []
    problems: list[str] = []  # validation failures other than an untrusted signer
    watermark: WatermarkReport = WatermarkReport(checked=False)
    recipe: dict[str, Any] | None = None
    recipe_signed: bool = False  # the recipe came from the signed manifest (else from the PNG text)


_readers: dict[str, Any] = {}
_readers_lock = threading.Lock()


def _reader_context(settings: Settings) -> Any:
    from chatcanvas.provenance.credentials import _pem
    from chatcanvas.provenance.signing import c2pa_module

    key = settings.c2pa_trust_anchors or ""
    with _readers_lock:
        if key not in _readers:
            c2pa = c2pa_module()
            conf: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
            if key:
                conf["trust"] = {"trust_anchors": _pem(key, "CHATCANVAS_C2PA_TRUST_ANCHORS").decode()}
            _readers[key] = c2pa.Context.from_dict(conf)
        return _readers[key]


def _codes(results: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    active = results.get("activeManifest") or {}
    return list(active.get(kind) or [])


def _decode(data: bytes, settings: Settings) -> tuple[str, Any] | str:
    """(format, RGB image) or the reason it can't be read (the upload gate's byte and pixel caps)."""
    from chatcanvas.errors import InputImageError
    from chatcanvas.images import load_upload, sniff_format

    fmt = sniff_format(data)
    if fmt is None:
        return m.NOT_AN_IMAGE
    try:
        return fmt, load_upload(data, settings, mode="RGB")
    except InputImageError as exc:
        return str(exc)


def verify_image(data: bytes, settings: Settings | None = None) -> VerifyReport:
    """What ``data`` says about where it came from. Never raises for bad input."""
    from chatcanvas.images import MIME_TYPES
    from chatcanvas.provenance import settings_or_default, watermark

    s = settings_or_default(settings)
    decoded = _decode(data, s)
    if isinstance(decoded, str):
        return VerifyReport(verdict="unreadable", ok=False, summary=m.VERIFY_UNREADABLE.format(reason=decoded))
    fmt, img = decoded
    report: dict[str, Any] = {"format": MIME_TYPES[fmt], "width": img.width, "height": img.height}
    bits = watermark.detect(img)
    report["watermark"] = WatermarkReport(
        checked=bits is not None,
        found=bits is not None and bits >= watermark.MIN_BITS_FOUND,
        bits=bits,
    )
    report.update(_manifest(data, MIME_TYPES[fmt], s))
    if report.get("recipe") is None and fmt == "PNG":
        report.update(_png_recipe(data))
    return _finish(report)


def _png_recipe(data: bytes) -> dict[str, Any]:
    """The recipe from the PNG's ``chatcanvas`` text chunk (not signed: anyone could have written it)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:  # read here: the PNG writer (metadata.py) imports this package
            raw = getattr(im, "text", {}).get("chatcanvas")
    except Exception:
        return {}
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return {"recipe": value, "recipe_signed": False} if isinstance(value, dict) else {}


def _manifest(data: bytes, mime: str, settings: Settings) -> dict[str, Any]:
    from chatcanvas.errors import ConfigError
    from chatcanvas.provenance import credentials
    from chatcanvas.provenance.signing import GENERATOR, RECIPE_LABEL, c2pa_module

    try:
        c2pa = c2pa_module()
        context = _reader_context(settings)
    except ConfigError as exc:
        return {"manifest": "absent", "problems": [str(exc)]}
    try:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data), None, context)
    except c2pa.C2paError as exc:
        return {"manifest": "invalid", "problems": [str(exc).strip().splitlines()[0][:300]]}
    if reader is None:
        return {"manifest": "absent"}
    with reader:
        store = json.loads(reader.json())
    active = (store.get("manifests") or {}).get(store.get("active_manifest") or "") or {}
    results = store.get("validation_results") or {}
    failures = _codes(results, "failure")
    if not results:  # older readers: one flat list
        failures = [v for v in store.get("validation_status") or [] if isinstance(v, dict)]
    codes = {str(f.get("code")) for f in failures}
    problems = [f"{f.get('code')}: {f.get('explanation', '')}".strip(": ") for f in failures if f.get("code") != UNTRUSTED]
    state: ManifestState = "altered" if codes & ALTERED else "invalid" if problems or not active else "valid"
    out: dict[str, Any] = {"manifest": state, "problems": problems}

    info = (active.get("claim_generator_info") or [{}])[0]
    if info.get("name"):
        out["generator"] = " ".join(str(info[k]) for k in ("name", "version") if info.get(k))
    elif active.get("claim_generator"):
        out["generator"] = str(active["claim_generator"])
    sig = active.get("signature_info") or {}
    signer = SignerReport(
        issuer=sig.get("issuer"),
        common_name=sig.get("common_name"),
        alg=sig.get("alg"),
        serial=sig.get("cert_serial_number"),
        trusted=any(c.get("code") == TRUSTED for c in _codes(results, "success")),
    )
    try:
        mine = (
            credentials.configured(settings.c2pa_cert, settings.c2pa_key)
            if settings.c2pa_cert and settings.c2pa_key
            else credentials.existing(settings.data_dir)
        )
    except Exception:  # credentials that can't be read: this installation can't tell it signed it
        mine = None
    if mine is not None and signer.serial == mine.serial and signer.issuer == mine.issuer:
        signer.signed_here = True
    out["signer"] = signer

    actions: list[str] = []
    for a in _assertions(active, "c2pa.actions"):
        for act in a.get("actions") or []:
            actions.append(str(act.get("action")))
            if act.get("action") in ("c2pa.created", "c2pa.opened") and "created" not in out and act.get("when"):
                out["created"] = str(act["when"])
            params = act.get("parameters") or {}
            if params.get("model") and "model" not in out:
                out["model"] = str(params["model"])
    out["actions"] = actions
    sources: list[str] = []
    for man in (store.get("manifests") or {}).values():
        for a in _assertions(man, "c2pa.actions"):
            sources += [str(act["digitalSourceType"]) for act in a.get("actions") or [] if act.get("digitalSourceType")]
    out["digital_source_types"] = sorted(set(sources))
    out["made_by_model"] = bool(set(sources) & MODEL_SOURCES)
    out["ingredients"] = [
        IngredientReport(
            title=i.get("title"),
            relationship=i.get("relationship"),
            format=i.get("format"),
            has_manifest=bool(i.get("active_manifest")),
        )
        for i in active.get("ingredients") or []
    ]
    recipe = next(iter(_assertions(active, RECIPE_LABEL)), None)
    if recipe is not None:
        out["recipe"], out["recipe_signed"] = recipe, True
        out.setdefault("model", recipe.get("model"))
    out["_ours"] = str(info.get("name") or "") == GENERATOR
    return out


def _assertions(manifest: dict[str, Any], label: str) -> list[dict[str, Any]]:
    found = []
    for a in manifest.get("assertions") or []:
        name = str(a.get("label", ""))
        if name == label or name.startswith(label + ".v"):  # c2pa.actions.v2
            data = a.get("data")
            if isinstance(data, dict):
                found.append(data)
    return found


def _finish(r: dict[str, Any]) -> VerifyReport:
    ours = bool(r.pop("_ours", False))
    state = r.get("manifest", "absent")
    wm: WatermarkReport = r["watermark"]
    if state == "valid":
        verdict: Verdict = "ours" if ours else "other"
    elif state in ("altered", "invalid"):
        verdict = state
    else:
        verdict = "absent"
    signer: SignerReport | None = r.get("signer")
    who = (signer.common_name or signer.issuer or "?") if signer else "?"
    trust = m.VERIFY_TRUSTED if signer is not None and signer.trusted else m.VERIFY_UNTRUSTED
    mark = m.VERIFY_WATERMARK_FOUND if wm.found else m.VERIFY_WATERMARK_NONE if wm.checked else m.VERIFY_WATERMARK_SMALL
    summary = {
        "ours": m.VERIFY_OURS,
        "other": m.VERIFY_OTHER,
        "altered": m.VERIFY_ALTERED,
        "invalid": m.VERIFY_INVALID,
        "absent": m.VERIFY_ABSENT,
    }[verdict].format(
        generator=r.get("generator") or "?", model=r.get("model") or "?", signer=who, trust=trust
    )
    return VerifyReport(verdict=verdict, ok=verdict == "ours", summary=f"{summary} {mark}", **r)
