"""Rendering: core events -> Slack text and Block Kit. Pure functions, no I/O."""

from __future__ import annotations

from typing import Any

from chatcanvas import messages as m
from chatcanvas.types import GeneratedImage

ACTION_REROLL = "chatcanvas_reroll"
ACTION_VARY = "chatcanvas_vary"
ACTION_RECIPE = "chatcanvas_recipe"
ACTION_UPSCALE = "chatcanvas_upscale"
ACTION_OUTPAINT = "chatcanvas_outpaint"  # an overflow menu: zoom out, pan, banner ("<action>|<image id>")
ACTIONS = (ACTION_REROLL, ACTION_VARY, ACTION_RECIPE, ACTION_UPSCALE, ACTION_OUTPAINT)
SHORTCUT_CHECK = "chatcanvas_check_image"  # the message shortcut "Check image" (set up in the app's manifest)

MAX_TEXT = 2900  # a section's text may hold 3000 characters


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Slack mrkdwn needs &, < and > escaped; nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def queued_line(ahead: int) -> str:
    return m.SLACK_QUEUED_NEXT if ahead <= 0 else m.SLACK_QUEUED.format(ahead=ahead)


def progress_line(step: int, total: int) -> str:
    percent = int(100 * step / max(1, total))
    return m.SLACK_PROGRESS.format(percent=percent, step=step, total=total)


def refusal(reason: str, retry_after: float | None = None) -> str:
    text = m.SLACK_REFUSED.format(reason=reason)
    if retry_after:
        text += m.SLACK_RETRY_AFTER.format(seconds=max(1.0, retry_after))
    return text


def status_text(lines: dict[str, str], prompts: dict[str, str]) -> str:
    """The progress message: one line per job, with its prompt when there are several."""
    if len(lines) == 1:
        ((job_id, line),) = lines.items()
        prompt = prompts.get(job_id)
        return line if not prompt else f"{line}\n_{escape(clip(prompt, 300))}_"
    out = []
    for i, (job_id, line) in enumerate(lines.items(), 1):
        prompt = prompts.get(job_id)
        out.append(f"{i}. {line}" + (f" _{escape(clip(prompt, 120))}_" if prompt else ""))
    return clip("\n".join(out))


def result_comment(images: tuple[GeneratedImage, ...] | list[GeneratedImage]) -> str:
    prompts = list(dict.fromkeys(i.recipe.revised_prompt or i.recipe.prompt for i in images))
    return clip("\n".join(m.SLACK_PROMPT.format(prompt=escape(p)) for p in prompts))


def result_blocks(
    images: tuple[GeneratedImage, ...] | list[GeneratedImage], outpaint: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One actions row per image: reroll, variations, upscale, recipe (the value is the image id), and
    an overflow menu of ``outpaint`` actions (zoom out, pan, banner: action -> label)."""
    blocks: list[dict[str, Any]] = []
    for n, img in enumerate(images, 1):
        if len(images) > 1:
            blocks.append(
                {"type": "context", "elements": [{"type": "mrkdwn", "text": m.SLACK_IMAGE_LABEL.format(n=n)}]}
            )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"chatcanvas_{img.id[:16]}",
                "elements": [
                    _button(ACTION_REROLL, m.SLACK_BUTTON_REROLL, img.id),
                    _button(ACTION_VARY, m.SLACK_BUTTON_VARY, img.id),
                    _button(ACTION_UPSCALE, m.SLACK_BUTTON_UPSCALE, img.id),
                    _button(ACTION_RECIPE, m.SLACK_BUTTON_RECIPE, img.id),
                    *([_overflow(outpaint, img.id)] if outpaint else []),
                ],
            }
        )
    return blocks[:50]


def _button(action_id: str, label: str, value: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label},
        "value": value,
    }


def _overflow(actions: dict[str, str], image_id: str) -> dict[str, Any]:
    return {
        "type": "overflow",
        "action_id": ACTION_OUTPAINT,
        "options": [
            {"text": {"type": "plain_text", "text": label[:75]}, "value": f"{action}|{image_id}"}
            for action, label in list(actions.items())[:5]
        ],
    }


def recipe_blocks(text: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": "```" + clip(text, 2800) + "```"}}]
