"""Request and response bodies of the HTTP API (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chatcanvas.types import MAX_PROMPT_CHARS, Colourway, ImageSpec


class GenerationRequest(BaseModel):
    """Either ``text`` for the assistant (it rewrites it into prompts) or an exact ``spec``.

    A bare :class:`ImageSpec` (a body with ``prompt``) is accepted as ``{"spec": ...}``.
    """

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, min_length=1, max_length=MAX_PROMPT_CHARS, examples=["a blue mug"])
    spec: ImageSpec | None = None
    conversation: str | None = Field(
        None,
        max_length=128,
        description="keeps the assistant's memory across requests (e.g. one per chat tab)",
    )

    @model_validator(mode="before")
    @classmethod
    def _bare_spec(cls, data: Any) -> Any:
        if isinstance(data, dict) and "prompt" in data and "spec" not in data and "text" not in data:
            conv = data.get("conversation")
            spec = {k: v for k, v in data.items() if k != "conversation"}
            return {"spec": spec, "conversation": conv}
        return data

    @model_validator(mode="after")
    def _one_of(self) -> GenerationRequest:
        if (self.text is None) == (self.spec is None):
            raise ValueError("send either text (for the assistant) or spec (an exact ImageSpec), not both")
        if self.text is not None and not self.text.strip():
            raise ValueError("the text is empty")
        return self


class ImageOut(BaseModel):
    id: str
    url: str
    prompt: str
    revised_prompt: str
    seed: int
    width: int
    height: int
    steps: int
    model: str
    backend: str
    mode: str
    colourway: Colourway | None = Field(None, description="a product colourway: the colour asked, the sRGB used")
    colour_delta_e: float | None = Field(None, description="CIEDE2000 of the product's colour to the one asked")


class JobOut(BaseModel):
    id: str
    object: str = "job"
    kind: str
    status: str = Field(description="accepted | queued | running | done | failed | cancelled")
    created: float
    finished: float | None = None
    position: int | None = Field(None, description="jobs ahead in the queue")
    percent: int = 0
    note: str | None = Field(None, description="why a queued job is waiting, e.g. the image workers are down")
    job_ids: list[str] = Field(default_factory=list, description="the engine jobs behind this request")
    prompts: list[str] = Field(default_factory=list, description="the prompts as rewritten by the assistant")
    texts: list[str] = Field(default_factory=list, description="what the assistant said")
    images: list[ImageOut] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    links: dict[str, str] = Field(default_factory=dict)


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


class InfoOut(BaseModel):
    name: str = "chatcanvas"
    version: str
    backend: str
    model: str
    demo_model: bool
    api_keys_required: bool
    max_upload_bytes: int
    max_upload_pixels: int
    max_variations: int
