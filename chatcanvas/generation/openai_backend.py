"""The OpenAI image backend: DALL-E 3, DALL-E 2 and gpt-image-1 through the official ``openai`` SDK.

``images.generate`` for text-to-image, ``images.edit`` (with a mask) for edits and product
variations. The SDK's own retries are off (``max_retries=0``): :meth:`OpenAIBackend._call` retries
429 and 5xx answers itself, honouring ``Retry-After`` / ``retry-after-ms``, so the budget is ours
(``CHATCANVAS_OPENAI_MAX_RETRIES``, ``CHATCANVAS_OPENAI_MAX_RETRY_WAIT_S``) and testable.

Every image ends as PNG bytes: ``b64_json`` is decoded, a URL is fetched (timeout, size cap). The
recipe is added to the PNG as text chunks without touching the image data the service returned.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import io
import logging
import math
import random
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from chatcanvas import messages as m
from chatcanvas.errors import BackendError, ConfigError, ContentPolicyRefusal, SpecError
from chatcanvas.generation.base import Backend, StepCallback, StepInfo
from chatcanvas.generation.pricing import Prices
from chatcanvas.types import GeneratedImage, ImageSpec, Mode, Recipe

if TYPE_CHECKING:
    from PIL import Image

    from chatcanvas.config import Settings

log = logging.getLogger(__name__)

POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
NO_RETRY_429_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})


@dataclass(frozen=True)
class ModelRules:
    """What the Images API accepts for one model."""

    sizes: tuple[tuple[int, int], ...]
    qualities: tuple[str, ...]  # empty: the model takes no quality parameter
    default_quality: str | None
    styles: bool  # takes style=vivid|natural
    max_n: int
    response_format: bool  # takes response_format (DALL-E); gpt-image models always answer b64_json
    max_prompt: int
    img2img: bool  # edits without a mask
    inpaint: bool  # edits with a mask
    edit_sizes: tuple[tuple[int, int], ...] = ()


MODELS: dict[str, ModelRules] = {
    "dall-e-3": ModelRules(
        sizes=((1024, 1024), (1792, 1024), (1024, 1792)),
        qualities=("standard", "hd"),
        default_quality="standard",
        styles=True,
        max_n=1,
        response_format=True,
        max_prompt=4000,
        img2img=False,
        inpaint=False,
    ),
    "dall-e-2": ModelRules(
        sizes=((256, 256), (512, 512), (1024, 1024)),
        qualities=(),
        default_quality=None,
        styles=False,
        max_n=10,
        response_format=True,
        max_prompt=1000,
        img2img=False,
        inpaint=True,
        edit_sizes=((256, 256), (512, 512), (1024, 1024)),
    ),
    "gpt-image-1": ModelRules(
        sizes=((1024, 1024), (1536, 1024), (1024, 1536)),
        qualities=("low", "medium", "high", "auto"),
        default_quality="medium",
        styles=False,
        max_n=10,
        response_format=False,
        max_prompt=32000,
        img2img=True,
        inpaint=True,
        edit_sizes=((1024, 1024), (1536, 1024), (1024, 1536)),
    ),
}


def nearest_size(width: int, height: int, allowed: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """The allowed size closest in aspect ratio, then in area (both compared on a log scale)."""

    def distance(size: tuple[int, int]) -> tuple[float, float]:
        w, h = size
        return (
            round(abs(math.log((width / height) / (w / h))), 6),
            abs(math.log((width * height) / (w * h))),
        )

    return min(allowed, key=distance)


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), if present."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to our own backoff
    return max(0.0, parsed.timestamp() - time.time())


def check_quality(model: str, quality: str | None) -> str | None:
    """The quality to ask ``model`` for: the setting if the model takes it, else the model's default."""
    rules = MODELS[model]
    if quality is None or not rules.qualities:
        return rules.default_quality
    if quality not in rules.qualities:
        raise ConfigError(
            m.OPENAI_BAD_QUALITY.format(model=model, accepts=", ".join(rules.qualities), quality=quality)
        )
    return quality


def resolve_spec(spec: ImageSpec, settings: Settings) -> ImageSpec:
    """Pick the model, map the size to the nearest one it allows, refuse what it can't do."""
    model = spec.model if spec.model in MODELS else settings.openai_image_model
    rules = MODELS[model]
    if spec.mode is Mode.IMG2IMG and not rules.img2img:
        raise SpecError((m.OPENAI_NO_EDITS if not rules.inpaint else m.OPENAI_NEEDS_MASK).format(model=model))
    if spec.mode is Mode.INPAINT and not rules.inpaint:
        raise SpecError(m.OPENAI_NO_EDITS.format(model=model))
    if len(spec.prompt) > rules.max_prompt:
        raise SpecError(
            m.OPENAI_PROMPT_TOO_LONG.format(n=len(spec.prompt), model=model, limit=rules.max_prompt)
        )
    default = settings.size or (1024, 1024)
    w = spec.width or spec.height or default[0]
    h = spec.height or spec.width or default[1]
    allowed = rules.edit_sizes if spec.mode is not Mode.TEXT2IMG else rules.sizes
    w, h = nearest_size(w, h, allowed)
    return spec.model_copy(update={"model": model, "width": w, "height": h, "backend": "openai"})


def estimate_cost(spec: ImageSpec, settings: Settings, prices: Prices | None = None) -> float:
    """List price in USD of all ``spec.count`` images of ``spec`` on the openai backend."""
    spec = resolve_spec(spec, settings)
    model = spec.model or settings.openai_image_model
    prices = prices or Prices(settings.prices)
    per = prices.per_image(
        model, f"{spec.width}x{spec.height}", check_quality(model, settings.openai_quality)
    )
    return per * spec.count


# ---------------------------------------------------------------- PNG text chunks

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"iTXt", b"zTXt")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _text_chunk(key: str, value: str) -> bytes:
    try:
        return _chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        return _chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8"))


def png_insert_text(png: bytes, texts: dict[str, str]) -> bytes:
    """PNG bytes with ``texts`` as text chunks right after IHDR; every other chunk is kept byte for byte.

    Text chunks already there under the same keys are dropped (ours replace them).
    """
    if not png.startswith(_PNG_SIG):
        raise ValueError("not a PNG")
    out = [_PNG_SIG]
    pos = len(_PNG_SIG)
    keys = {k.encode("latin-1") for k in texts}
    while pos + 8 <= len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(png):
            raise ValueError("truncated PNG")
        chunk = png[pos:end]
        if kind in _TEXT_CHUNKS and png[pos + 8 : end - 4].split(b"\0", 1)[0] in keys:
            pass
        else:
            out.append(chunk)
            if kind == b"IHDR":
                out.extend(_text_chunk(k, v) for k, v in texts.items())
        pos = end
        if kind == b"IEND":
            break
    return b"".join(out)


def with_recipe(data: bytes, recipe: Recipe) -> bytes:
    """The service's image with our recipe attached. PNG: chunks inserted, image data untouched;
    another format (gpt-image output_format jpeg/webp): converted to PNG with the same pixels."""
    from chatcanvas.generation.metadata import add_recipe, recipe_to_parameters

    if data.startswith(_PNG_SIG):
        return png_insert_text(
            data,
            {
                "parameters": recipe_to_parameters(recipe),
                "chatcanvas": recipe.model_dump_json(exclude_none=True),
            },
        )
    return add_recipe(data, recipe)


# ---------------------------------------------------------------- the backend


@dataclass(frozen=True)
class _Request:
    spec: ImageSpec
    n: int


class OpenAIBackend(Backend):
    name: ClassVar[str] = "openai"
    max_batch: ClassVar[int] = 1
    # resolve() picks one of the provider's sizes (up to 1792 px): the configured size limits apply to
    # what the user asked for, before resolve, not to the provider's sizes after it.
    fixed_sizes: ClassVar[bool] = True

    def __init__(
        self,
        settings: Settings,
        *,
        image_loader: Callable[[str], bytes] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        import openai

        self.settings = settings
        self.model = settings.openai_image_model
        self.rules = MODELS[self.model]
        # Capabilities depend on the configured model; instance attributes shadow the class defaults.
        self.__dict__["supports_img2img"] = self.rules.img2img
        self.__dict__["supports_inpaint"] = self.rules.inpaint
        self.quality = check_quality(self.model, settings.openai_quality)
        self.prices = Prices(settings.prices)
        key = settings.openai_api_key
        if not key:
            if not settings.openai_base_url:
                raise ConfigError(m.OPENAI_NO_KEY)
            key = "not-needed"  # a local OpenAI-compatible server
        self.client = openai.AsyncOpenAI(
            api_key=key, base_url=settings.openai_base_url, timeout=settings.openai_timeout_s, max_retries=0
        )
        self._image_loader = image_loader
        self._sleep = sleep
        self._slots = asyncio.Semaphore(settings.openai_concurrency)

    @property
    def model_name(self) -> str:
        return self.model

    async def aclose(self) -> None:
        await self.client.close()

    def _quality_for(self, model: str) -> str | None:
        return self.quality if model == self.model else check_quality(model, self.settings.openai_quality)

    def resolve(self, spec: ImageSpec) -> ImageSpec:
        """Pick the model, map the size to the nearest one the model allows, refuse what it can't do."""
        return resolve_spec(spec, self.settings)

    def estimate(self, spec: ImageSpec) -> float:
        """List price in USD of all the images of ``spec``."""
        return estimate_cost(spec, self.settings, self.prices)

    # ------------------------------------------------------------ generate

    async def generate(
        self, specs: list[ImageSpec], on_step: StepCallback | None = None
    ) -> list[GeneratedImage]:
        resolved = [self.resolve(s) for s in specs]
        requests: list[_Request] = []
        for spec in resolved:
            max_n = MODELS[spec.model or self.model].max_n
            left = spec.count
            while left > 0:
                n = min(left, max_n)
                requests.append(_Request(spec, n))
                left -= n
        total = sum(r.n for r in requests)
        tasks = [asyncio.ensure_future(self._run(r)) for r in requests]
        done = 0
        try:
            for fut in asyncio.as_completed(tasks):
                done += len(await fut)
                if on_step is not None:
                    on_step(StepInfo(step=done, total=total))
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        out: list[GeneratedImage] = []
        for t in tasks:
            out.extend(t.result())
        return out

    async def _run(self, req: _Request) -> list[GeneratedImage]:
        async with self._slots:
            start = time.monotonic()
            spec = req.spec
            model = spec.model or self.model
            rules = MODELS[model]
            quality = self._quality_for(model)
            size = f"{spec.width}x{spec.height}"
            kwargs: dict[str, Any] = {"model": model, "prompt": spec.prompt, "n": req.n, "size": size}
            if quality and rules.qualities:
                kwargs["quality"] = quality
            if rules.response_format:
                kwargs["response_format"] = self.settings.openai_response_format
            if spec.mode is Mode.TEXT2IMG:
                style = spec.style if spec.style in ("vivid", "natural") else self.settings.openai_style
                if rules.styles and style:
                    kwargs["style"] = style
                resp = await self._call(self.client.images.generate, kwargs)
            else:
                image, mask = self._edit_inputs(spec)
                kwargs["image"] = ("image.png", image, "image/png")
                if mask is not None:
                    kwargs["mask"] = ("mask.png", mask, "image/png")
                resp = await self._call(self.client.images.edit, kwargs)
            items = list(resp.data or [])
            if not items:
                raise BackendError(m.OPENAI_BAD_IMAGE.format(detail="the answer held no images"))
            datas = await asyncio.gather(*(self._image_bytes(item) for item in items[: req.n]))
            seconds = (time.monotonic() - start) / len(datas)
            price = self.prices.per_image(model, size, quality)
            images = []
            for item, data in zip(items, datas, strict=False):
                width, height = _image_size(data)
                recipe = Recipe(
                    prompt=spec.prompt,
                    negative_prompt=spec.negative_prompt,
                    width=width,
                    height=height,
                    seed=spec.seed or 0,
                    steps=spec.steps or 0,
                    guidance=spec.guidance or 0.0,
                    sampler="openai",
                    model=model,
                    backend="openai",
                    mode=spec.mode,
                    strength=spec.strength if spec.mode is not Mode.TEXT2IMG else None,
                    init_image=spec.init_image,
                    mask_image=spec.mask_image,
                    style=spec.style,
                    revised_prompt=getattr(item, "revised_prompt", None) or None,
                    cost_usd=price,
                )
                images.append(GeneratedImage(png=with_recipe(data, recipe), recipe=recipe, seconds=seconds))
            log.info("openai %s %s x%d: %.1fs, $%.3f", model, size, len(images), seconds, price * len(images))
            return images

    # ------------------------------------------------------------ faults

    async def _call(self, fn: Callable[..., Awaitable[Any]], kwargs: dict[str, Any]) -> Any:
        """Call the API; retry 429 / 5xx / connection errors within the budget; map every fault."""
        import openai

        attempt = 0
        while True:
            wait: float | None = None
            try:
                return await fn(**kwargs)
            except openai.APITimeoutError as exc:
                raise BackendError(m.BACKEND_TIMEOUT.format(limit=self.settings.openai_timeout_s)) from exc
            except openai.APIConnectionError as exc:
                detail = "could not connect"
                cause: BaseException = exc
            except openai.APIStatusError as exc:
                status, code = exc.status_code, _error_code(exc)
                detail = _error_message(exc)
                if code in POLICY_CODES:
                    raise ContentPolicyRefusal(m.CONTENT_POLICY.format(detail=detail)) from exc
                if status in (401, 403):
                    raise BackendError(m.OPENAI_AUTH.format(detail=detail)) from exc
                if (status != 429 and status < 500) or code in NO_RETRY_429_CODES:
                    raise BackendError(m.OPENAI_REJECTED.format(detail=detail)) from exc
                detail = f"HTTP {status}: {detail}"
                wait = retry_after_seconds(exc.response.headers)
                cause = exc
            if attempt >= self.settings.openai_max_retries:
                raise BackendError(m.BACKEND_UNAVAILABLE.format(detail=detail)) from cause
            if wait is None:
                wait = self.settings.openai_backoff_s * 2**attempt * random.uniform(0.75, 1.25)
            if wait > self.settings.openai_max_retry_wait_s:
                raise BackendError(
                    m.BACKEND_UNAVAILABLE.format(detail=f"{detail}; asked to wait {wait:.0f} s")
                ) from cause
            attempt += 1
            log.warning("openai: %s; retry %d in %.2f s", detail, attempt, wait)
            await self._sleep(wait)

    # ------------------------------------------------------------ images in and out

    async def _image_bytes(self, item: Any) -> bytes:
        b64 = getattr(item, "b64_json", None)
        if b64:
            try:
                data = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise BackendError(m.OPENAI_BAD_IMAGE.format(detail="bad base64")) from exc
        elif getattr(item, "url", None):
            data = await self._download(str(item.url))
        else:
            raise BackendError(m.OPENAI_BAD_IMAGE.format(detail="neither b64_json nor url"))
        _image_size(data)  # decodes the header: refuses what isn't an image
        return data

    async def _download(self, url: str) -> bytes:
        import httpx

        if not url.startswith(("https://", "http://")):
            raise BackendError(m.OPENAI_DOWNLOAD_FAILED.format(detail="not an http(s) URL"))
        cap = self.settings.openai_max_download_bytes
        attempt = 0
        while True:
            try:
                async with (
                    httpx.AsyncClient(
                        timeout=self.settings.openai_timeout_s, follow_redirects=True
                    ) as client,
                    client.stream("GET", url) as resp,
                ):
                    if resp.status_code >= 500 or resp.status_code == 429:
                        raise _Transient(f"HTTP {resp.status_code}")
                    if resp.status_code != 200:
                        raise BackendError(m.OPENAI_DOWNLOAD_FAILED.format(detail=f"HTTP {resp.status_code}"))
                    if int(resp.headers.get("content-length") or 0) > cap:
                        raise BackendError(m.OPENAI_DOWNLOAD_TOO_BIG.format(limit=cap))
                    buf = bytearray()
                    async for chunk in resp.aiter_bytes():
                        buf += chunk
                        if len(buf) > cap:
                            raise BackendError(m.OPENAI_DOWNLOAD_TOO_BIG.format(limit=cap))
                    return bytes(buf)
            except httpx.TimeoutException as exc:
                raise BackendError(m.BACKEND_TIMEOUT.format(limit=self.settings.openai_timeout_s)) from exc
            except (httpx.TransportError, _Transient) as exc:
                if attempt >= self.settings.openai_max_retries:
                    raise BackendError(
                        m.OPENAI_DOWNLOAD_FAILED.format(detail=str(exc) or type(exc).__name__)
                    ) from exc
            attempt += 1
            await self._sleep(self.settings.openai_backoff_s * 2 ** (attempt - 1))

    def _load(self, ref: str) -> bytes:
        if self._image_loader is not None:
            return self._image_loader(ref)
        from chatcanvas.store.db import read_image_ref

        return read_image_ref(self.settings.images_dir, ref)

    def _edit_inputs(self, spec: ImageSpec) -> tuple[bytes, bytes | None]:
        """The init image (and mask) as PNGs of the resolved size, the mask in OpenAI's convention.

        Our masks follow the diffusers convention (white = repaint, black = keep); OpenAI wants the
        area to repaint fully transparent. A mask that already has transparency is taken as is.
        """
        from PIL import Image, ImageOps

        from chatcanvas.images import load_upload

        assert spec.init_image is not None and spec.width and spec.height
        size = (spec.width, spec.height)
        image = ImageOps.fit(load_upload(self._load(spec.init_image), self.settings, mode="RGBA"), size)
        mask_png: bytes | None = None
        if spec.mask_image:
            raw = self._load(spec.mask_image)
            mask = load_upload(raw, self.settings, mode="RGBA")
            alpha = mask.getchannel("A")
            if alpha.getextrema()[0] == 255:  # opaque: a black/white mask
                alpha = ImageOps.invert(mask.convert("L")).point(lambda v: 0 if v < 128 else 255)
            alpha = ImageOps.fit(alpha, size)
            out = Image.new("RGBA", size, (0, 0, 0, 255))
            out.putalpha(alpha)
            mask_png = _png(out)
        return _png(image), mask_png


class _Transient(Exception):
    pass


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _image_size(data: bytes) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return int(im.size[0]), int(im.size[1])
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise BackendError(m.OPENAI_BAD_IMAGE.format(detail=type(exc).__name__)) from exc


def _error_code(exc: Any) -> str | None:
    code = getattr(exc, "code", None)
    body = getattr(exc, "body", None)
    if not code and isinstance(body, dict):
        inner = body.get("error", body)
        code = inner.get("code") if isinstance(inner, dict) else None
    return str(code) if code else None


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    msg: Any = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        msg = inner.get("message") if isinstance(inner, dict) else None
    text = str(msg or getattr(exc, "message", "") or type(exc).__name__).strip()
    code = _error_code(exc)
    if code and code not in text:
        text = f"{text} ({code})"
    return text[:500]


__all__ = [
    "MODELS",
    "ModelRules",
    "OpenAIBackend",
    "check_quality",
    "estimate_cost",
    "nearest_size",
    "png_insert_text",
    "resolve_spec",
    "retry_after_seconds",
]
