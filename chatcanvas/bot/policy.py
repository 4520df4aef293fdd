"""One admission pipeline for every request, from every adapter and every tool call.

A request (the prepared specs of one chat turn, slash command, button, API call or tool call) is
admitted whole or refused whole by the first rule that says no. Each rule has a name; a refusal is
a :class:`chatcanvas.errors.Refusal` carrying that name and, when known, when to try again. The
engine only schedules, batches and persists what the policy let in.

:meth:`Policy.precheck` runs the rules about *who* and *where* (no specs needed, no side effects),
so an adapter can refuse before it acknowledges (ephemeral where the platform allows). A request
then passes :meth:`Policy.screen` (who, where, what: place, cooldown, backends, models, image refs,
blocked terms and the safe-for-work list, moderation) and,
once its specs are resolved, :meth:`Policy.admit` (how much: queue caps, rates, spending, API-key
quotas), which takes what passing costs (rate tokens, a cooldown, an API key's images for the day).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from chatcanvas import messages as m
from chatcanvas.bot.controls import PAID_BACKENDS, Controls
from chatcanvas.errors import Busy, ChatcanvasError, QuotaExceeded, Refusal
from chatcanvas.generation.queue import QueueCounts, TokenBucket
from chatcanvas.types import ImageSpec, Place, UserRef

if TYPE_CHECKING:
    from chatcanvas.config import Settings
    from chatcanvas.safety.moderation import Moderator
    from chatcanvas.store import Store

__all__ = ["Ask", "Policy", "QueueCounts", "QueueStats"]


class QueueStats(Protocol):
    def queue_counts(self, who: UserRef) -> QueueCounts: ...


@dataclass(frozen=True)
class Ask:
    """One request to admit: who, where, and the specs it would queue (backend and model filled)."""

    who: UserRef
    where: Place
    specs: Sequence[ImageSpec] = ()
    texts: Sequence[str] = ()  # what the user wrote and every prompt sent on, for the content rules

    @property
    def images(self) -> int:
        return sum(s.count for s in self.specs)


Check = Callable[[Ask], None]


@dataclass
class Policy:
    settings: Settings
    store: Store
    queue: QueueStats
    clock: Callable[[], float] = time.monotonic
    spend_check: Callable[[UserRef, float], None] | None = None  # set when spending is tracked
    estimate: Callable[[ImageSpec], float] | None = None
    extra: list[tuple[str, Check]] = field(default_factory=list)  # more rules, e.g. content policy
    default_model: Callable[[str], str] | None = None  # the model a backend runs when none is named
    moderator: Moderator | None = None  # OpenAI moderation, when enabled
    _user_buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _server_buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _last_ask: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------ entry points

    def precheck(self, who: UserRef, where: Place) -> Refusal | None:
        """The who/where rules only, without side effects: the refusal, or None."""
        try:
            self._banned(who)
            self._place(who, where)
            self._cooldown(who, take=False)
        except Refusal as exc:
            return exc
        return None

    async def screen(self, ask: Ask) -> None:
        """The rules about who, where and what (before the specs are resolved); no side effects."""
        self._banned(ask.who)
        self._place(ask.who, ask.where)
        self._cooldown(ask.who, take=False)
        for spec in ask.specs:
            self._paused(spec)
            self._backend(ask.who, spec)
            self._model(ask.who, spec)
            self._image_refs(ask.who, ask.where, spec)
            self._loras(spec)
        self._blocked_terms(ask)
        for _name, check in self.extra:
            check(ask)
        await self._moderation(ask)

    def admit(self, ask: Ask) -> None:
        """The rules about how much, on the resolved specs; on success, takes what passing costs.

        :meth:`screen` has passed for the same request. Raises the first :class:`Refusal`.
        """
        self._queue(ask)
        ub, sb = self._rate(ask.who)
        self._spending(ask)
        self._gpu_seconds(ask)
        self._api_key_quota(ask, take=False)
        for _ in ask.specs:
            ub.take()
            if sb is not None:
                sb.take()
        self._cooldown(ask.who, take=True)
        self._api_key_quota(ask, take=True)

    # ------------------------------------------------------------ rules

    def _banned(self, who: UserRef) -> None:
        """An operator banned this user here or everywhere (``/chatcanvas-admin ban``, ``chatcanvas admin ban``)."""
        if Controls(self.store).banned(who) is not None:
            raise Refusal(m.OPS_YOU_ARE_BANNED, rule="banned")

    def _paused(self, spec: ImageSpec) -> None:
        """An operator paused this backend (e.g. to stop OpenAI spend at once)."""
        name = spec.backend or self.settings.backend
        if Controls(self.store).is_paused(name):
            raise Refusal(m.OPS_BACKEND_PAUSED.format(backend=name), rule="paused")

    def _gpu_seconds(self, ask: Ask) -> None:
        """Chat and web users' daily backend time on unpaid backends (``CHATCANVAS_GPU_SECONDS_LIMIT_USER_DAILY``)."""
        limit = self.settings.gpu_seconds_limit_user_daily
        if limit is None or ask.who.platform not in ("web", "discord", "slack"):
            return
        if all((s.backend or self.settings.backend) in PAID_BACKENDS for s in ask.specs):
            return
        from chatcanvas.generation.spending import period_bounds

        now = time.time()
        start, end = period_bounds(now, "daily")
        used = Controls(self.store).gpu_seconds(ask.who, start)
        if used >= limit:
            raise QuotaExceeded(
                m.OPS_GPU_SECONDS_LIMIT.format(used=used, limit=limit), retry_after=end - now, rule="gpu_seconds"
            )

    def _place(self, who: UserRef, where: Place) -> None:
        if where.platform == "discord":
            d = self.settings.discord
            if where.dm:
                if not d.allow_dms:
                    raise Refusal(m.DISCORD_NO_DMS, rule="place")
                return
            if d.guilds and who.server not in d.guilds:
                raise Refusal(m.DISCORD_NOT_HERE_GUILD, rule="place")
            if d.channels and not {where.channel, where.thread} & set(d.channels):
                channels = ", ".join(f"<#{c}>" for c in d.channels)
                raise Refusal(m.DISCORD_NOT_HERE_CHANNEL.format(channels=channels), rule="place")
            if d.nsfw_only and not where.nsfw:
                raise Refusal(m.DISCORD_NSFW_ONLY, rule="place")
        elif where.platform == "slack":
            sl = self.settings.slack
            if where.dm:
                if not sl.allow_dms:
                    raise Refusal(m.SLACK_DMS_NOT_ALLOWED, rule="place")
                return
            if sl.channels and where.channel not in sl.channels:
                raise Refusal(m.SLACK_CHANNEL_NOT_ALLOWED, rule="place")

    def _cooldown(self, who: UserRef, *, take: bool) -> None:
        cd = self.settings.discord.cooldown_s if who.platform == "discord" else 0.0
        if cd <= 0:
            return
        now = self.clock()
        last = self._last_ask.get(who.key)
        if not take:
            left = 0.0 if last is None else last + cd - now
            if left > 0:
                raise Refusal(m.DISCORD_COOLDOWN.format(wait=max(1.0, left)), retry_after=left, rule="cooldown")
            return
        self._last_ask[who.key] = now

    def allowed_backends(self, who: UserRef) -> list[str]:
        s = self.settings
        listed = {"web": s.web.backends, "discord": s.discord.backends, "slack": s.slack.backends}
        if who.platform not in listed:  # the terminal and the CLI: the operator's own machine
            return []
        if who.admin:
            return []  # every configured backend
        return listed[who.platform] or [s.backend]

    def _backend(self, who: UserRef, spec: ImageSpec) -> None:
        name = spec.backend or self.settings.backend
        allowed = self.allowed_backends(who)
        if allowed and name not in allowed and not _internal_backend(name, spec):
            raise Refusal(
                m.BACKEND_NOT_ALLOWED.format(backend=name, allowed=", ".join(allowed)), rule="backend"
            )

    def _model(self, who: UserRef, spec: ImageSpec) -> None:
        if spec.model is None or who.platform not in ("web", "discord", "slack"):
            return
        if self.default_model is not None and spec.model == self.default_model(spec.backend or self.settings.backend):
            return  # a recipe's own model (a reroll, a button): the one configured anyway
        allowed = self.settings.models
        if not allowed:
            raise Refusal(m.MODEL_NOT_ALLOWED_NONE, rule="model")
        if spec.model not in allowed:
            raise Refusal(m.MODEL_NOT_ALLOWED.format(model=spec.model, allowed=", ".join(allowed)), rule="model")

    def _image_refs(self, who: UserRef, where: Place, spec: ImageSpec) -> None:
        """Images come from the store, never from a path: ids of uploads or results the caller may see."""
        from chatcanvas.store.db import is_image_id

        for name in ("init_image", "mask_image"):
            ref = getattr(spec, name)
            if ref is None:
                continue
            if not is_image_id(ref):
                raise Refusal(m.IMAGE_REF_NOT_AN_ID.format(field=name, ref=str(ref)[:60]), rule="image_ref")
            if not self.store.image_visible_to(ref, who, where):
                raise Refusal(m.NOT_YOUR_IMAGE.format(ref=ref), rule="image_ref")

    def _loras(self, spec: ImageSpec) -> None:
        """``<lora:name:weight>`` tags name files in CHATCANVAS_LORA_DIR; a missing one is refused by name."""
        if "<lora:" not in spec.prompt.lower() or (spec.backend or self.settings.backend) not in ("local", "ray"):
            return
        from chatcanvas.generation.lora import check_loras

        try:
            check_loras(spec.prompt, self.settings)
        except ChatcanvasError as exc:
            raise Refusal(str(exc), rule="lora") from None

    def _blocked_terms(self, ask: Ask) -> None:
        """The configured blocked terms and the shipped safe-for-work list, on what the user wrote and on
        every prompt sent on (the LLM's too). The refusal names the rule, never the list."""
        from chatcanvas.safety.terms import check_text

        s = self.settings
        nsfw_ok = s.allow_nsfw_channels and ask.where.platform == "discord" and ask.where.nsfw
        for text in ask.texts:
            hit = check_text(text, s, nsfw_allowed=nsfw_ok)
            if hit is not None:
                raise Refusal(hit.reason, rule=hit.name)

    async def _moderation(self, ask: Ask) -> None:
        if self.moderator is None or not self.moderator.enabled:
            return
        verdict = await self.moderator.check("\n".join(dict.fromkeys(ask.texts)))
        if not verdict.allowed:
            raise Refusal(verdict.reason or "", rule=verdict.rule or "moderation")

    def _queue(self, ask: Ask) -> None:
        s = self.settings
        c = self.queue.queue_counts(ask.who)
        n = len(ask.specs)
        if c.total + n > s.max_queue:
            raise Busy(m.QUEUE_FULL.format(n=c.total), retry_after=60)
        if c.user + n > s.max_queued_per_user:
            raise QuotaExceeded(
                m.USER_QUEUE_FULL.format(n=c.user, limit=s.max_queued_per_user), rule="user_queue"
            )
        if ask.who.server and c.server + n > s.max_queued_per_server:
            raise QuotaExceeded(
                m.SERVER_QUEUE_FULL.format(n=c.server, limit=s.max_queued_per_server),
                retry_after=30,
                rule="server_queue",
            )

    def _rate(self, who: UserRef) -> tuple[TokenBucket, TokenBucket | None]:
        s = self.settings
        ub = self._user_buckets.setdefault(who.key, TokenBucket(s.rate_per_minute, s.rate_burst))
        wait = ub.wait_time()
        if wait > 0:
            raise QuotaExceeded(
                m.RATE_LIMITED.format(rate=s.rate_per_minute, wait=wait), retry_after=wait, rule="user_rate"
            )
        sb = None
        if who.server:
            skey = f"{who.platform}:{who.server}"
            sb = self._server_buckets.setdefault(
                skey, TokenBucket(s.server_rate_per_minute, s.server_rate_burst)
            )
            wait = sb.wait_time()
            if wait > 0:
                rate = s.server_rate_per_minute
                raise QuotaExceeded(
                    m.SERVER_RATE_LIMITED.format(rate=rate, wait=wait), retry_after=wait, rule="server_rate"
                )
        return ub, sb

    def _spending(self, ask: Ask) -> None:
        if self.spend_check is None or self.estimate is None:
            return
        paid = [s for s in ask.specs if (s.backend or self.settings.backend) == "openai"]
        if not paid:
            return
        try:
            self.spend_check(ask.who, sum(self.estimate(s) for s in paid))
        except QuotaExceeded as exc:
            raise QuotaExceeded(str(exc), retry_after=exc.retry_after, rule="spending") from None

    def _api_key_quota(self, ask: Ask, *, take: bool) -> None:
        """Web callers with an API key: images per key per UTC day (``CHATCANVAS_API_KEY_QUOTA_PER_DAY``)."""
        s = self.settings
        if ask.who.platform != "web" or not s.api_keys or not ask.who.server or ask.images <= 0:
            return
        now = dt.datetime.now(dt.UTC)
        day = now.date().isoformat()
        midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        with self.store.lock:
            rows = self.store.db.execute(
                "SELECT images FROM web_api_usage WHERE key_id = ? AND day = ?", (ask.who.server, day)
            ).fetchall()
            used = int(rows[0][0]) if rows else 0
            if not take:
                if used + ask.images > s.api_key_quota_per_day:
                    raise QuotaExceeded(
                        m.API_KEY_QUOTA.format(limit=s.api_key_quota_per_day),
                        retry_after=(midnight - now).total_seconds(),
                        rule="api_key_quota",
                    )
                return
            self.store.db.execute(
                "INSERT INTO web_api_usage (key_id, day, images) VALUES (?, ?, ?) "
                "ON CONFLICT (key_id, day) DO UPDATE SET images = images + excluded.images",
                (ask.who.server, day, ask.images),
            )

    def api_key_images_today(self, key: str) -> int:
        day = dt.datetime.now(dt.UTC).date().isoformat()
        rows = self.store.execute("SELECT images FROM web_api_usage WHERE key_id = ? AND day = ?", (key, day))
        return int(rows[0][0]) if rows else 0


def _internal_backend(name: str, spec: ImageSpec) -> bool:
    """Product colourways run where the variations path sends them (the deterministic recolour, or the
    local pipeline for a material), whatever the platform may pick."""
    return spec.colourway is not None and name in ("colourway", "local")
