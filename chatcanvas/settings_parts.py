"""Settings by part: typed views of one platform's or one backend's settings.

The environment stays flat (``CHATCANVAS_DISCORD_COOLDOWN_S``, ``SLACK_BOT_TOKEN``...), read once by
:class:`chatcanvas.config.Settings`; each part here is a frozen model with ``extra="forbid"`` built
from the fields of its prefix, so a part's code sees only its own options, by their short names.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = ["DiscordSettings", "LocalOptions", "OpenAIOptions", "SlackSettings", "WebSettings", "part_of"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebSettings(_Part):
    host: str
    port: int
    backends: list[str]
    api_keys: list[str]
    api_key_quota_per_day: int


class SlackSettings(_Part):
    bot_token: str | None
    signing_secret: str | None
    app_token: str | None
    api_url: str
    port: int
    host: str
    channels: list[str]
    allow_dms: bool
    command: str
    progress_interval_s: float
    backends: list[str]
    admins: list[str] = []


class DiscordSettings(_Part):
    token: str | None
    guilds: list[str]
    channels: list[str]
    allow_dms: bool
    nsfw_only: bool
    cooldown_s: float
    message_content: bool
    backends: list[str]


class LocalOptions(_Part):
    """The diffusers backend's options (``CHATCANVAS_*`` without a prefix of their own)."""

    model: str | None
    device: Literal["auto", "cpu", "cuda", "mps"]
    dtype: Literal["auto", "float32", "float16", "bfloat16"]
    default_steps: int | None
    default_size: str | None
    default_guidance: float | None
    attention_slicing: bool
    vae_tiling: bool
    cpu_offload: bool


class OpenAIOptions(_Part):
    """The OpenAI image backend's options (``CHATCANVAS_OPENAI_*`` and ``OPENAI_*``)."""

    api_key: str | None
    base_url: str | None
    image_model: str
    timeout_s: float
    max_retries: int
    quality: str | None
    style: str | None
    response_format: str
    concurrency: int
    max_download_bytes: int


P = TypeVar("P", bound=_Part)


def part_of(settings: BaseModel, model: type[P], prefix: str, **names: str) -> P:
    """``model`` filled from the fields ``prefix + name`` (or ``names[name]`` where a field is named
    otherwise) of ``settings`` (:class:`chatcanvas.config.Settings`, which imports this module); a
    field the settings lack keeps the model's default."""
    data: dict[str, Any] = {}
    for name in model.model_fields:
        field = names.get(name, prefix + name)
        if hasattr(settings, field):
            data[name] = getattr(settings, field)
    return model(**data)
