"""chatcanvas's image tools in your own LangChain agent.

    OPENAI_API_KEY=... python examples/langchain_agent.py "a watercolour fox, and the same fox as pixel art"

Any OpenAI-compatible server works too (OPENAI_BASE_URL=http://localhost:11434/v1 for Ollama, with
CHATCANVAS_LLM_MODEL naming one of its models). The images are written to ./agent-images; the
agent only ever sees a short text per tool call, never image bytes.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI

from chatcanvas.app import build_app
from chatcanvas.config import load_settings
from chatcanvas.tools import image_tools


async def main(request: str) -> None:
    settings = load_settings()
    app = await build_app(settings)  # store + job engine + assistant, like `chatcanvas run`
    try:
        model = ChatOpenAI(model=settings.llm_model or "gpt-4o-mini", base_url=settings.openai_base_url)
        agent = create_agent(
            model,
            image_tools(app),
            system_prompt="You make pictures with the generate_image tool. One call per distinct image.",
        )
        state = await agent.ainvoke({"messages": [HumanMessage(content=request)]})
        out = Path("agent-images")
        out.mkdir(exist_ok=True)  # noqa: ASYNC240 - a one-off script
        for msg in state["messages"]:
            if isinstance(msg, ToolMessage) and msg.artifact:
                for img in msg.artifact:  # chatcanvas.types.GeneratedImage
                    path = out / f"{img.id}.png"
                    path.write_bytes(img.png)
                    print(f"{path}  <- {img.recipe.prompt}")
        print(state["messages"][-1].content)
    finally:
        await app.aclose()


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "a cat on a spaceship"))
