"""``POST /v1/verify``: an image's Content Credentials, watermark and recipe, as JSON."""

from __future__ import annotations

import asyncio
from typing import cast

from fastapi import APIRouter, Request, UploadFile
from starlette.datastructures import UploadFile as FormFile

from chatcanvas import messages as m
from chatcanvas.adapters.web.problems import Problem
from chatcanvas.adapters.web.routes_api import PROBLEMS, State, _read_upload, caller_of
from chatcanvas.images import ImageTooLarge, load_upload, megabytes
from chatcanvas.provenance.verify import VerifyReport, verify_image

router = APIRouter(prefix="/v1", tags=["v1"])

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {"image": {"type": "string", "format": "binary"}},
                }
            },
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/webp": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/verify",
    response_model=VerifyReport,
    responses=PROBLEMS,
    openapi_extra=_BODY,
    summary="Check an image: was it made by chatcanvas, unchanged since? (C2PA manifest, watermark, recipe)",
)
async def verify(request: Request, st: State) -> VerifyReport:
    caller_of(request, st)  # 401 when API keys are configured and none was given
    settings = st.ctx.settings
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("image")
        if not isinstance(upload, FormFile):  # what request.form() gives (FastAPI's UploadFile is one)
            raise Problem(422, m.VERIFY_UPLOAD_MISSING)
        data = await _read_upload(cast(UploadFile, upload), st, "the image")
    else:
        data = await request.body()
        if len(data) > settings.max_upload_bytes:
            limit = megabytes(settings.max_upload_bytes)
            raise ImageTooLarge(m.IMAGE_TOO_LARGE.format(detail=f"the image is over {limit}", limit=limit))
        if not data:
            raise Problem(422, m.VERIFY_UPLOAD_MISSING)
    await asyncio.to_thread(load_upload, data, settings)  # 413 / 415 as for every upload
    return await asyncio.to_thread(verify_image, data, settings)
