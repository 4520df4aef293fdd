"""Settings: the only reader of the environment (and of ``.env``).

Standard names where an ecosystem has them (``OPENAI_API_KEY``, ``DISCORD_TOKEN``, ``SLACK_*``),
``CHATCANVAS_*`` for our own. ``.env.example`` documents every one.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chatcanvas import messages as m
from chatcanvas.errors import ConfigError
from chatcanvas.types import Limits

if TYPE_CHECKING:
    from chatcanvas.settings_parts import (
        DiscordSettings,
        LocalOptions,
        OpenAIOptions,
        SlackSettings,
        WebSettings,
    )

DEMO_MODEL_DIR = Path(__file__).parent / "generation" / "demo" / "model"
MIN_API_KEY_CHARS = 16  # CHATCANVAS_API_KEYS: each at least this long (`openssl rand -hex 16` makes one)


def _default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("chatcanvas"))


def registered_backends() -> list[str]:
    """Backend names from the ``chatcanvas.backends`` entry point group (the built-ins register there too)."""
    from importlib.metadata import entry_points

    return sorted({"local", "openai"} | {ep.name for ep in entry_points(group="chatcanvas.backends")})


def _csv(v: object) -> object:
    if isinstance(v, str):
        return [s.strip() for s in v.split(",") if s.strip()]
    return v


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHATCANVAS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # ---- models and backends
    model: str | None = Field(None, description="diffusers folder, .safetensors file or hub id; unset: demo")
    backend: str = "local"  # any name registered under the chatcanvas.backends entry point group
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    default_steps: int | None = Field(None, ge=1, le=150)
    default_size: str | None = None  # "WxH" or "N"; unset: the model's native size
    default_guidance: float | None = Field(None, ge=0, le=30)
    data_dir: Path = Field(default_factory=_default_data_dir)
    # LoRA, upscaling (generation/lora.py, generation/upscale.py)
    lora_dir: Path | None = None  # LoRA files, activated by <lora:name:weight> in a prompt
    upscaler: Path | None = None  # an ESRGAN-family .pth/.safetensors (loaded with spandrel); unset: Lanczos
    upscale_denoise: float = Field(0.2, ge=0, le=0.6)  # image-to-image pass after enlarging; 0: none
    # samplers, single-file checkpoints, memory (generation/samplers.py, generation/model_loading.py)
    default_sampler: str | None = None  # an A1111 sampler name, e.g. "Euler a"; unset: the model's own
    default_schedule: str | None = None  # Karras, Exponential, SGM Uniform; unset: the sampler's spacing
    single_file_config: str | None = None  # diffusers folder (or LDM .yaml) of a single file's family
    attention_slicing: bool = False  # less memory, a little slower
    vae_tiling: bool = False  # decode large images tile by tile
    cpu_offload: bool = False  # keep models in RAM, move each to the GPU while it runs (accelerate)
    # speed (generation/acceleration.py, generation/previews.py)
    compile: bool = False  # torch.compile the UNet and the VAE decoder, warmed up at start per aspect preset
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = "default"
    fuse_qkv: bool = True  # fused attention projections on CUDA (not with LoRA files, which need them apart)
    torch_threads: int | None = Field(None, ge=1, le=256)  # CPU threads per worker; unset: cores / workers
    preview_vae: str | None = None  # an AutoencoderTiny folder or hub id (e.g. madebyollin/taesd) for previews
    preview_interval_s: float = Field(1.5, ge=0)  # at most one progress preview this often
    progress_interval_s: float = Field(0.1, ge=0)  # at most one progress event per job this often

    # ---- limits
    max_side: int = Field(1024, ge=8, le=4096)
    max_pixels: int = Field(1024 * 1024, ge=64)
    max_count: int = Field(4, ge=1, le=64)
    max_steps: int = Field(50, ge=1, le=500)
    max_prompt_chars: int = Field(1000, ge=10, le=4000)
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_upload_pixels: int = Field(4096 * 4096, ge=64 * 64)
    max_upscale_pixels: int = Field(4096 * 4096, ge=64 * 64)  # an upscaled image's output size

    # ---- job engine
    workers: int = Field(1, ge=1, le=16)
    batch_size: int = Field(4, ge=1, le=64)
    batch_wait_ms: int = Field(20, ge=0, le=5000)
    max_queue: int = Field(200, ge=1)
    max_queued_per_user: int = Field(20, ge=1)
    max_queued_per_server: int = Field(100, ge=1)
    rate_per_minute: float = Field(30.0, gt=0)
    rate_burst: int = Field(20, ge=1)
    server_rate_per_minute: float = Field(120.0, gt=0)
    server_rate_burst: int = Field(60, ge=1)
    max_attempts: int = Field(3, ge=1, le=20)
    job_timeout_s: float = Field(600.0, gt=0)
    drain_timeout_s: float = Field(30.0, ge=0)

    # ---- LLM agent (any OpenAI-compatible endpoint)
    openai_api_key: str | None = Field(None, validation_alias=AliasChoices("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=AliasChoices("OPENAI_BASE_URL"))
    llm_model: str | None = None  # unset: the offline rule-based rewriter
    llm_timeout_s: float = Field(60.0, gt=0)
    llm_max_retries: int = Field(2, ge=0, le=10)

    # ---- OpenAI images
    openai_image_model: Literal["dall-e-3", "gpt-image-1", "dall-e-2"] = "dall-e-3"
    openai_timeout_s: float = Field(120.0, gt=0)
    openai_max_retries: int = Field(3, ge=0, le=10)
    openai_quality: str | None = None  # dall-e-3: standard|hd; gpt-image-1: low|medium|high|auto
    openai_style: Literal["vivid", "natural"] | None = None  # dall-e-3 only
    openai_response_format: Literal["b64_json", "url"] = "b64_json"  # DALL-E; gpt-image is always b64
    openai_concurrency: int = Field(4, ge=1, le=32)
    openai_max_download_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    prices: dict[str, dict[str, dict[str, float]]] | None = None  # JSON; overrides the list prices
    edit_prices: dict[str, dict[str, dict[str, float]]] | None = None  # JSON; the same for images.edit
    spend_limit_user_daily: float | None = Field(None, ge=0)
    spend_limit_user_monthly: float | None = Field(None, ge=0)
    spend_limit_server_daily: float | None = Field(None, ge=0)
    spend_limit_server_monthly: float | None = Field(None, ge=0)

    # ---- Ray Serve image workers (CHATCANVAS_BACKEND=ray; `chatcanvas workers`)
    ray_address: str | None = None  # the cluster; unset: the backend uses "auto", `workers` starts a local one
    ray_app: str = Field("chatcanvas", min_length=1, max_length=60)  # the Serve application's name
    ray_max_batch: int = Field(4, ge=1, le=64)  # requests a replica runs together (compatible ones in one call)
    ray_batch_wait_s: float = Field(0.02, ge=0, le=10)  # how long a replica waits to fill a batch
    ray_min_replicas: int = Field(1, ge=0, le=1000)  # autoscaling bounds (equal: that many, fixed)
    ray_max_replicas: int = Field(1, ge=1, le=1000)
    ray_gpus_per_replica: float = Field(0.0, ge=0, le=16)  # 0: CPU replicas
    ray_down_wait_s: float = Field(300.0, ge=0)  # how long a job waits for workers that are down

    # ---- who may use what (the policy)
    web_backends: Annotated[list[str], NoDecode] = Field(default_factory=list)  # unset: the default only
    discord_backends: Annotated[list[str], NoDecode] = Field(default_factory=list)
    slack_backends: Annotated[list[str], NoDecode] = Field(default_factory=list)
    models: Annotated[list[str], NoDecode] = Field(default_factory=list)  # models chat/web users may pick
    openai_default_user_daily_usd: float = Field(2.0, ge=0)  # applies when chat users reach openai uncapped

    # ---- web
    web_host: str = "127.0.0.1"
    web_port: int = Field(8000, ge=0, le=65535)
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    api_key_quota_per_day: int = Field(500, ge=1)

    # ---- Slack
    slack_bot_token: str | None = Field(None, validation_alias=AliasChoices("SLACK_BOT_TOKEN"))
    slack_signing_secret: str | None = Field(None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET"))
    slack_app_token: str | None = Field(None, validation_alias=AliasChoices("SLACK_APP_TOKEN"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL"))
    slack_port: int = Field(3000, ge=0, le=65535)
    slack_channels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    slack_host: str = "0.0.0.0"  # HTTP mode listen address (Slack must reach it, usually via a proxy)
    slack_allow_dms: bool = True  # direct messages are allowed even with a channel allow-list
    slack_command: str = "/imagine"
    slack_progress_interval_s: float = Field(1.2, ge=0, le=60)  # min seconds between chat.update calls

    # ---- Discord
    discord_token: str | None = Field(None, validation_alias=AliasChoices("DISCORD_TOKEN"))
    discord_guilds: Annotated[list[str], NoDecode] = Field(default_factory=list)
    discord_channels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    discord_allow_dms: bool = True
    discord_nsfw_only: bool = False
    discord_cooldown_s: float = Field(0.0, ge=0)
    discord_message_content: bool = False  # privileged intent: read thread replies without a mention

    # ---- safety (chatcanvas/safety/)
    blocked_terms: str | None = None  # comma list or @/path/file (one a line); "re:" prefix: a regex
    sfw_terms: bool = True  # the shipped list of explicit terms (lifted only where NSFW is allowed)
    allow_nsfw_channels: bool = False  # Discord channels marked NSFW skip the shipped list
    moderation: Literal["openai", "off"] | None = None  # unset: openai when OPENAI_API_KEY is set
    moderation_model: str = "omni-moderation-latest"
    moderation_on_error: Literal["refuse", "allow"] = "refuse"
    moderation_timeout_s: float = Field(10.0, gt=0)
    moderation_max_retries: int = Field(2, ge=0, le=10)
    audit_text: bool = False  # keep the refused text in the audit log
    image_url_ttl_s: int = Field(3600, ge=1)  # lifetime of a signed image URL

    # ---- provenance (chatcanvas/provenance/): C2PA Content Credentials and the invisible watermark
    provenance: bool = True  # off: images carry neither (nothing then says a model made them)
    watermark: bool = True  # off: Content Credentials only, no watermark in the pixels
    c2pa_cert: str | None = None  # PEM chain (file or text); unset: a self-issued one in the data dir
    c2pa_key: str | None = Field(None, validate_default=True)  # its ES256 private key (file or text)
    c2pa_trust_anchors: str | None = None  # PEM root certificates verify trusts (file or text)

    # ---- operations: health, metrics, logs, admin commands (chatcanvas/ops/, chatcanvas/bot/admin.py)
    metrics_port: int | None = Field(None, ge=1, le=65535)  # /metrics, /healthz, /readyz on their own port
    metrics_host: str = "127.0.0.1"  # where that port listens (keep it internal: it asks for no key)
    log_format: Literal["json", "text"] | None = None  # unset: text in a terminal, JSON lines otherwise
    slack_admins: Annotated[list[str], NoDecode] = Field(default_factory=list)  # user ids, besides workspace admins
    gpu_seconds_limit_user_daily: float | None = Field(None, ge=0)  # backend seconds per chat/web user per UTC day

    _csv_fields = field_validator(
        "api_keys",
        "slack_channels",
        "discord_guilds",
        "discord_channels",
        "web_backends",
        "discord_backends",
        "slack_backends",
        "models",
        mode="before",
    )(_csv)

    _csv_ops = field_validator("slack_admins", mode="before")(_csv)

    @field_validator("backend")
    @classmethod
    def _registered_backend(cls, v: str) -> str:
        names = registered_backends()
        if v not in names:
            raise ValueError(f"unknown backend {v!r}; registered: {', '.join(names)}")
        return v

    @field_validator("api_keys")
    @classmethod
    def _long_keys(cls, v: list[str]) -> list[str]:
        short = [k for k in v if len(k) < MIN_API_KEY_CHARS]
        if short:  # a short key is guessed by trying, and too short to be redacted from logs reliably
            raise ValueError(m.API_KEY_TOO_SHORT.format(n=len(short), min=MIN_API_KEY_CHARS))
        return v

    @field_validator("c2pa_key")
    @classmethod
    def _cert_and_key(cls, v: str | None, info: ValidationInfo) -> str | None:
        if bool(v) != bool(info.data.get("c2pa_cert")):
            raise ValueError(m.C2PA_NEEDS_BOTH)
        return v or None

    @field_validator("default_sampler")
    @classmethod
    def _sampler(cls, v: str | None) -> str | None:
        from chatcanvas.generation.samplers import canonical

        return canonical(v, None)[0] if v else None

    @field_validator("default_schedule")
    @classmethod
    def _schedule(cls, v: str | None) -> str | None:
        from chatcanvas.generation.samplers import canonical

        return canonical(None, v)[1] if v else None

    @field_validator("default_size")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if not re.fullmatch(r"\d+(x\d+)?", v):
            raise ValueError("expected WxH like 512x512, or one number")
        w, _, h = v.partition("x")
        for n in (int(w), int(h or w)):
            if n % 8 or not 8 <= n <= 4096:
                raise ValueError("sides must be multiples of 8 between 8 and 4096")
        return v

    # ------------------------------------------------------------ derived

    @property
    def size(self) -> tuple[int, int] | None:
        if not self.default_size:
            return None
        w, _, h = self.default_size.partition("x")
        return int(w), int(h or w)

    @cached_property
    def limits(self) -> Limits:
        return Limits(
            max_side=self.max_side,
            max_pixels=self.max_pixels,
            max_count=self.max_count,
            max_steps=self.max_steps,
            max_prompt_chars=self.max_prompt_chars,
        )

    # ------------------------------------------------------------ by part (chatcanvas/settings_parts.py)

    @property
    def web(self) -> WebSettings:
        from chatcanvas.settings_parts import WebSettings, part_of

        return part_of(self, WebSettings, "web_", api_keys="api_keys", api_key_quota_per_day="api_key_quota_per_day")

    @property
    def slack(self) -> SlackSettings:
        from chatcanvas.settings_parts import SlackSettings, part_of

        return part_of(self, SlackSettings, "slack_")

    @property
    def discord(self) -> DiscordSettings:
        from chatcanvas.settings_parts import DiscordSettings, part_of

        return part_of(self, DiscordSettings, "discord_")

    @property
    def local_options(self) -> LocalOptions:
        from chatcanvas.settings_parts import LocalOptions, part_of

        return part_of(self, LocalOptions, "")

    @property
    def openai_options(self) -> OpenAIOptions:
        from chatcanvas.settings_parts import OpenAIOptions, part_of

        return part_of(self, OpenAIOptions, "openai_")

    @property
    def model_ref(self) -> str:
        return self.model or str(DEMO_MODEL_DIR)

    @property
    def using_demo_model(self) -> bool:
        return not self.model

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_model)

    @property
    def moderation_enabled(self) -> bool:
        """OpenAI moderation runs: ``CHATCANVAS_MODERATION=openai``, or unset with an API key."""
        if self.moderation is None:
            return bool(self.openai_api_key)
        return self.moderation == "openai"


def env_name(field: str) -> str:
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"CHATCANVAS_{field.upper()}"


def _accepts(field: str) -> str:
    info = Settings.model_fields.get(field)
    if info is None:
        return ""
    ann = str(info.annotation)
    if "Literal" in ann:
        return "Accepts one of: " + ", ".join(re.findall(r"'([^']+)'", ann)) + "."
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    bounds = [f"{words[k]} {getattr(mt, k)}" for mt in info.metadata for k in words if hasattr(mt, k)]
    kind = "a whole number" if "int" in ann else "a number" if "float" in ann else "a value"
    if field == "default_size":
        return "Accepts WxH like 512x512 (multiples of 8)."
    if bounds:
        return f"Accepts {kind} {' and '.join(bounds)}."
    if "bool" in ann:
        return "Accepts true or false."
    return ""


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation error into one :class:`ConfigError` line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        var = env_name(field) if field in Settings.model_fields else field
        raise ConfigError(
            m.BAD_SETTING.format(var=var, problem=err["msg"], accepts=_accepts(field)).strip()
        ) from None


def setting_problems(**overrides: object) -> list[tuple[str, str]]:
    """Every bad setting at once (``chatcanvas doctor``): (variable, one line naming it and what it accepts)."""
    try:
        Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            var = env_name(field) if field in Settings.model_fields else field
            out.append((var, m.BAD_SETTING.format(var=var, problem=err["msg"], accepts=_accepts(field)).strip()))
        return out
    return []
