"""OpenAI moderation (``omni-moderation-latest`` on ``/v1/moderations``) through the official SDK.

On with ``CHATCANVAS_MODERATION=openai``, or by default when ``OPENAI_API_KEY`` is set
(``OPENAI_BASE_URL`` is honoured, so any server speaking the same API works). A flagged request is
refused naming its categories ("flagged by moderation: violence"). When the endpoint fails (after the
SDK's ``CHATCANVAS_MODERATION_MAX_RETRIES`` retries), ``CHATCANVAS_MODERATION_ON_ERROR`` decides:
``refuse`` (the default) answers "moderation unavailable", ``allow`` lets the request through and logs.

Use one :class:`Moderator` per process (it holds an HTTP client)::

    moderator = Moderator(settings)
    verdict = await moderator.check(text, images=[png_bytes])
    if not verdict.allowed:
        refuse(verdict.reason, rule=verdict.rule)
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from chatcanvas import messages as m

if TYPE_CHECKING:
    from chatcanvas.config import Settings

__all__ = ["ModerationVerdict", "Moderator", "flagged_categories"]

log = logging.getLogger(__name__)

RULE_FLAGGED = "moderation"
RULE_UNAVAILABLE = "moderation_unavailable"


class ModerationVerdict(BaseModel):
    """What moderation said about one request."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    flagged: bool = False
    categories: tuple[str, ...] = ()  # e.g. ("violence", "harassment/threatening")
    checked: bool = True  # False: moderation is off, or it failed and the error policy allowed
    error: str | None = None  # why the endpoint failed (secrets scrubbed), for logs

    @property
    def rule(self) -> str | None:
        """The rule name for ``Refused.rule`` and the audit log: ``moderation:violence,...`` or
        ``moderation_unavailable``; ``None`` when allowed."""
        if self.allowed:
            return None
        if self.flagged:
            return f"{RULE_FLAGGED}:{','.join(self.categories)}" if self.categories else RULE_FLAGGED
        return RULE_UNAVAILABLE

    @property
    def reason(self) -> str | None:
        """The refusal for the user (names the categories), or ``None`` when allowed."""
        if self.allowed:
            return None
        if self.flagged:
            return m.MODERATION_FLAGGED.format(categories=", ".join(self.categories) or "flagged")
        return m.MODERATION_UNAVAILABLE


def flagged_categories(result: Any) -> tuple[str, ...]:
    """The category names (``sexual/minors`` style, as the API spells them) set in one result."""
    cats = getattr(result, "categories", None)
    if cats is None:
        return ()
    data = cats.model_dump(by_alias=True) if hasattr(cats, "model_dump") else dict(cats)
    return tuple(sorted(name for name, on in data.items() if on is True))


def _inputs(text: str, images: Sequence[bytes]) -> str | list[dict[str, Any]]:
    if not images:
        return text
    from chatcanvas.images import MIME_TYPES, sniff_format

    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for data in images:
        mime = MIME_TYPES.get(sniff_format(data) or "PNG", "image/png")
        url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


class Moderator:
    """Checks text (and optionally images) against the moderation endpoint."""

    def __init__(self, settings: Settings, *, client: Any = None) -> None:
        self.settings = settings
        self._client = client

    @property
    def enabled(self) -> bool:
        return self.settings.moderation_enabled

    def _get_client(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(
                api_key=self.settings.openai_api_key or "not-needed",  # a local compatible server
                base_url=self.settings.openai_base_url,
                timeout=self.settings.moderation_timeout_s,
                max_retries=self.settings.moderation_max_retries,
            )
        return self._client

    async def check(self, text: str, images: Sequence[bytes] = ()) -> ModerationVerdict:
        """Moderate ``text`` (and ``images``, PNG / JPEG / WebP bytes). Never raises for the endpoint."""
        if not self.enabled or (not text.strip() and not images):
            return ModerationVerdict(allowed=True, checked=False)
        try:
            import openai
        except ImportError as exc:  # the openai extra is not installed
            return self._unavailable(exc)
        try:
            resp = await self._get_client().moderations.create(
                model=self.settings.moderation_model, input=_inputs(text, images)
            )
            results = list(resp.results)
            if not results:
                raise ValueError("the answer held no results")
        except (openai.OpenAIError, ValueError, TypeError, AttributeError) as exc:
            return self._unavailable(exc)
        categories = tuple(sorted({c for r in results for c in flagged_categories(r)}))
        flagged = any(bool(getattr(r, "flagged", False)) for r in results) or bool(categories)
        return ModerationVerdict(allowed=not flagged, flagged=flagged, categories=categories)

    def _unavailable(self, exc: Exception) -> ModerationVerdict:
        from chatcanvas.safety.redact import scrub

        detail = scrub(f"{type(exc).__name__}: {exc}", self.settings)
        allow = self.settings.moderation_on_error == "allow"
        log.warning("moderation unavailable (%s); %s", detail, "allowing" if allow else "refusing")
        return ModerationVerdict(allowed=allow, checked=False, error=detail)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
