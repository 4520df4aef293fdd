"""Prompt adherence (and latency) of the bundled demo model.

For every colour x product and several seeds and phrasings, generate one 64x64 image
through diffusers' text-to-image pipeline and score it:

* colour: the colour covering most of the product's silhouette, each pixel named by the
  nearest of the 16 reference colours by CIEDE2000 (``chatcanvas.generation.demo.score``),
  is the named colour;
* product: a small CNN, trained here (about a minute) on ``draw.py``'s synthetic photos,
  some of them passed through the model's own VAE, names the right product.

    python bench/adherence.py                      # table + "color=0.xx product=0.xx n=N"
    python bench/adherence.py --median-latency     # one image at the default steps, median of 10
    python bench/adherence.py --model DIR --results bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from chatcanvas.generation.demo.draw import COLORS, PRODUCT_WORDS, PRODUCTS, draw_product  # noqa: E402
from chatcanvas.generation.demo.score import dominant_color_name  # noqa: E402

DEFAULT_MODEL = ROOT / "chatcanvas" / "generation" / "demo" / "model"

PHRASINGS: tuple[str, ...] = (
    "a {c} {p}",
    "{p}, {c}, studio photo",
    "a photo of a {c} {p} on white",
    "{c} {p} product shot",
    "a {c} {p} on a white background",
)


def load_pipeline(model: Path) -> Any:
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(str(model), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def defaults(model: Path) -> tuple[int, float]:
    meta_path = model / "chatcanvas.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return int(meta.get("default_steps", 20)), float(meta.get("default_guidance", 5.0))


# ---------------------------------------------------------------------------------------
# product classifier
# ---------------------------------------------------------------------------------------


class ProductNet(torch.nn.Module):
    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(64, 64, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(64, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # type: ignore[no-any-return]


def _gray(imgs: list[Image.Image]) -> torch.Tensor:
    """Colour-blind input: darkness (1 - grey level), so shape, not colour, decides."""
    a = np.stack([1.0 - np.asarray(im.convert("L"), dtype=np.float32) / 255.0 for im in imgs])
    return torch.from_numpy(a)[:, None]


def _vae_roundtrip(vae: Any, imgs: list[Image.Image]) -> list[Image.Image]:
    x = torch.from_numpy(np.stack([np.asarray(i, dtype=np.float32) for i in imgs])).permute(0, 3, 1, 2)
    x = x / 127.5 - 1.0
    with torch.no_grad():
        rec = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
    arr = ((rec + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a) for a in arr]


def train_classifier(vae: Any | None, seed: int = 0, per_class: int = 400, epochs: int = 6) -> ProductNet:
    rng = np.random.default_rng(seed)
    colors = list(COLORS)
    imgs: list[Image.Image] = []
    labels: list[int] = []
    for i, p in enumerate(PRODUCTS):
        for _ in range(per_class):
            imgs.append(draw_product(p, colors[int(rng.integers(len(colors)))], rng))
            labels.append(i)
    if vae is not None:  # half of them blurred the way the model's decoder blurs
        half = list(range(0, len(imgs), 2))
        rt = _vae_roundtrip(vae, [imgs[i] for i in half])
        for i, im in zip(half, rt, strict=True):
            imgs[i] = im
    x = _gray(imgs)
    y = torch.tensor(labels)
    net = ProductNet(len(PRODUCTS))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for j in range(0, len(x), 64):
            b = perm[j : j + 64]
            xb = x[b] + 0.03 * torch.randn(x[b].shape, generator=g)
            loss = F.cross_entropy(net(xb), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    # held-out check on fresh synthetic images
    val = [
        (draw_product(p, colors[int(rng.integers(len(colors)))], rng), i)
        for i, p in enumerate(PRODUCTS)
        for _ in range(40)
    ]
    acc = float((classify(net, [v[0] for v in val]) == np.array([v[1] for v in val])).mean())
    print(f"product classifier: held-out synthetic accuracy {acc:.3f} (n={len(val)})", flush=True)
    return net


def classify(net: ProductNet, imgs: list[Image.Image]) -> np.ndarray:
    with torch.no_grad():
        return net(_gray(imgs)).argmax(dim=1).numpy()


# ---------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------


Row = tuple[str, float, float, int]  # name, colour adherence, product adherence, n


def run_adherence(
    pipe: Any, steps: int, guidance: float, seeds_per: int, batch: int, colors: list[str]
) -> tuple[float, float, int, list[Row], list[Row]]:
    """Overall colour and product adherence, n, and rows per colour and per product."""
    jobs: list[tuple[str, str, str, int]] = []
    for c in colors:
        for p in PRODUCTS:
            words = PRODUCT_WORDS[p]
            for k in range(seeds_per):
                art_c = c
                prompt = PHRASINGS[k % len(PHRASINGS)].format(c=art_c, p=words[k % len(words)])
                if prompt.startswith("a ") and c[0] in "aeiou":
                    prompt = "an " + prompt[2:]
                jobs.append((c, p, prompt, 1000 + k))
    t0 = time.time()
    images: list[Image.Image] = []
    for i in range(0, len(jobs), batch):
        chunk = jobs[i : i + batch]
        gens = [torch.Generator().manual_seed(j[3]) for j in chunk]
        out = pipe(
            [j[2] for j in chunk], num_inference_steps=steps, guidance_scale=guidance, generator=gens
        ).images
        images.extend(out)
    gen_s = time.time() - t0
    net = train_classifier(getattr(pipe, "vae", None))
    pred = classify(net, images)
    col_ok = np.array([dominant_color_name(im) == j[0] for im, j in zip(images, jobs, strict=True)])
    prod_ok = np.array([PRODUCTS[int(k)] == j[1] for k, j in zip(pred, jobs, strict=True)])

    print(f"\ngenerated {len(images)} images in {gen_s:.0f}s ({steps} steps, guidance {guidance})")
    by_color: list[Row] = []
    by_product: list[Row] = []
    for key, names, rows in ((0, colors, by_color), (1, list(PRODUCTS), by_product)):
        for name in names:
            m = np.array([j[key] == name for j in jobs])
            rows.append((name, float(col_ok[m].mean()), float(prod_ok[m].mean()), int(m.sum())))
    print(f"{'':10s} {'color':>6s} {'product':>8s} {'n':>4s}")
    for rows in (by_color, by_product):
        for name, c_ok, p_ok, n in rows:
            print(f"{name:10s} {c_ok:6.2f} {p_ok:8.2f} {n:4d}")
        print()
    wrong = [(j[0], dominant_color_name(im)) for im, j, ok in zip(images, jobs, col_ok, strict=True) if not ok]
    if wrong:
        print("colour misses (asked -> scored): " + ", ".join(f"{a}->{b}" for a, b in wrong))
    per_row = len(PRODUCTS) * seeds_per
    grid = Image.new("RGB", (64 * per_row, 64 * len(colors)), "white")
    for i, im in enumerate(images):
        grid.paste(im, (64 * (i % per_row), 64 * (i // per_row)))
    grid.save("/tmp/adherence_grid.png")
    return float(col_ok.mean()), float(prod_ok.mean()), len(images), by_color, by_product


def median_latency(pipe: Any, steps: int, guidance: float, runs: int = 10) -> float:
    prompt = "a photo of a red mug on white"
    pipe(
        prompt, num_inference_steps=steps, guidance_scale=guidance, generator=torch.Generator().manual_seed(0)
    )
    times = []
    for i in range(runs):
        t = time.perf_counter()
        pipe(
            prompt,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=torch.Generator().manual_seed(i),
        )
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), ""
        )
    except OSError:
        model = platform.processor()
    return f"{model or 'unknown CPU'}, {torch.get_num_threads()} threads (os.cpu_count()={os.cpu_count()})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--seeds", type=int, default=5, help="seeds/phrasings per colour x product")
    ap.add_argument("--steps", type=int, default=None, help="default: chatcanvas.json's default_steps")
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--colors", default="", help="comma-separated subset of the colours (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--median-latency", action="store_true", help="only time one image, median of 10")
    ap.add_argument("--results", type=Path, default=None, help="append a section to this markdown file")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    d_steps, d_guid = defaults(args.model)
    steps = args.steps or d_steps
    guidance = args.guidance if args.guidance is not None else d_guid
    pipe = load_pipeline(args.model)

    lat = median_latency(pipe, steps, guidance)
    print(f"median latency, one 64x64 image, {steps} steps: {lat:.3f}s", flush=True)
    if args.median_latency:
        print(f"latency_median_s={lat:.3f}")
        return
    colors = args.colors.split(",") if args.colors else list(COLORS)
    unknown = [c for c in colors if c not in COLORS]
    if unknown:
        raise SystemExit(f"unknown colour(s) {', '.join(unknown)}; choose from {', '.join(COLORS)}")
    color, product, n, by_color, by_product = run_adherence(
        pipe, steps, guidance, args.seeds, args.batch, colors
    )
    if args.results is not None:
        rel = os.path.relpath(args.model, ROOT)
        section = (
            f"\n## Demo model adherence ({datetime.date.today().isoformat()})\n\n"
            f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n"
            f"- machine: {machine()}\n"
            f"- model: `{rel}` ({steps} steps, guidance {guidance}), {len(colors)} colours x {len(PRODUCTS)} products\n"
            f"- colour adherence: **{color:.2f}**, product adherence: **{product:.2f}**, n={n}\n"
            f"- median latency, one 64x64 image: **{lat:.3f} s**\n\n"
            "| colour | colour adherence | product adherence | n |\n|---|---|---|---|\n"
            + "".join(f"| {c} | {a:.2f} | {b:.2f} | {k} |\n" for c, a, b, k in by_color)
            + "\n| product | colour adherence | product adherence | n |\n|---|---|---|---|\n"
            + "".join(f"| {c} | {a:.2f} | {b:.2f} | {k} |\n" for c, a, b, k in by_product)
            + "\nReproduce:\n\n```\n"
            f"python bench/adherence.py --model {rel}{f' --colors {args.colors}' if args.colors else ''}\n"
            f"python bench/adherence.py --model {rel} --median-latency\n```\n"
        )
        if not args.results.exists():
            args.results.write_text("# Benchmark results\n")
        with args.results.open("a") as fh:
            fh.write(section)
    print(f"color={color:.2f} product={product:.2f} n={n}")


if __name__ == "__main__":
    main()
