"""Image tools for LangChain agents: ``generate_image``, ``vary_product``, ``upscale``, ``describe_settings``.

In any LangChain agent::

    from chatcanvas.app import build_app
    from chatcanvas.config import load_settings
    from chatcanvas.tools import image_tools

    app = await build_app(load_settings())
    tools = image_tools(app)            # bound to app.assistant: real jobs, images as artifacts
    agent = create_agent(model, tools)

LangChain is imported only when the tools are built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatcanvas.tools.context import EventSink, ImageService, ToolContext
from chatcanvas.types import Place, UserRef

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = ["EventSink", "ImageService", "ToolContext", "context_for", "image_tools"]


def context_for(
    assistant: Any,
    who: UserRef | None = None,
    where: Place | None = None,
    sink: EventSink | None = None,
    per_turn: bool = False,
) -> ToolContext:
    """A :class:`ToolContext` bound to an Assistant (or an ``AppContext``, whose assistant is used)."""
    from chatcanvas.prompts import describe_limits, family_of

    assistant = getattr(assistant, "assistant", assistant)
    settings = assistant.settings
    ctx = ToolContext(
        limits=settings.limits,
        family=family_of(settings.backend),
        service=assistant,
        count_tokens=_token_counter(assistant),
        describe=lambda: describe_limits(settings.limits) + f" Backend: {settings.backend}.",
        native_size=_native(assistant),
        per_turn=per_turn,
    )
    if who is not None:
        ctx.who = who
    if where is not None:
        ctx.where = where
    if sink is not None:
        ctx.sink = sink
    # the tool's image ids pass the same rule as every request's: store ids the caller may see
    ctx.image_bytes = lambda image_id: assistant.image_bytes_for(image_id, ctx.who, ctx.where)
    return ctx


def image_tools(
    app_or_assistant: Any,
    who: UserRef | None = None,
    where: Place | None = None,
    sink: EventSink | None = None,
) -> list[BaseTool]:
    """The image tools for an external agent. Each call is limited by the configured limits on its own."""
    from chatcanvas.tools.image_tools import build_tools

    return build_tools(context_for(app_or_assistant, who, where, sink, per_turn=False))


def _token_counter(assistant: Any) -> Any:
    if getattr(assistant.settings, "backend", "local") != "local":
        return None
    try:
        backend = assistant.engine.backend()
    except Exception:
        return None
    return getattr(backend, "count_tokens", None)


def _native(assistant: Any) -> int | None:
    try:
        return int(assistant.native_size())
    except Exception:
        return None
