"""chatcanvas: a chat-assistant plugin that paints."""

__version__ = "0.1.0"
