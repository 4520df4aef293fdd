"""The operator's commands, once: queue, cancel, pause / resume a backend, ban / unban, usage.

Three entrances call this facade: Discord's ``/chatcanvas-admin`` group, Slack's ``/imagine admin``
and ``chatcanvas admin`` on the command line. Each checks that its caller is an admin there (Manage
Server, a workspace admin, the machine's own user) and passes the caller as ``actor``; the answers
are plain text (messages.py) every entrance shows as it is.

What a chat admin sees and touches is their own server: its queue, its jobs, its users' bans and
usage. The command line (``actor.platform == "cli"``) sees everything and bans everywhere. A pause
holds a backend for every server (it is the operator's money or machine): nothing new is admitted
for it and its queued jobs wait until it is resumed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from chatcanvas import messages as m
from chatcanvas.bot.controls import Controls
from chatcanvas.bot.usage_report import format_usage, usage_rows
from chatcanvas.generation.jobs import JobRecord, JobStatus, JobTable
from chatcanvas.types import UserRef

if TYPE_CHECKING:
    from chatcanvas.config import Settings
    from chatcanvas.generation.engine import Engine
    from chatcanvas.store import Store

__all__ = ["Admin", "QueueEntry", "parse_user_key"]

OPERATOR_PLATFORMS = frozenset({"cli", "terminal"})  # the machine's own user: every server
PROMPT_CHARS = 60


class QueueEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_id: str
    status: JobStatus
    backend: str
    platform: str
    user: str
    server: str
    prompt: str
    waited_s: float  # since it was asked


def parse_user_key(text: str) -> UserRef:
    """``platform:user`` (everywhere) or ``platform:server:user`` (UserRef.key) for the command line."""
    parts = text.strip().split(":")
    if len(parts) == 2 and all(parts):
        return UserRef(platform=parts[0], user=parts[1])
    if len(parts) == 3 and parts[0] and parts[2]:
        return UserRef(platform=parts[0], server=parts[1], user=parts[2])
    raise ValueError(m.OPS_BAD_USER_KEY.format(text=text))


class Admin:
    def __init__(self, store: Store, settings: Settings, engine: Engine | None = None) -> None:
        self.store = store
        self.settings = settings
        self.engine = engine  # None in another process (the command line): the store only
        self.controls = Controls(store)
        self.table = engine.table if engine is not None else JobTable(store)

    @staticmethod
    def scope(actor: UserRef) -> str | None:
        """The server an actor administers; None: every server (the machine's own user)."""
        return None if actor.platform in OPERATOR_PLATFORMS else actor.server

    def _visible(self, rec: JobRecord, actor: UserRef) -> bool:
        scope = self.scope(actor)
        return scope is None or (rec.who.platform == actor.platform and rec.who.server == scope)

    # ------------------------------------------------------------ queue

    def queue(self, actor: UserRef) -> list[QueueEntry]:
        """What is running and waiting (in the actor's server), running first, then oldest first."""
        now = time.time()
        recs = self.table.query("status IN ('queued', 'running')", (), limit=500)
        recs = [r for r in recs if self._visible(r, actor)]
        recs.sort(key=lambda r: (r.status != JobStatus.RUNNING, r.created))
        return [
            QueueEntry(
                job_id=r.id,
                status=r.status,
                backend=r.spec.backend or self.settings.backend,
                platform=r.who.platform,
                user=r.who.user,
                server=r.who.server,
                prompt=r.spec.prompt,
                waited_s=max(0.0, now - r.created),
            )
            for r in recs
        ]

    def queue_text(self, actor: UserRef, limit: int = 20) -> str:
        entries = self.queue(actor)
        paused = sorted(self.controls.paused())
        lines = []
        if paused:
            lines.append(m.OPS_PAUSED_LINE.format(backends=", ".join(paused)))
        if not entries:
            lines.append(m.OPS_QUEUE_EMPTY)
            return "\n".join(lines)
        running = sum(1 for e in entries if e.status == JobStatus.RUNNING)
        lines.append(m.OPS_QUEUE_HEAD.format(running=running, waiting=len(entries) - running))
        for e in entries[:limit]:
            prompt = e.prompt if len(e.prompt) <= PROMPT_CHARS else e.prompt[: PROMPT_CHARS - 1] + "…"
            lines.append(
                f"{e.job_id}  {e.status.value:<7}  {e.backend:<6}  {e.platform}:{e.user}  "
                f"{_duration(e.waited_s)}  {prompt}"
            )
        if len(entries) > limit:
            lines.append(m.OPS_QUEUE_MORE.format(n=len(entries) - limit))
        return "\n".join(lines)

    # ------------------------------------------------------------ cancel

    async def cancel(self, job_id: str, actor: UserRef) -> str:
        job_id = job_id.strip()
        rec = self.table.get(job_id) if job_id else None
        if rec is None or not self._visible(rec, actor):
            return m.NO_SUCH_JOB.format(job_id=job_id or "?")
        if rec.status.finished:
            return m.OPS_CANCEL_FINISHED.format(job_id=job_id, status=rec.status.value)
        if self.engine is not None:
            await self.engine.cancel(job_id, None)
        else:  # another process runs the queue: marking the row makes that engine skip it
            self.table.set_status(job_id, JobStatus.CANCELLED, m.OPS_CANCELLED_BY_OPERATOR)
        self.controls.log_action(actor.key, "cancel", job_id)
        return m.OPS_CANCELLED.format(job_id=job_id, user=f"{rec.who.platform}:{rec.who.user}")

    # ------------------------------------------------------------ pause / resume

    def _known_backend(self, backend: str) -> str | None:
        from chatcanvas.generation.registry import backend_names

        names = backend_names()
        return None if backend in names else m.OPS_UNKNOWN_BACKEND.format(backend=backend, known=", ".join(names))

    def pause(self, backend: str, actor: UserRef, reason: str = "") -> str:
        backend = backend.strip().lower()
        problem = self._known_backend(backend)
        if problem:
            return problem
        if not self.controls.pause(backend, by=actor.key, reason=reason):
            return m.OPS_ALREADY_PAUSED.format(backend=backend)
        self.controls.log_action(actor.key, "pause", backend)
        return m.OPS_PAUSED.format(backend=backend)

    def resume(self, backend: str, actor: UserRef) -> str:
        backend = backend.strip().lower()
        problem = self._known_backend(backend)
        if problem:
            return problem
        if not self.controls.resume(backend):
            return m.OPS_NOT_PAUSED.format(backend=backend)
        self.controls.log_action(actor.key, "resume", backend)
        return m.OPS_RESUMED.format(backend=backend)

    # ------------------------------------------------------------ bans

    def _ban_target(self, target: UserRef, actor: UserRef) -> tuple[str, str, str]:
        scope = self.scope(actor)
        if scope is None:
            return target.platform, target.server, target.user
        return actor.platform, scope, target.user  # a chat admin bans in their own server only

    def ban(self, target: UserRef, actor: UserRef, reason: str = "") -> str:
        platform, server, user = self._ban_target(target, actor)
        if (platform, user) == (actor.platform, actor.user):
            return m.OPS_BAN_SELF
        where = m.OPS_WHERE_SERVER if server else m.OPS_WHERE_EVERYWHERE
        if not self.controls.ban(platform, server, user, by=actor.key, reason=reason):
            return m.OPS_ALREADY_BANNED.format(user=f"{platform}:{user}", where=where)
        self.controls.log_action(actor.key, "ban", f"{platform}:{server}:{user}")
        return m.OPS_BANNED.format(user=f"{platform}:{user}", where=where)

    def unban(self, target: UserRef, actor: UserRef) -> str:
        platform, server, user = self._ban_target(target, actor)
        if not self.controls.unban(platform, server, user):
            return m.OPS_NOT_BANNED.format(user=f"{platform}:{user}")
        self.controls.log_action(actor.key, "unban", f"{platform}:{server}:{user}")
        return m.OPS_UNBANNED.format(user=f"{platform}:{user}")

    # ------------------------------------------------------------ usage

    def usage_text(self, actor: UserRef, user: UserRef | None = None) -> str:
        """Images, GPU-seconds and OpenAI spend per user (today, this month), in the actor's server."""
        scope = self.scope(actor)
        if user is not None and scope is not None:
            user = UserRef(platform=actor.platform, user=user.user, server=scope)
        rows = usage_rows(self.store, server=scope, user=user)
        return format_usage(rows, gpu_limit=self.settings.gpu_seconds_limit_user_daily)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
