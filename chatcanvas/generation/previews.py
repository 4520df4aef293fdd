"""Previews of a generation in progress: a cheap picture of the current latents, now and then.

A preview costs at most about one denoising step: a tiny VAE (diffusers ``AutoencoderTiny``, e.g.
TAESD) decodes it when ``CHATCANVAS_PREVIEW_VAE`` names one; the SD 1.x/2.x and SDXL VAEs' latents
are projected to RGB by their published linear factors (next to free); any other VAE (the demo
model's among them) decodes the latents itself, shrunk to at most 32x32 first. (A linear map, or a
small per-pixel network, fitted to the demo VAE was measured and shows no hue: its latents carry
colour only with their neighbours.) Previews are made at most once every
``CHATCANVAS_PREVIEW_INTERVAL_S`` (platforms show one edit every second or two), not before
:data:`FIRST_AT` steps, and only when the call has at least that long still to run: a preview the
platform cannot show before the finished image is not worth its step.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

from chatcanvas.config import Settings

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

FIRST_AT = 4  # steps before the first preview (and the shortest spacing between two)
MAX_SIDE = 128  # previews are at most this wide or high
SMALL_LATENT = 32 * 32  # the model's own VAE decodes previews from latents shrunk to this many pixels

# Latent -> RGB in [-1, 1] for the scaled latents the sampler works on (rows: latent channels).
SD_FACTORS = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)
SD_BIAS = (0.0, 0.0, 0.0)
SDXL_FACTORS = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
SDXL_BIAS = (0.1084, -0.0175, -0.0011)
_SD_SCALE, _SDXL_SCALE = 0.18215, 0.13025


def known_factors(vae_config: Any) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]] | None:
    """The published factors for this VAE's family (by its latent channels and scaling factor), or None."""
    if int(getattr(vae_config, "latent_channels", 0)) != 4:
        return None
    scale = float(getattr(vae_config, "scaling_factor", 0.0))
    if abs(scale - _SD_SCALE) < 1e-4:
        return SD_FACTORS, SD_BIAS
    if abs(scale - _SDXL_SCALE) < 1e-4:
        return SDXL_FACTORS, SDXL_BIAS
    return None


@dataclass
class Previewer:
    """Makes previews for one loaded pipeline (call :meth:`prepare` in the thread that loads it)."""

    settings: Settings
    vae: Any = None
    factors: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    tiny_vae: Any = None

    def prepare(self, pipe: Any) -> None:
        import torch

        self.vae = pipe.vae
        ref = self.settings.preview_vae
        if ref:
            try:
                from diffusers import AutoencoderTiny

                param = next(pipe.vae.parameters())
                self.tiny_vae = AutoencoderTiny.from_pretrained(ref, torch_dtype=param.dtype).to(param.device)
                self.tiny_vae.eval()
            except Exception as exc:  # a preview is a nicety: say why, and use the other ways
                log.warning("CHATCANVAS_PREVIEW_VAE=%s could not be loaded (%s); previews use the latents", ref, exc)
        known = known_factors(pipe.vae.config)
        if known is not None:
            self.factors, self.bias = torch.tensor(known[0]), torch.tensor(known[1])

    def source(self, latents: torch.Tensor) -> str:
        """How a preview of these latents is made: "tiny-vae"; "factors" (the published linear map, next
        to free); "vae" (the model's own decoder, on the latents shrunk to SMALL_LATENT pixels at most:
        about a step's cost); or "none"."""
        if self.tiny_vae is not None:
            return "tiny-vae"
        if self.factors is not None and latents.shape[1] == len(self.factors):
            return "factors"
        return "vae" if self.vae is not None else "none"

    def session(self) -> PreviewSession:
        """The throttle for one pipeline call."""
        return PreviewSession(self, self.settings.preview_interval_s)

    def render(self, latents: torch.Tensor, size: tuple[int, int]) -> bytes | None:
        """A small PNG of the first latent of the batch; ``size``: the final image's (width, height)."""
        import torch

        try:
            with torch.inference_mode():
                lat = latents[:1]
                how = self.source(lat)
                if how == "tiny-vae":
                    x = self.tiny_vae.decode(lat.to(self.tiny_vae.dtype) / self.tiny_vae.config.scaling_factor)
                    rgb = x.sample[0].float().permute(1, 2, 0)
                elif how == "vae":
                    h, w = lat.shape[-2:]
                    shrink = max(1.0, (h * w / SMALL_LATENT) ** 0.5)
                    if shrink > 1:  # a VAE decodes shrunken latents to a smaller, blurrier picture
                        lat = torch.nn.functional.adaptive_avg_pool2d(lat, (int(h // shrink), int(w // shrink)))
                    x = self.vae.decode(lat.to(self.vae.dtype) / self.vae.config.scaling_factor).sample[0]
                    rgb = x.float().permute(1, 2, 0)
                elif how == "factors":
                    assert self.factors is not None and self.bias is not None
                    rgb = lat[0].float().permute(1, 2, 0).cpu() @ self.factors + self.bias
                else:
                    return None
                pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to("cpu", torch.uint8).numpy()
            im = Image.fromarray(pixels)
            w, h = size
            scale = min(1.0, MAX_SIDE / max(w, h))
            target = (max(1, round(w * scale)), max(1, round(h * scale)))
            if im.size != target:
                im = im.resize(target, Image.Resampling.BILINEAR)
            buf = io.BytesIO()
            im.save(buf, format="PNG", compress_level=1)
            return buf.getvalue()
        except Exception:  # a preview is a nicety; never fail a job for it
            log.debug("preview failed", exc_info=True)
            return None


@dataclass
class PreviewSession:
    """When to make a preview during one pipeline call: not before FIRST_AT steps, at most once per
    interval, and only while the rest of the call takes at least an interval more (a preview the
    platform could not show before the image itself is not made)."""

    previewer: Previewer
    interval: float
    started: float = field(default_factory=time.monotonic)
    last: float = field(default=float("-inf"))
    last_step: int = 0

    def due(self, step: int, total: int) -> bool:
        if step >= total or step - self.last_step < FIRST_AT:
            return False
        now = time.monotonic()
        if now - self.last < self.interval:
            return False
        left = (now - self.started) / step * (total - step)
        return left >= self.interval

    def make(self, step: int, latents: torch.Tensor, size: tuple[int, int]) -> bytes | None:
        self.last, self.last_step = time.monotonic(), step
        return self.previewer.render(latents, size)
