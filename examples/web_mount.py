"""Mount the chatcanvas web chat and API inside your own FastAPI app.

    pip install 'chatcanvas[web,local]'
    uvicorn examples.web_mount:app --port 8000
    open http://127.0.0.1:8000/canvas/      (your own routes stay at /)

Settings come from the environment / .env as usual (CHATCANVAS_MODEL, CHATCANVAS_API_KEYS, ...).
Mounted apps get no lifespan of their own, so pass chatcanvas's lifespan to your app: it builds the
store, job engine and assistant at startup and drains them at shutdown. (Without it, they are
built on the first request.)
"""

from __future__ import annotations

from fastapi import FastAPI

from chatcanvas.adapters.web import create_app

canvas = create_app()
app = FastAPI(title="My shop", lifespan=canvas.router.lifespan_context)
app.mount("/canvas", canvas)


@app.get("/")
async def home() -> dict[str, str]:
    return {"shop": "open", "image_chat": "/canvas/", "image_api": "/canvas/docs"}
