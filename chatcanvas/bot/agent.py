"""The LLM prompt-rewriting agent: LangChain ``create_agent`` + ``ChatOpenAI`` over Chat Completions.

Works with OpenAI and any OpenAI-compatible server (Ollama, vLLM, llama.cpp server, LM Studio):
``OPENAI_BASE_URL``, ``OPENAI_API_KEY`` (any value for local servers), ``CHATCANVAS_LLM_MODEL``,
``CHATCANVAS_LLM_TIMEOUT_S``, ``CHATCANVAS_LLM_MAX_RETRIES``.

- :class:`AgentRunner` (``Assistant.agent``): runs one chat turn; the tools submit real jobs through
  the Assistant and their events stream to the chat while the agent runs.
- :class:`AgentRewriter`: the :class:`~chatcanvas.bot.rewriter.Rewriter` form (tools only plan), for
  ``chatcanvas ask --dry-run`` and ``bench/rewriter.py``.

An LLM failure (timeout, 429, 5xx, malformed tool arguments, no tool call for an image request)
never crashes the turn: before any image was made the offline rewriter takes over, with a note.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from chatcanvas import messages as m
from chatcanvas import prompts
from chatcanvas.bot.offline_rewriter import OfflineRewriter, wants_image
from chatcanvas.bot.plan import Plan
from chatcanvas.config import Settings
from chatcanvas.prompts import Family
from chatcanvas.tools.context import ToolContext
from chatcanvas.types import ChatTurn, Event, ImageSpec, Limits, Text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chatcanvas.tools.context import ImageService
    from chatcanvas.types import Place, UserRef

    class TurnHost(ImageService, Protocol):
        """The part of the Assistant the agent runner uses."""

        memory: Any
        settings: Settings

        def run_specs(
            self,
            specs: Sequence[ImageSpec],
            who: UserRef,
            where: Place,
            notes: Sequence[str] = (),
            prompt_in: str = "",
        ) -> AsyncIterator[Event]: ...

log = logging.getLogger(__name__)

RECURSION_LIMIT = 16  # model and tool steps in one turn


class AgentError(Exception):
    """The LLM did not produce a usable answer; ``str()`` is a short reason for the user."""


@dataclass
class Outcome:
    text: str
    error: str | None = None  # a reason to fall back


def _chat_model(settings: Settings) -> Any:
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    return ChatOpenAI(
        model=settings.llm_model or "gpt-4o-mini",
        api_key=SecretStr(settings.openai_api_key or "not-needed"),  # local servers accept any key
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        temperature=0.2,
        use_responses_api=False,  # Chat Completions: what every OpenAI-compatible server speaks
    )


def _reason(exc: BaseException, settings: Settings) -> str:
    """A short, user-safe reason for an LLM failure."""
    try:
        import openai
    except ImportError:  # pragma: no cover - openai comes with langchain-openai
        return type(exc).__name__
    if isinstance(exc, openai.APITimeoutError | asyncio.TimeoutError | TimeoutError):
        return m.AGENT_TIMEOUT.format(limit=settings.llm_timeout_s)
    if isinstance(exc, openai.RateLimitError):
        return m.AGENT_RATE_LIMITED
    if isinstance(exc, openai.APIStatusError):
        return f"{m.AGENT_SERVER_ERROR} ({exc.status_code})"
    if isinstance(exc, openai.APIConnectionError):
        return m.AGENT_UNREACHABLE
    if isinstance(exc, AgentError):
        return str(exc)
    return m.AGENT_UNEXPECTED


def _history(last: list[ImageSpec] | None) -> str:
    if not last:
        return ""
    lines = ["", "Previous images in this conversation (edit these when the user refers to them):"]
    for i, s in enumerate(last, 1):
        size = f"{s.width}x{s.height}" if s.width and s.height else "default size"
        lines.append(
            f"{i}. prompt: {s.prompt!r}; style: {s.style or 'none'}; {size}; count {s.count}; seed {s.seed}"
        )
    return "\n".join(lines)


def _user_text(turn: ChatTurn) -> str:
    text = turn.text.strip() or "(no text)"
    if turn.attachments:
        names = ", ".join(a.filename for a in turn.attachments)
        text += f"\n\n[The user attached {len(turn.attachments)} file(s): {names}]"
    return text


def _leaks(reply: str, system: str) -> bool:
    """Does ``reply`` quote the system prompt (a line of 40+ characters of it)?"""
    norm = " ".join(reply.split()).lower()
    for line in system.splitlines():
        line = " ".join(line.strip(" -#`").split()).lower()
        if len(line) >= 40 and line in norm:
            return True
    return False


class _Agent:
    """What both forms share: the model, the prompt, one turn's run and its failure handling."""

    def __init__(
        self, settings: Settings, offline: OfflineRewriter | None = None, limits: Limits | None = None
    ) -> None:
        self.settings = settings
        self.limits = limits or settings.limits
        self.offline = offline or OfflineRewriter(self.limits)
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = _chat_model(self.settings)
        return self._model

    async def invoke(self, ctx: ToolContext, turn: ChatTurn, last: list[ImageSpec] | None) -> Outcome:
        """Run the agent for one turn. LLM trouble does not raise: ``Outcome.error`` says why to fall back."""
        from langchain.agents import create_agent
        from langchain_core.messages import AIMessage, HumanMessage

        from chatcanvas.tools.image_tools import build_tools

        system = prompts.system_prompt(ctx.family, self.limits) + _history(last)
        agent = create_agent(self.model, build_tools(ctx), system_prompt=system)
        try:
            state = await agent.ainvoke(
                {"messages": [HumanMessage(content=_user_text(turn))]},
                config={"recursion_limit": RECURSION_LIMIT},
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if type(exc).__name__ == "GraphRecursionError":
                return Outcome("", None if ctx.tool_calls else m.AGENT_NO_TOOL_CALL)
            from chatcanvas.safety.redact import scrub

            # an upstream error may quote the key ("Incorrect API key provided: sk-..."); a host's logs
            # may have no redaction installed (a plugin in someone else's bot), so scrub here
            log.warning("LLM agent failed: %s: %s", type(exc).__name__, scrub(str(exc), self.settings))
            return Outcome("", _reason(exc, self.settings))
        msgs = state.get("messages", [])
        final = next((x for x in reversed(msgs) if isinstance(x, AIMessage)), None)
        text = _content_text(final.content) if final is not None else ""
        if final is not None and _leaks(text, system):
            text = m.AGENT_NO_LEAK
        if ctx.tool_calls == 0:
            if final is not None and getattr(final, "invalid_tool_calls", None):
                return Outcome(text, m.AGENT_BAD_TOOL_CALL)
            if not text.strip() or wants_image(turn.text):
                return Outcome(text, m.AGENT_NO_TOOL_CALL)
        return Outcome(text.strip())


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return " ".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content).strip()
    return str(content or "")


class AgentRewriter(_Agent):
    """The LLM as a :class:`~chatcanvas.bot.rewriter.Rewriter`: tools record specs, generate nothing."""

    def __init__(
        self,
        settings: Settings,
        offline: OfflineRewriter | None = None,
        limits: Limits | None = None,
        fallback: bool = True,
    ) -> None:
        super().__init__(settings, offline, limits)
        self.fallback = fallback

    async def plan(self, turn: ChatTurn, last: list[ImageSpec] | None, backend_family: str) -> Plan:
        family: Family = "dalle" if backend_family == "dalle" else "sd"
        ctx = ToolContext(
            limits=self.limits,
            who=turn.who,
            where=turn.where,
            family=family,
            count_tokens=self.offline.count_tokens,
            native_size=self.offline.base_side,
            attachments=turn.attachments,
            prompt_in=turn.text,
        )
        out = await self.invoke(ctx, turn, last)
        if out.error and not ctx.specs:
            if not self.fallback:
                return Plan(reply=m.AGENT_FAILED.format(detail=out.error))
            plan = await self.offline.plan(turn, last, backend_family)
            return plan.model_copy(update={"notes": [m.AGENT_FALLBACK.format(detail=out.error), *plan.notes]})
        if not ctx.specs:
            return Plan(reply=out.text or None, notes=ctx.notes)
        return Plan(specs=ctx.specs, notes=ctx.notes, reply=None)


class AgentRunner(_Agent):
    """``Assistant.agent``: one chat turn with real tools; yields the events the tools produce."""

    async def run(self, assistant: TurnHost, turn: ChatTurn) -> AsyncIterator[Event]:
        from chatcanvas.tools import context_for

        memory = assistant.memory
        last = memory.last(turn.conversation) if memory is not None else None
        queue: asyncio.Queue[Event | None] = asyncio.Queue()

        async def sink(ev: Event) -> None:
            await queue.put(ev)

        ctx = context_for(assistant, turn.who, turn.where, sink, per_turn=True)
        ctx.attachments = turn.attachments
        ctx.prompt_in = turn.text
        recall = getattr(memory, "last_images", None)
        if callable(recall):
            ctx.recent_images = list(recall(turn.conversation))
        self.offline.count_tokens = self.offline.count_tokens or ctx.count_tokens
        self.offline.base_side = self.offline.base_side or ctx.native_size
        task = asyncio.create_task(self.invoke(ctx, turn, last))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (ev := await queue.get()) is not None:
                yield ev
            out = task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if out.error and not ctx.specs:
            yield Text(text=m.AGENT_FALLBACK.format(detail=out.error))
            plan = await self.offline.plan(turn, last, ctx.family)
            if plan.reply:
                yield Text(text=plan.reply)
            if plan.specs:
                async for ev in assistant.run_specs(
                    plan.specs, turn.who, turn.where, plan.notes, prompt_in=turn.text
                ):
                    yield ev
            return
        if out.error:
            yield Text(text=m.AGENT_FAILED.format(detail=out.error))
        elif out.text:
            yield Text(text=_strip_links(out.text))
        if memory is not None and ctx.specs:
            memory.remember(turn.conversation, ctx.specs)
            remember_images = getattr(memory, "remember_images", None)
            if callable(remember_images):
                remember_images(turn.conversation, [i.id for i in ctx.images])


def _strip_links(text: str) -> str:
    """The images are shown by the adapter; a model's made-up links or data URLs are dropped."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"data:image/[^\s)]+", "", text)
    return text.strip()
