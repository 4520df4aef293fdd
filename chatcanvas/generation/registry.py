"""Backends by name, through the ``chatcanvas.backends`` entry point group (built-ins included)."""

from __future__ import annotations

from importlib.metadata import entry_points

from chatcanvas.config import Settings, registered_backends
from chatcanvas.errors import ConfigError
from chatcanvas.generation.base import Backend

_BUILTIN = {
    "local": "chatcanvas.generation.diffusers_backend:DiffusersBackend",
    "openai": "chatcanvas.generation.openai_backend:OpenAIBackend",
    "colourway": "chatcanvas.generation.colourway_backend:ColourwayBackend",
    "ray": "chatcanvas.generation.ray_backend:RayBackend",
}


def backend_names() -> list[str]:
    return sorted(set(_BUILTIN) | set(registered_backends()))


def backend_class(name: str) -> type[Backend]:
    for ep in entry_points(group="chatcanvas.backends"):
        if ep.name == name:
            cls = ep.load()
            break
    else:
        if name not in _BUILTIN:
            raise ConfigError(
                f"Unknown backend {name!r}. Set CHATCANVAS_BACKEND to one of: {', '.join(backend_names())}."
            )
        import importlib

        mod, _, attr = _BUILTIN[name].partition(":")
        cls = getattr(importlib.import_module(mod), attr)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(f"Backend {name!r} does not subclass chatcanvas.generation.base.Backend.")
    return cls


def load_backend(name: str, settings: Settings) -> Backend:
    return backend_class(name)(settings)  # type: ignore[call-arg]
