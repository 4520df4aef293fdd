"""The OpenAI image backend: DALL-E 3, DALL-E 2 and gpt-image-1 through the official ``openai`` SDK.

``images.generate`` for text-to-image, ``images.edit`` (with a mask) for edits and product
variations; what each model accepts is in :mod:`~chatcanvas.generation.openai_models`, what it
costs in :mod:`~chatcanvas.generation.pricing`.

Retries are the SDK's own (``max_retries`` = ``CHATCANVAS_OPENAI_MAX_RETRIES``): 429, 5xx and lost
connections, honouring ``Retry-After`` / ``retry-after-ms``, else backing off. Two answers it would
retry are final here: a timeout (the image may have been made and billed: asking again pays twice)
and a 429 that says the account is out of quota (waiting does not help).

A model that takes fewer images per call than asked (dall-e-3: ``n=1``) gets several calls at once.
When some of them fail, the images the others made are returned (they are paid for, so their cost
is recorded); only when none succeeds is the failure raised.

Every image ends as PNG bytes: ``b64_json`` is decoded, a URL is fetched (timeout, size cap,
retried with ``tenacity``: that download is ours, not the SDK's). The recipe is added to the PNG as
text chunks without touching the image data the service returned.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import logging
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from chatcanvas import messages as m
from chatcanvas.errors import BackendError, ConfigError, ContentPolicyRefusal
from chatcanvas.generation.base import Backend, StepCallback, StepInfo
from chatcanvas.generation.openai_models import (
    MODELS,
    check_quality,
    request_params,
    resolve_spec,
    split_count,
)
from chatcanvas.generation.pricing import Prices
from chatcanvas.types import GeneratedImage, ImageSpec, Mode, Recipe

if TYPE_CHECKING:
    import httpx
    import openai
    from PIL import Image

    from chatcanvas.config import Settings

__all__ = ["OpenAIBackend", "with_recipe"]

log = logging.getLogger(__name__)

POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
OUT_OF_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
RETRIED_STATUSES = frozenset({408, 409, 429})  # and 5xx: what the SDK retries
SDK_LONGEST_RETRY_AFTER_S = 120  # the SDK gives up at once when Retry-After asks for longer

# Backoff of our own retries (the URL download), the same as the SDK's.
_FIRST_WAIT_S, _LONGEST_WAIT_S = 0.5, 8.0


# ---------------------------------------------------------------- PNG text chunks

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


def with_recipe(data: bytes, recipe: Recipe) -> bytes:
    """The service's image as a PNG with our recipe, watermark and Content Credentials; the image as
    the service sent it (with OpenAI's own manifest, when it has one) is the manifest's parent."""
    from chatcanvas.generation.metadata import add_recipe

    return add_recipe(data, recipe)


# ---------------------------------------------------------------- the backend


@dataclass(frozen=True)
class _Call:
    """One API call: ``n`` images of a resolved spec, at ``price`` each."""

    spec: ImageSpec
    n: int
    price: float


class OpenAIBackend(Backend):
    name: ClassVar[str] = "openai"
    max_batch: ClassVar[int] = 1
    # resolve() picks one of the provider's sizes (up to 1792 px): the configured size limits apply to
    # what the user asked for, before resolve, not to the provider's sizes after it.
    fixed_sizes: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        import openai

        self.settings = settings
        self.model = settings.openai_image_model
        rules = MODELS[self.model]
        # Capabilities depend on the configured model; instance attributes shadow the class defaults.
        self.__dict__["supports_img2img"] = rules.img2img
        self.__dict__["supports_inpaint"] = rules.inpaint
        check_quality(self.model, settings.openai_quality)  # a bad setting fails here, not per request
        self.prices = Prices.from_settings(settings)
        key = settings.openai_api_key
        if not key:
            if not settings.openai_base_url:
                raise ConfigError(m.OPENAI_NO_KEY)
            key = "not-needed"  # a local OpenAI-compatible server
        self.client = openai.AsyncOpenAI(
            api_key=key,
            base_url=settings.openai_base_url,
            timeout=settings.openai_timeout_s,
            max_retries=settings.openai_max_retries,
            http_client=_http_client(),
        )
        self._slots = asyncio.Semaphore(settings.openai_concurrency)

    @property
    def model_name(self) -> str:
        return self.model

    async def aclose(self) -> None:
        await self.client.close()

    def resolve(self, spec: ImageSpec) -> ImageSpec:
        """Pick the model, map the size to the nearest one the model allows, refuse what it can't do."""
        return resolve_spec(spec, self.settings)

    # ------------------------------------------------------------ generate

    async def generate(
        self, specs: list[ImageSpec], on_step: StepCallback | None = None
    ) -> list[GeneratedImage]:
        calls: list[_Call] = []
        for spec in map(self.resolve, specs):
            model = spec.model or self.model
            price = self.prices.for_spec(spec, check_quality(model, self.settings.openai_quality))
            calls.extend(_Call(spec, n, price) for n in split_count(spec.count, MODELS[model].max_n))
        total = sum(c.n for c in calls)
        tasks = [asyncio.ensure_future(self._images(c)) for c in calls]
        made = 0
        try:
            for fut in asyncio.as_completed(tasks):
                try:
                    made += len(await fut)
                except Exception:  # kept in its task; the other calls go on
                    continue
                if on_step is not None:
                    on_step(StepInfo(step=made, total=total))
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        images = [img for t in tasks if t.exception() is None for img in t.result()]
        errors = [exc for t in tasks if (exc := t.exception()) is not None]
        if errors and not (images and len(specs) == 1):
            raise errors[0]
        if errors:  # the images made are paid for: returned (and so recorded), the rest reported
            log.warning("openai: %d of %d images made; %d calls failed: %s", made, total, len(errors), errors[0])
        return images

    async def _images(self, call: _Call) -> list[GeneratedImage]:
        async with self._slots:
            start = time.monotonic()
            spec = call.spec
            params = request_params(spec, call.n, self.settings)
            if spec.mode is Mode.TEXT2IMG:
                resp = await _request(self.client.images.generate, params, self.settings.openai_timeout_s)
            else:
                image, mask = self._edit_inputs(spec)
                params["image"] = ("image.png", image, "image/png")
                if mask is not None:
                    params["mask"] = ("mask.png", mask, "image/png")
                resp = await _request(self.client.images.edit, params, self.settings.openai_timeout_s)
            items = list(resp.data or [])[: call.n]
            if not items:
                raise BackendError(m.OPENAI_BAD_IMAGE.format(detail="the answer held no images"))
            datas = await asyncio.gather(*(self._image_bytes(item) for item in items))
            seconds = (time.monotonic() - start) / len(datas)
            images = []
            for item, data in zip(items, datas, strict=True):
                recipe = _recipe(spec, data, getattr(item, "revised_prompt", None) or None, call.price)
                images.append(GeneratedImage(png=with_recipe(data, recipe), recipe=recipe, seconds=seconds))
            log.info(
                "openai %s %s x%d: %.1fs, $%.3f",
                spec.model,
                params["size"],
                len(images),
                seconds,
                call.price * len(images),
            )
            return images

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
        """The image at ``url``: 429 / 5xx / connection errors retried like the SDK retries its calls."""
        import httpx
        import tenacity

        if not url.startswith(("https://", "http://")):
            raise BackendError(m.OPENAI_DOWNLOAD_FAILED.format(detail="not an http(s) URL"))
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.settings.openai_max_retries + 1),
            wait=tenacity.wait_exponential_jitter(initial=_FIRST_WAIT_S, max=_LONGEST_WAIT_S),
            retry=tenacity.retry_if_exception_type((httpx.TransportError, _Transient))
            & tenacity.retry_if_not_exception_type(httpx.TimeoutException),
            before_sleep=tenacity.before_sleep_log(log, logging.WARNING),
            reraise=True,
        )
        try:
            data: bytes = await retrying(self._fetch, url)
            return data
        except httpx.TimeoutException as exc:
            raise BackendError(m.BACKEND_TIMEOUT.format(limit=self.settings.openai_timeout_s)) from exc
        except (httpx.TransportError, _Transient) as exc:
            raise BackendError(m.OPENAI_DOWNLOAD_FAILED.format(detail=str(exc) or type(exc).__name__)) from exc

    async def _fetch(self, url: str) -> bytes:
        import httpx

        cap = self.settings.openai_max_download_bytes
        async with (
            httpx.AsyncClient(timeout=self.settings.openai_timeout_s, follow_redirects=True) as client,
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

    def _edit_inputs(self, spec: ImageSpec) -> tuple[bytes, bytes | None]:
        """The init image (and mask) as PNGs of the resolved size, the mask in OpenAI's convention.

        Our masks follow the diffusers convention (white = repaint, black = keep); OpenAI wants the
        area to repaint fully transparent. A mask that already has transparency is taken as is.
        """
        from PIL import Image, ImageOps

        from chatcanvas.images import load_upload
        from chatcanvas.store.db import read_image_ref

        assert spec.init_image is not None and spec.width and spec.height
        size = (spec.width, spec.height)
        raw = read_image_ref(self.settings.images_dir, spec.init_image)
        image = ImageOps.fit(load_upload(raw, self.settings, mode="RGBA"), size)
        mask_png: bytes | None = None
        if spec.mask_image:
            raw = read_image_ref(self.settings.images_dir, spec.mask_image)
            mask = load_upload(raw, self.settings, mode="RGBA")
            alpha = mask.getchannel("A")
            if alpha.getextrema()[0] == 255:  # opaque: a black/white mask
                alpha = ImageOps.invert(mask.convert("L")).point(lambda v: 0 if v < 128 else 255)
            alpha = ImageOps.fit(alpha, size)
            out = Image.new("RGBA", size, (0, 0, 0, 255))
            out.putalpha(alpha)
            mask_png = _png(out)
        return _png(image), mask_png


# ---------------------------------------------------------------- the SDK's client and its faults


def _http_client() -> httpx.AsyncClient:
    """The SDK's default httpx client, with the two answers it would retry that are final here."""
    import httpx
    import openai

    class TimeoutsAreFinal(httpx.AsyncHTTPTransport):
        # The SDK passes an OpenAIError raised while sending through without retrying it.
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            try:
                return await super().handle_async_request(request)
            except httpx.TimeoutException as exc:
                raise openai.APITimeoutError(request=request) from exc

    async def out_of_quota_is_final(response: httpx.Response) -> None:
        if response.status_code == 429:
            await response.aread()
            if _error_code(_json(response.content)) in OUT_OF_QUOTA_CODES:
                response.headers["x-should-retry"] = "false"  # the SDK's own signal

    return openai.DefaultAsyncHttpxClient(
        transport=TimeoutsAreFinal(), event_hooks={"response": [out_of_quota_is_final]}
    )


async def _request(fn: Callable[..., Awaitable[Any]], params: dict[str, Any], timeout_s: float) -> Any:
    """Call the API (the SDK retries what is worth retrying); map every fault to a clear error."""
    import openai

    try:
        return await fn(**params)
    except openai.OpenAIError as exc:
        raise _fault(exc, timeout_s) from exc


def _fault(exc: openai.OpenAIError, timeout_s: float) -> BackendError:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return BackendError(m.BACKEND_TIMEOUT.format(limit=timeout_s))
    if isinstance(exc, openai.APIConnectionError):
        return BackendError(m.BACKEND_UNAVAILABLE.format(detail="could not connect"))
    if not isinstance(exc, openai.APIStatusError):
        return BackendError(m.BACKEND_UNAVAILABLE.format(detail=type(exc).__name__))
    status, code, detail = exc.status_code, _error_code(exc.body), _error_message(exc)
    if code in POLICY_CODES:
        return ContentPolicyRefusal(m.CONTENT_POLICY.format(detail=detail))
    if status in (401, 403):
        return BackendError(m.OPENAI_AUTH.format(detail=detail))
    if code in OUT_OF_QUOTA_CODES or (status < 500 and status not in RETRIED_STATUSES):
        return BackendError(m.OPENAI_REJECTED.format(detail=detail))
    detail = f"HTTP {status}: {detail}"
    wait = exc.response.headers.get("retry-after") or ""
    if wait.isdigit() and int(wait) > SDK_LONGEST_RETRY_AFTER_S:  # not retried: say why
        detail += f"; asked to wait {wait} s"
    return BackendError(m.BACKEND_UNAVAILABLE.format(detail=detail))


class _Transient(Exception):
    pass


def _recipe(spec: ImageSpec, data: bytes, revised_prompt: str | None, price: float) -> Recipe:
    width, height = _image_size(data)
    return Recipe(
        prompt=spec.prompt,
        negative_prompt=spec.negative_prompt,
        width=width,
        height=height,
        seed=spec.seed or 0,
        steps=spec.steps or 0,
        guidance=spec.guidance or 0.0,
        sampler="openai",
        model=spec.model or "",
        backend="openai",
        mode=spec.mode,
        strength=spec.strength if spec.mode is not Mode.TEXT2IMG else None,
        init_image=spec.init_image,
        mask_image=spec.mask_image,
        style=spec.style,
        revised_prompt=revised_prompt,
        cost_usd=price,
    )


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


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _error_code(body: Any) -> str | None:
    """``error.code`` of an API error body (or of the body itself, as some compatible servers send it)."""
    inner = body.get("error", body) if isinstance(body, dict) else None
    code = inner.get("code") if isinstance(inner, dict) else None
    return str(code) if code else None


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    inner = body.get("error", body) if isinstance(body, dict) else None
    msg = inner.get("message") if isinstance(inner, dict) else None
    text = str(msg or exc.message or type(exc).__name__).strip()
    code = _error_code(body)
    if code and code not in text:
        text = f"{text} ({code})"
    return text[:500]
