"""Slack adapter on slack-bolt (asyncio).

Two ways in:

- ``register(app, assistant, settings)`` adds the listeners (``/imagine``, mentions, DMs, thread
  replies, result buttons) to an existing ``slack_bolt.async_app.AsyncApp``;
- ``serve(ctx)`` runs a standalone app (``chatcanvas run --adapters slack``): Socket Mode when
  ``SLACK_APP_TOKEN`` is set, otherwise HTTP on ``CHATCANVAS_SLACK_PORT``.
"""

from chatcanvas.adapters.slack.listeners import SlackBridge, register
from chatcanvas.adapters.slack.serve import build_app, serve, start_http

__all__ = ["SlackBridge", "build_app", "register", "serve", "start_http"]
