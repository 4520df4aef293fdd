"""What the first request would otherwise do on the event loop, done once at start in a worker thread.

The offline rules compile their patterns and read their colour and style tables on first use; the
LLM agent imports LangChain; the policy compiles the blocked terms. :func:`warm_request_path` goes
through all of that with a made-up request, so the first real one (a Slack ``/imagine`` a second
after ``chatcanvas run``) finds everything ready. Registered by :func:`chatcanvas.app.build_app` as an
engine warm hook; never called on the event loop.
"""

from __future__ import annotations

import importlib
import logging

from chatcanvas.config import Settings

log = logging.getLogger(__name__)

SAMPLE_REQUESTS = (
    "our canvas tote in navy, forest green and #e07b39, studio light",
    "3 wide banners of a red mug, watercolour",
    "make it blue",
)
LLM_MODULES = (
    "langchain.agents",
    "langchain_core.messages",
    "langchain_openai",
    "chatcanvas.tools.image_tools",
)


def warm_request_path(settings: Settings) -> None:
    """Plan a few made-up requests with the offline rules, in both prompt families; import what the
    agent needs when one is configured; read and compile the blocked terms."""
    from chatcanvas.bot.offline_rewriter import OfflineRewriter

    rules = OfflineRewriter(settings.limits)
    for family in ("sd", "dalle"):
        last = None
        for text in SAMPLE_REQUESTS:
            plan = rules.plan_text(text, last, family)
            last = list(plan.specs) or last
    if settings.llm_enabled:
        try:
            for name in LLM_MODULES:
                importlib.import_module(name)
            walk_agent()
        except ImportError:  # chatcanvas[openai] not installed: the agent says so itself
            log.debug("LangChain is not installed", exc_info=True)
    from chatcanvas.safety.terms import check_text

    for text in SAMPLE_REQUESTS:
        check_text(text, settings)


def walk_agent() -> None:
    """One turn of a LangChain agent (``create_agent``, a tool call, an answer) against a scripted
    model, on a private event loop in this thread: LangChain imports its tracers and message
    translators on an agent's first run."""
    import asyncio

    from langchain.agents import create_agent
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.tools import StructuredTool

    class Scripted(GenericFakeChatModel):
        def bind_tools(self, tools: object, **kwargs: object) -> Scripted:  # type: ignore[override]
            return self

    def generate_image(prompt: str) -> str:
        """Draw it."""
        return "queued"

    calls = [{"name": "generate_image", "args": {"prompt": SAMPLE_REQUESTS[0]}, "id": "warm-up"}]
    model = Scripted(messages=iter([AIMessage(content="", tool_calls=calls), AIMessage(content="Here it is.")]))
    agent = create_agent(model, [StructuredTool.from_function(generate_image)], system_prompt="Draw what is asked.")
    asyncio.run(agent.ainvoke({"messages": [HumanMessage(SAMPLE_REQUESTS[0])]}))
