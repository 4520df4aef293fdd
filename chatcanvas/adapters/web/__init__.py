"""The HTTP API and web chat page (FastAPI + uvicorn).

* ``create_app(ctx)``: the ASGI app for a running :class:`chatcanvas.app.AppContext`;
  ``create_app()`` builds its own from the environment (mount it in your own app).
* ``serve(ctx)``: run it under uvicorn until cancelled (what ``chatcanvas run`` does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatcanvas.adapters.web.app import create_app, serve

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from chatcanvas.adapters.web import app

        return getattr(app, name)
    raise AttributeError(name)
