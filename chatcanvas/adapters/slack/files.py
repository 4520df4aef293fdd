"""Files: downloading what users share (bot token, size-capped) and uploading results (files_upload_v2)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from chatcanvas import messages as m
from chatcanvas.adapters.slack.blocks import clip, result_comment
from chatcanvas.bot.variation_list import pick_photo_and_mask
from chatcanvas.errors import InputImageError
from chatcanvas.types import GeneratedImage

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")


def is_image(file: dict[str, Any]) -> bool:
    return str(file.get("mimetype", "")).lower() in IMAGE_TYPES


def photo_and_mask(files: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """The product photo among the images shared with a message, and its mask (the image whose name
    or title says "mask"), by the core's rule; None when no image was shared."""
    images = [f for f in files if is_image(f)]
    return pick_photo_and_mask(images, lambda f: (str(f.get("name") or ""), str(f.get("title") or "")))


def _may_send_token(url: str, api_url: str) -> bool:
    """The bot token goes only to Slack, or to the host SLACK_API_URL points at (a proxy, a test server)."""
    host = (urlsplit(url).hostname or "").lower()
    return (
        host == "slack.com"
        or host.endswith(".slack.com")
        or host == (urlsplit(api_url).hostname or "").lower()
    )


async def download(client: AsyncWebClient, file: dict[str, Any], max_bytes: int) -> bytes:
    """The bytes of a shared file, refusing (InputImageError) anything over ``max_bytes``."""
    info = file
    if file.get("file_access") == "check_file_info" or not (
        file.get("url_private_download") or file.get("url_private")
    ):
        found = await client.files_info(file=str(file["id"]))
        info = dict(found["file"])
    size = int(info.get("size") or 0)
    if size > max_bytes:
        raise InputImageError(m.SLACK_FILE_TOO_BIG.format(size=size, limit=max_bytes))
    url = str(info.get("url_private_download") or info.get("url_private") or "")
    if not url:
        raise InputImageError(m.SLACK_FILE_UNREADABLE.format(detail="no download URL"))
    if not _may_send_token(url, client.base_url):
        raise InputImageError(m.SLACK_FILE_UNREADABLE.format(detail="not a Slack file URL"))
    headers = {"Authorization": f"Bearer {client.token}"}
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, headers=headers) as resp,
        ):
            if resp.status != 200:
                raise InputImageError(m.SLACK_FILE_UNREADABLE.format(detail=f"HTTP {resp.status}"))
            if resp.content_type == "text/html":
                # Slack's sign-in page: the token lacks the files:read scope
                raise InputImageError(
                    m.SLACK_FILE_UNREADABLE.format(detail="the app needs the files:read scope")
                )
            if (resp.content_length or 0) > max_bytes:
                raise InputImageError(m.SLACK_FILE_TOO_BIG.format(size=resp.content_length, limit=max_bytes))
            data = bytearray()
            async for chunk in resp.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > max_bytes:
                    raise InputImageError(
                        m.SLACK_FILE_TOO_BIG.format(size=f"over {len(data)}", limit=max_bytes)
                    )
            return bytes(data)
    except aiohttp.ClientError as exc:
        raise InputImageError(m.SLACK_FILE_UNREADABLE.format(detail=type(exc).__name__)) from None


async def upload_images(
    client: AsyncWebClient, channel: str, thread_ts: str | None, images: tuple[GeneratedImage, ...]
) -> None:
    """Upload PNGs into the thread (getUploadURLExternal -> upload -> completeUploadExternal)."""
    uploads = []
    for img in images:
        prompt = img.recipe.revised_prompt or img.recipe.prompt
        uploads.append(
            {
                "file": img.png,
                "filename": f"chatcanvas-{img.id[:12]}.png",
                "title": clip(prompt, 250),
                "alt_txt": clip(prompt, 1000),
            }
        )
    await client.files_upload_v2(
            file_uploads=uploads, channel=channel, thread_ts=thread_ts, initial_comment=result_comment(images)
        )
