"""``chatcanvas doctor``: is this installation ready to run? One line per check, ✓ or ✗ and how to fix it.

Checks, in order: the configuration (every setting, all problems at once), the data folder (writable,
free space, the store opens), the model (loads and draws one 1-step image; for the local backend),
then each platform: Slack, Discord, OpenAI — the shape of the token and, with the network, a live
call (``auth.test``, ``users/@me``, ``models``). A platform that is not configured, or a live call
without network (or with ``--offline``), is skipped with a note. Exit 0 when every required check
passed, 1 otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlparse

from chatcanvas import messages as m

if TYPE_CHECKING:
    from chatcanvas.config import Settings

__all__ = ["Check", "DISCORD_API", "format_check", "run_checks", "run_doctor"]

DISCORD_API = "https://discord.com/api/v10"
OPENAI_API = "https://api.openai.com/v1"
MIN_FREE_MB = 200
LIVE_TIMEOUT_S = 10.0
_DISCORD_TOKEN = re.compile(r"^[A-Za-z\d_\-]{20,}\.[A-Za-z\d_\-]{4,}\.[A-Za-z\d_\-]{20,}$")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str
    fix: str = ""
    required: bool = True


def format_check(c: Check) -> str:
    if c.ok is None:
        return m.DOCTOR_LINE_SKIP.format(name=c.name, detail=c.detail)
    if c.ok:
        return m.DOCTOR_LINE_OK.format(name=c.name, detail=c.detail)
    line = m.DOCTOR_LINE_FAIL.format(name=c.name, detail=c.detail)
    return line + ("\n" + m.DOCTOR_LINE_FIX.format(fix=c.fix) if c.fix else "")


class _NoNetwork(Exception):
    pass


def _host(url: str) -> str:
    return urlparse(url).hostname or url


# ---------------------------------------------------------------- checks


def check_config() -> tuple[Check, Settings | None]:
    from chatcanvas.config import load_settings, setting_problems

    problems = setting_problems()
    if problems:
        var, line = problems[0]
        more = "; ".join(p for _, p in problems[1:])
        detail = line + (f" Also: {more}" if more else "")
        return Check("configuration", False, detail, m.DOCTOR_CONFIG_FIX.format(var=var)), None
    settings = load_settings()
    model = "the demo model" if settings.using_demo_model else settings.model_ref
    return Check("configuration", True, m.DOCTOR_CONFIG_OK.format(backend=settings.backend, model=model)), settings


def check_data_dir(settings: Settings) -> Check:
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".doctor-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return Check("data folder", False, m.DOCTOR_DATA_UNWRITABLE.format(path=path, detail=exc.strerror or exc),
                     m.DOCTOR_DATA_FIX)
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_MB * 1024 * 1024:
        return Check("data folder", False, m.DOCTOR_DATA_LOW.format(path=path, free_mb=free / 2**20, need_mb=MIN_FREE_MB),
                     m.DOCTOR_DATA_FIX)
    from chatcanvas.store import Store

    try:
        store = Store(path)
        try:
            applied = len(store.execute("SELECT name FROM _migrations"))
            store.execute("PRAGMA quick_check")
        finally:
            store.close()
    except Exception as exc:  # sqlite3 errors, a broken file
        return Check("data folder", False, m.DOCTOR_STORE_BROKEN.format(path=path, detail=exc), m.DOCTOR_DATA_FIX)
    return Check("data folder", True, m.DOCTOR_DATA_OK.format(path=path, free=free / 2**30, migrations=applied))


async def check_model(settings: Settings) -> Check:
    from chatcanvas.errors import ChatcanvasError
    from chatcanvas.generation.registry import load_backend
    from chatcanvas.types import ImageSpec

    name = settings.backend
    if name == "openai":
        return Check("model", None, m.DOCTOR_MODEL_REMOTE.format(backend=name), required=False)
    try:
        backend = load_backend(name, settings)
        if name != "local":
            return Check("model", True, m.DOCTOR_MODEL_OTHER.format(backend=name, model=backend.model_name))
        t0 = time.perf_counter()
        spec = backend.resolve(ImageSpec(prompt="a white ceramic mug, studio light", steps=1, seed=1, backend=name))
        spec = spec.model_copy(update={"steps": 1})
        images = await backend.generate([spec])
        seconds = time.perf_counter() - t0
        device = getattr(backend, "device", lambda: "?")()
        await backend.aclose()
    except ChatcanvasError as exc:
        return Check("model", False, str(exc), m.DOCTOR_MODEL_FIX)
    if not images or not images[0].png.startswith(b"\x89PNG"):
        return Check("model", False, "no image came back", m.DOCTOR_MODEL_FIX)
    return Check(
        "model",
        True,
        m.DOCTOR_MODEL_OK.format(model=backend.model_name, device=device, w=spec.width, h=spec.height, seconds=seconds),
    )


async def _live(call: Callable[[], object]) -> object:
    """Run a live call; connection problems become _NoNetwork (a skip, not a failure)."""
    import httpx

    try:
        result = call()
        if hasattr(result, "__await__"):
            result = await result  # type: ignore[misc]
        return result
    except (httpx.TransportError, OSError) as exc:
        raise _NoNetwork(str(exc) or type(exc).__name__) from None
    except Exception as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OSError) or type(exc).__name__ in ("ClientConnectorError", "ServerDisconnectedError"):
            raise _NoNetwork(str(exc) or type(exc).__name__) from None
        raise


async def check_slack(settings: Settings, live: bool) -> Check:
    token = settings.slack_bot_token
    if not token:
        return Check("Slack", None, m.DOCTOR_NOT_CONFIGURED.format(var="SLACK_BOT_TOKEN"), required=False)
    if not token.startswith("xoxb-"):
        return Check("Slack", False, m.DOCTOR_SLACK_SHAPE, m.DOCTOR_SLACK_SHAPE_FIX)
    if settings.slack_app_token and not settings.slack_app_token.startswith("xapp-"):
        return Check("Slack", False, m.DOCTOR_SLACK_APP_SHAPE, m.DOCTOR_SLACK_NO_SECRET)
    if not settings.slack_app_token and not settings.slack_signing_secret:
        return Check("Slack", False, m.DOCTOR_SLACK_NO_SECRET, m.DOCTOR_SLACK_NO_SECRET)
    if not live:
        return Check("Slack", None, m.DOCTOR_SLACK_SHAPE_OK + "; " + m.DOCTOR_OFFLINE, required=False)
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

    client = AsyncWebClient(token=token, base_url=settings.slack_api_url, timeout=int(LIVE_TIMEOUT_S))
    try:
        resp: dict[str, object] = await _live(client.auth_test)  # type: ignore[assignment]
    except _NoNetwork as exc:
        return Check("Slack", None, m.DOCTOR_NO_NETWORK.format(host=_host(settings.slack_api_url), detail=exc),
                     required=False)
    except SlackApiError as exc:
        return Check("Slack", False, m.DOCTOR_SLACK_REFUSED.format(error=exc.response.get("error")), m.DOCTOR_SLACK_FIX)
    return Check("Slack", True, m.DOCTOR_SLACK_OK.format(team=resp.get("team"), user=resp.get("user")))


async def check_discord(settings: Settings, live: bool, api: str = DISCORD_API) -> Check:
    token = settings.discord_token
    if not token:
        return Check("Discord", None, m.DOCTOR_NOT_CONFIGURED.format(var="DISCORD_TOKEN"), required=False)
    if not _DISCORD_TOKEN.match(token):
        return Check("Discord", False, m.DOCTOR_DISCORD_SHAPE, m.DOCTOR_DISCORD_FIX)
    if not live:
        return Check("Discord", None, m.DOCTOR_DISCORD_SHAPE_OK + "; " + m.DOCTOR_OFFLINE, required=False)
    import httpx

    async with httpx.AsyncClient(timeout=LIVE_TIMEOUT_S) as client:
        try:
            resp: httpx.Response = await _live(  # type: ignore[assignment]
                lambda: client.get(f"{api}/users/@me", headers={"Authorization": f"Bot {token}"})
            )
        except _NoNetwork as exc:
            return Check("Discord", None, m.DOCTOR_NO_NETWORK.format(host=_host(api), detail=exc), required=False)
    if resp.status_code != 200:
        return Check("Discord", False, m.DOCTOR_DISCORD_REFUSED.format(status=resp.status_code), m.DOCTOR_DISCORD_FIX)
    me = resp.json()
    return Check("Discord", True, m.DOCTOR_DISCORD_OK.format(name=me.get("username"), id=me.get("id")))


async def check_openai(settings: Settings, live: bool) -> Check:
    key = settings.openai_api_key
    needed = settings.backend == "openai"
    if not key:
        if needed:
            return Check("OpenAI", False, m.DOCTOR_OPENAI_MISSING, m.DOCTOR_OPENAI_FIX)
        return Check("OpenAI", None, m.DOCTOR_NOT_CONFIGURED.format(var="OPENAI_API_KEY"), required=False)
    base = (settings.openai_base_url or OPENAI_API).rstrip("/")
    if not settings.openai_base_url and not key.startswith("sk-"):
        return Check("OpenAI", False, m.DOCTOR_OPENAI_SHAPE, m.DOCTOR_OPENAI_FIX)
    if not live:
        return Check("OpenAI", None, m.DOCTOR_OPENAI_SHAPE_OK + "; " + m.DOCTOR_OFFLINE, required=False)
    import httpx

    async with httpx.AsyncClient(timeout=LIVE_TIMEOUT_S) as client:
        try:
            resp: httpx.Response = await _live(  # type: ignore[assignment]
                lambda: client.get(f"{base}/models", headers={"Authorization": f"Bearer {key}"})
            )
        except _NoNetwork as exc:
            return Check("OpenAI", None, m.DOCTOR_NO_NETWORK.format(host=_host(base), detail=exc), required=False)
    if resp.status_code != 200:
        return Check("OpenAI", False, m.DOCTOR_OPENAI_REFUSED.format(status=resp.status_code), m.DOCTOR_OPENAI_FIX)
    ids = {str(x.get("id")) for x in (resp.json().get("data") or []) if isinstance(x, dict)}
    extra = ""
    if needed:
        model = settings.openai_image_model
        if model not in ids:
            return Check("OpenAI", False, m.DOCTOR_OPENAI_MODEL_MISSING.format(model=model, base=base),
                         "set CHATCANVAS_OPENAI_IMAGE_MODEL to a model this key may use")
        extra = m.DOCTOR_OPENAI_MODEL_LISTED.format(model=model)
    return Check("OpenAI", True, m.DOCTOR_OPENAI_OK.format(n=len(ids), base=base, extra=extra))


# ---------------------------------------------------------------- all of them


async def run_checks(
    *, live: bool = True, model: bool = True, discord_api: str = DISCORD_API, emit: Callable[[Check], None] | None = None
) -> list[Check]:
    """Every check, in order; ``emit`` is told each one as it finishes."""
    out: list[Check] = []

    def add(c: Check) -> None:
        out.append(c)
        if emit is not None:
            emit(c)

    config, settings = check_config()
    add(config)
    if settings is None:
        for name in ("data folder", "model", "Slack", "Discord", "OpenAI"):
            add(Check(name, None, m.DOCTOR_NEEDS_CONFIG, required=False))
        return out
    from chatcanvas import provenance

    provenance.configure(settings)  # the test image is written as every image is
    data = check_data_dir(settings)
    add(data)
    if not model:
        add(Check("model", None, m.DOCTOR_MODEL_SKIPPED, required=False))
    elif data.ok:
        add(await check_model(settings))
    else:
        add(Check("model", None, m.DOCTOR_NEEDS_DATA, required=False))
    add(await check_slack(settings, live))
    add(await check_discord(settings, live, discord_api))
    add(await check_openai(settings, live))
    return out


async def run_doctor(out: TextIO, *, live: bool = True, model: bool = True) -> int:
    def emit(c: Check) -> None:
        print(format_check(c), file=out, flush=True)

    checks = await run_checks(live=live, model=model, emit=emit)
    failed = [c for c in checks if c.required and c.ok is False]
    print(m.DOCTOR_SOME_FAILED.format(n=len(failed)) if failed else m.DOCTOR_ALL_OK, file=out)
    return 1 if failed else 0
