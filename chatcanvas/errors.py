"""The small error hierarchy. Every message says what went wrong and how to fix it."""

from __future__ import annotations


class ChatcanvasError(Exception):
    """Base class; ``str(err)`` is safe to show a user."""

    exit_code = 1


class ConfigError(ChatcanvasError):
    """A setting has a bad value: names the variable and what it accepts."""

    exit_code = 2


class SpecError(ChatcanvasError):
    """An image request is outside the limits or malformed."""


class InputImageError(ChatcanvasError):
    """An uploaded image is missing, too big, or not an image."""


class ModelLoadError(ChatcanvasError):
    """The model could not be loaded (missing, offline, broken)."""


class BackendError(ChatcanvasError):
    """The image backend failed (timeout, server error). ``ran`` says whether it spent compute on the
    request first (counted in the usage); a backend that was never reached sets it False."""

    ran: bool = True


class ContentPolicyRefusal(BackendError):
    """The provider refused the request under its content policy."""


class Refusal(ChatcanvasError):
    """A request the policy (or a limit) turns down. ``rule`` names the rule; ``retry_after`` seconds
    until it may pass, when known."""

    rule = "refused"

    def __init__(self, message: str, retry_after: float | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        if rule is not None:
            self.rule = rule


class QuotaExceeded(Refusal):
    """A user or server is over a limit; ``retry_after`` seconds until it frees up, if known."""

    rule = "quota"


class Busy(QuotaExceeded):
    """The global queue is full."""

    rule = "queue_full"


class JobCancelled(ChatcanvasError):
    """Raised inside a generation to stop it at the next step."""
