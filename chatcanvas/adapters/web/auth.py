"""API keys (bearer tokens): who is calling. Their daily image quotas are a rule of the policy."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from fastapi import Request

from chatcanvas import messages as m
from chatcanvas.adapters.web.problems import Problem
from chatcanvas.config import Settings
from chatcanvas.store import Store
from chatcanvas.types import UserRef

PLATFORM = "web"
SESSION_COOKIE = "chatcanvas_session"  # set by POST /v1/session: a signed key id, never the key
USER_HEADER = "x-chatcanvas-user"  # optional: the end user behind an API key (a shop's customer id)
_SAFE = re.compile(r"[^A-Za-z0-9_.:@-]")


def key_id(key: str) -> str:
    """A short, stable, non-secret id for an API key."""
    return "k" + hashlib.sha256(key.encode()).hexdigest()[:11]


@dataclass(frozen=True)
class Caller:
    who: UserRef
    key_id: str | None  # None when the server runs without keys


def _clean(value: str) -> str:
    return _SAFE.sub("_", value.strip())[:64]


class ApiKeys:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.keys = [k for k in settings.api_keys if k]
        self.quota = settings.api_key_quota_per_day
        self.store = store

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def caller(self, request: Request) -> Caller:
        """Who is calling; raises 401 without a valid key when keys are configured."""
        header_user = _clean(request.headers.get(USER_HEADER, ""))
        if not self.enabled:
            client = header_user or _clean(request.client.host if request.client else "") or "local"
            return Caller(UserRef(platform=PLATFORM, user=client, server="local"), None)
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if not auth:  # EventSource and <img> cannot send headers: the page's session cookie
            kid = self.session_key_id(request.cookies.get(SESSION_COOKIE, ""))
            if kid is not None:
                return Caller(UserRef(platform=PLATFORM, user=header_user or kid, server=kid), kid)
        if scheme.lower() != "bearer" or not token:
            raise Problem(401, m.API_KEY_MISSING, headers={"WWW-Authenticate": "Bearer"})
        for key in self.keys:
            if hmac.compare_digest(key.encode(), token.encode()):
                kid = key_id(key)
                return Caller(UserRef(platform=PLATFORM, user=header_user or kid, server=kid), kid)
        raise Problem(401, m.API_KEY_INVALID, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    # ------------------------------------------------------------ sessions

    def session_cookie(self, kid: str) -> tuple[str, int]:
        """A cookie value naming the key id, signed with the data folder's secret; and its lifetime."""
        from chatcanvas.safety.signing import signature

        ttl = self.settings.image_url_ttl_s * 24
        exp = int(time.time()) + ttl
        return f"{kid}.{exp}.{signature('session:' + kid, exp, self.settings)}", ttl

    def session_key_id(self, value: str) -> str | None:
        from chatcanvas.safety.signing import verify_image_signature

        kid, _, rest = value.partition(".")
        exp, _, sig = rest.partition(".")
        known = {key_id(k) for k in self.keys}
        if kid in known and verify_image_signature("session:" + kid, exp, sig, self.settings):
            return kid
        return None

    # ------------------------------------------------------------ quota

    @staticmethod
    def _today() -> tuple[str, float]:
        now = dt.datetime.now(dt.UTC)
        midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return now.date().isoformat(), (midnight - now).total_seconds()

    def used(self, kid: str) -> int:
        """Images this key has had admitted today (the policy counts them; ``api_key_quota``)."""
        day, _ = self._today()
        rows = self.store.execute("SELECT images FROM web_api_usage WHERE key_id = ? AND day = ?", (kid, day))
        return int(rows[0][0]) if rows else 0
