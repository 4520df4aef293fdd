"""Train the bundled demo text-to-image model on procedural product photos.

Writes a standard diffusers Stable Diffusion folder (``model_index.json``): a small
AutoencoderKL (64x64 px <-> 16x16x4 latents), a small UNet2DConditionModel
(v-prediction), a small CLIP text encoder trained jointly with the UNet, a
CLIPTokenizer with its own word-level BPE vocabulary, and a DPM-Solver++ scheduler.

    python scripts/train_demo_model.py --minutes 72 --out chatcanvas/generation/demo/model   # CPU

To teach an existing checkpoint new colours instead of starting over, fine-tune it:
``--init-from DIR`` loads its tokenizer (every caption word must already be a token), text
encoder, UNet and VAE, and trains on the ``draw.py`` data set (``--colors`` picks a subset);
colours the checkpoint did not know are drawn ``--new-weight`` times as often. The VAE is
kept (``--vae-fraction 0``), or only its decoder trained (``--vae-decoder-only``: the latent
space the UNet knows stays put), or all of it, its known colours' latents held near the old
ones (``--anchor``). The bundled 10-colour checkpoint is the 8-colour one fine-tuned on the
shared 2-core CPU (nice 19, one thread) in 52.7 minutes (VAE decoder 185 steps, UNet 926):

    python scripts/train_demo_model.py --init-from chatcanvas/generation/demo/model \
        --colors red,orange,yellow,green,blue,purple,pink,black,white,maroon --minutes 53 \
        --vae-fraction 0.17 --vae-decoder-only --per-combo 50 --vae-batch 16 --vae-lr 8e-4 \
        --lr 5e-4 --threads 1 --workers 2 --eval-every 300 --new-weight 2

The old encoder gives grey, brown, beige, navy, teal and olive (nearly) the latent code of an
old colour (brown that of red, navy and teal that of purple, beige that of pink), so those
need the whole VAE retrained, and then the UNet: a from-scratch run, or ``--init-from``
without ``--vae-decoder-only`` with a long VAE phase.

An earlier 8-colour checkpoint was made on one GPU in 6.3 minutes (VAE 1,587 steps, UNet 3,314 steps):

    python scripts/train_demo_model.py --device cuda --workers 14 --minutes 7.0 --per-combo 250 \
        --batch 128 --vae-batch 64 --lr 1e-3 --eval-every 1000

On 2 CPU cores the same recipe needs roughly 0.7 s per VAE step and 0.5-1.3 s per UNet step
(batch 32) when the cores are not shared, i.e. far fewer steps in the same minutes.

Phases: draw the data set (fixed seed) -> train the VAE (checks colour error on held-out
images) -> encode latents -> train UNet + text encoder with caption dropout, printing
colour adherence of a few sampled prompts every ``--eval-every`` steps -> save (fp16).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatcanvas.generation.demo.draw import COLORS, PRODUCT_WORDS, PRODUCTS, draw_product  # noqa: E402
from chatcanvas.generation.demo.score import dominant_color_name  # noqa: E402

DEFAULT_OUT = ROOT / "chatcanvas" / "generation" / "demo" / "model"

# Words users commonly type around product requests; all get single tokens.
EXTRA_WORDS = """
a an the of in on with and or for to at by from is are my our your this that it its
photo photograph picture image shot product products studio white background plain clean simple
light lighting soft bright dark pale deep vivid pastel neon matte glossy shiny
red orange yellow green blue purple pink black navy forest teal grey gray brown beige cream
violet magenta crimson maroon olive lime gold silver cyan turquoise indigo lavender mint
t shirt tshirt tee shirts mug cup coffee ceramic sneaker sneakers shoe shoes trainer trainers
running cap hat baseball tote bag canvas shopping cotton leather
high quality detailed realistic minimal centered center close up view front side top flat lay
isolated catalog ecommerce mockup render illustration design style color colour colored coloured
new one single two pair small big large logo brand shop store sale premium
professional sharp focus hd 4k 8k lit best
""".split()


# --------------------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    parts = list(word[:-1]) + [word[-1] + "</w>"]
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(itertools.pairwise(parts))]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2 :]
    return parts


def load_tokenizer(model_dir: Path, words: list[str]) -> Any:
    """The tokenizer of an existing checkpoint; every caption word must already be one token."""
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(model_dir / "tokenizer"))
    vocab = tok.get_vocab()
    missing = [w for w in words if w + "</w>" not in vocab]
    if missing:
        raise SystemExit(
            f"{model_dir}'s tokenizer has no token for {', '.join(missing)}; train from scratch instead "
            "(without --init-from) to build a new vocabulary"
        )
    return tok


def build_tokenizer(words: list[str], out_dir: Path) -> Any:
    """A CLIPTokenizer whose vocabulary holds every byte plus one token per known word."""
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    vocab: list[str] = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in sorted(set(words)):
        parts = _bpe(word, ranks)
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            vocab.append(pair[0] + pair[1])
            parts = _bpe(word, ranks)
    vocab = list(dict.fromkeys(vocab)) + ["<|startoftext|>", "<|endoftext|>"]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (out_dir / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
    )
    tok = CLIPTokenizer(
        str(out_dir / "vocab.json"),
        str(out_dir / "merges.txt"),
        model_max_length=77,
        pad_token="<|endoftext|>",
    )
    return tok


def caption_words() -> list[str]:
    from chatcanvas.generation.demo import draw

    words: set[str] = set(EXTRA_WORDS) | set(COLORS)
    for syn in PRODUCT_WORDS.values():
        for s in syn:
            words.update(s.replace("-", " ").split())
    for t in draw._TEMPLATES:
        words.update(t.replace(",", " ").replace("{a}", "a an").replace("{c}", "").replace("{p}", "").split())
    return sorted(w.lower() for w in words)


def all_captions(product: str, color: str) -> list[str]:
    from chatcanvas.generation.demo import draw

    art = "an" if color[0] in "aeiou" else "a"
    return [t.format(a=art, c=color, p=p) for t in draw._TEMPLATES for p in PRODUCT_WORDS[product]]


# --------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------


def load_models(model_dir: Path, dev: torch.device) -> tuple[Any, Any, Any]:
    """VAE, text encoder and UNet of an existing checkpoint, in float32 on ``dev``."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    vae = AutoencoderKL.from_pretrained(str(model_dir / "vae"), torch_dtype=torch.float32)
    te = CLIPTextModel.from_pretrained(str(model_dir / "text_encoder"), torch_dtype=torch.float32)
    unet = UNet2DConditionModel.from_pretrained(str(model_dir / "unet"), torch_dtype=torch.float32)
    return vae.to(dev), te.to(dev), unet.to(dev)


def make_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(24, 48, 96),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        mid_block_add_attention=False,
    )


def make_unet(cross_dim: int) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(64, 128, 128),
        layers_per_block=1,
        cross_attention_dim=cross_dim,
        attention_head_dim=4,
        norm_num_groups=32,
    )


def make_text_encoder(tok: Any, hidden: int) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(
        vocab_size=len(tok.get_vocab()),
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        projection_dim=hidden,
    )
    return CLIPTextModel(cfg)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------


def _draw_one(job: tuple[int, int, int, int]) -> np.ndarray:
    seed, i, pi, ci = job
    rng = np.random.default_rng([seed, i])  # one stream per image: same data for any worker count
    return np.asarray(draw_product(PRODUCTS[pi], list(COLORS)[ci], rng), dtype=np.uint8)


def draw_dataset(n_per: int, seed: int, workers: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    jobs = [
        (seed, i, pi, ci)
        for i, (_, pi, ci) in enumerate(
            itertools.product(range(n_per), range(len(PRODUCTS)), range(len(COLORS)))
        )
    ]
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            imgs = pool.map(_draw_one, jobs, chunksize=64)
    else:
        imgs = [_draw_one(j) for j in jobs]
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor([j[2] for j in jobs]), torch.tensor([j[3] for j in jobs])


def cached_dataset(
    work: Path, n_per: int, seed: int, workers: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``draw_dataset``, kept in ``work`` so that a second run with the same data skips drawing."""
    import hashlib

    key = hashlib.sha256((ROOT / _DRAW_PY).read_bytes()).hexdigest()[:12]
    f = work / f"data_{n_per}_{seed}_{key}.pt"
    if f.exists():
        x, p, c = torch.load(f)
        return x, p, c
    data = draw_dataset(n_per, seed, workers)
    torch.save(data, f)
    return data


_DRAW_PY = Path("chatcanvas/generation/demo/draw.py")


def to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 127.5 - 1.0


def to_pil(x: torch.Tensor) -> list[Any]:
    from PIL import Image

    a = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(i) for i in a]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------------------
# training phases
# --------------------------------------------------------------------------------------


def train_vae(
    vae: Any,
    x: torch.Tensor,
    val: tuple[torch.Tensor, torch.Tensor],
    seconds: float,
    bs: int,
    seed: int,
    base_lr: float = 1.5e-3,
    weights: torch.Tensor | None = None,
    anchor: tuple[torch.Tensor, torch.Tensor, float] | None = None,
    probe: tuple[torch.Tensor, float] | None = None,
    decoder_only: bool = False,
) -> None:
    """Train the VAE for ``seconds``, drawing images with ``weights`` (default: uniformly).

    ``anchor`` = (latent means of a reference encoder for every image, which images to
    hold, weight): those images keep their latents near the reference, so a UNet trained
    on the reference latents still fits them while the other images may move elsewhere.
    ``probe`` = (colour index of every image, weight): a small classifier reads the colour
    from each foreground latent pixel, which makes the encoder give every colour its own
    latent code quickly (a VAE trained on fewer colours may share one code between two).
    ``decoder_only`` keeps the encoder, so the latent space a UNet learned stays the same.
    """
    dev = x.device
    g = torch.Generator().manual_seed(seed)
    gd = torch.Generator(device=dev).manual_seed(seed)
    trained = (
        list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
        if decoder_only
        else list(vae.parameters())
    )
    head: torch.nn.Module | None = None
    if probe is not None:
        head = torch.nn.Sequential(
            torch.nn.Linear(4, 64), torch.nn.SiLU(), torch.nn.Linear(64, int(probe[0].max()) + 1)
        ).to(dev)
        trained += list(head.parameters())
    opt = torch.optim.AdamW(trained, lr=base_lr, weight_decay=0.0)
    vae.train()
    start = time.time()
    step = 0
    while time.time() - start < seconds:
        frac = (time.time() - start) / seconds
        lr = base_lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for pg in opt.param_groups:
            pg["lr"] = lr
        if weights is None:
            idx = torch.randint(0, len(x), (bs,), generator=g)
        else:
            idx = torch.multinomial(weights, bs, replacement=True, generator=g)
        idx = idx.to(dev)
        xb = to_float(x[idx])
        with torch.set_grad_enabled(not decoder_only):
            post = vae.encode(xb).latent_dist
            z = post.sample(generator=gd)
        rec = vae.decode(z).sample
        fg = ((1.0 - xb.min(dim=1, keepdim=True).values) > 0.1).float()
        w = 1.0 + 4.0 * fg
        loss_rec = (w * ((rec - xb) ** 2 + 0.5 * (rec - xb).abs())).mean()
        kl = post.kl().mean() / (16 * 16 * 4)
        loss = loss_rec + 1e-4 * kl
        loss_anchor = torch.zeros((), device=dev)
        loss_probe = torch.zeros((), device=dev)
        if probe is not None and head is not None:
            fg_lat = F.avg_pool2d(fg, 4)[:, 0] > 0.75  # latent pixels well inside the product
            if bool(fg_lat.any()):
                feats = post.mean.permute(0, 2, 3, 1)[fg_lat]
                target = probe[0][idx][:, None, None].expand_as(fg_lat)[fg_lat]
                loss_probe = F.cross_entropy(head(feats), target)
                loss = loss + probe[1] * loss_probe
        if anchor is not None:
            ref_mu, held, anchor_w = anchor
            h = held[idx]
            if bool(h.any()):
                loss_anchor = ((post.mean[h] - ref_mu[idx][h]) ** 2).mean()
                loss = loss + anchor_w * loss_anchor
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        step += 1
        if step % _log_every(step) == 0:
            log(
                f"vae step {step} loss {loss_rec.item():.4f} kl {kl.item():.3f} "
                f"anchor {loss_anchor.item():.4f} probe {loss_probe.item():.3f} lr {lr:.2e}"
            )
        if step % (200 if dev.type == "cpu" else 2000) == 0:
            vae_report(vae, *val)
            vae.train()
    log(f"vae done: {step} steps in {time.time() - start:.0f}s")


@torch.no_grad()
def vae_report(vae: Any, x_val: torch.Tensor, col_val: torch.Tensor | None = None) -> float:
    vae.eval()
    xb = to_float(x_val)
    rec = vae.decode(vae.encode(xb).latent_dist.mode()).sample.clamp(-1, 1)
    fg = ((1.0 - xb.min(dim=1, keepdim=True).values) > 0.1).float()
    err = (((rec - xb).abs() * fg).sum() / (fg.sum() * 3)).item() * 127.5
    a, b = to_pil(xb), to_pil(rec)
    kept = np.array([dominant_color_name(i) == dominant_color_name(j) for i, j in zip(a, b, strict=True)])
    same = float(kept.mean())
    log(f"vae held-out: fg mean abs err {err:.1f}/255, dominant colour kept {same:.3f} (n={len(a)})")
    if col_val is not None:
        names = list(COLORS)
        cv = col_val.cpu().numpy()
        per = {names[c]: float(kept[cv == c].mean()) for c in range(len(names)) if (cv == c).any()}
        log("vae colour kept per colour: " + ", ".join(f"{k} {v:.2f}" for k, v in per.items()))
    return same


def make_pipeline(vae: Any, te: Any, tok: Any, unet: Any, sched: Any) -> Any:
    from diffusers import StableDiffusionPipeline

    pipe: Any = StableDiffusionPipeline(
        vae=vae,
        text_encoder=te,
        tokenizer=tok,
        unet=unet,
        scheduler=sched,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def eval_adherence(
    pipe: Any, step: int, steps: int, guidance: float, png: Path | None, colors: list[str]
) -> float:
    prods = ["mug", "t-shirt", "sneaker", "cap", "tote bag"]
    prompts, want = [], []
    for i, c in enumerate(colors):
        for k in range(2):
            p = prods[(i + k * 3) % len(prods)]
            prompts.append(f"a {c} {p}" if k == 0 else f"a photo of a {c} {p} on white")
            want.append(c)
    t = time.time()
    gen = torch.Generator().manual_seed(1234)
    imgs = pipe(prompts, num_inference_steps=steps, guidance_scale=guidance, generator=gen).images
    got = [dominant_color_name(im) for im in imgs]
    acc = float(np.mean([a == b for a, b in zip(got, want, strict=True)]))
    wrong = [f"{w}->{g}" for w, g in zip(want, got, strict=True) if w != g]
    log(
        f"eval step {step}: colour adherence {acc:.2f} ({len(imgs)} imgs, {time.time() - t:.1f}s) wrong: {wrong}"
    )
    if png is not None:
        from PIL import Image

        grid = Image.new("RGB", (64 * len(colors), 64 * 2), "white")
        for j, im in enumerate(imgs):
            grid.paste(im, (64 * (j // 2), 64 * (j % 2)))
        grid.save(png)
    return acc


def _log_every(step: int) -> int:
    return 50 if step < 1000 else 500


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - decay)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=72.0, help="total wall-clock budget")
    ap.add_argument(
        "--vae-fraction",
        type=float,
        default=0.18,
        help="share of the budget for the VAE (with --init-from: its decoder; 0 keeps the VAE as it is)",
    )
    ap.add_argument(
        "--init-from", type=Path, default=None, help="fine-tune this checkpoint (a folder this script wrote)"
    )
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-combo", type=int, default=100, help="training images per product x colour")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--vae-batch", type=int, default=16)
    ap.add_argument("--vae-lr", type=float, default=1.5e-3)
    ap.add_argument(
        "--new-weight", type=float, default=2.0, help="with --init-from: how much more often new colours are drawn"
    )
    ap.add_argument(
        "--anchor", type=float, default=0.05, help="with --init-from: weight holding known colours' latents"
    )
    ap.add_argument(
        "--probe", type=float, default=0.0, help="weight of the VAE's latent colour classifier (0: none)"
    )
    ap.add_argument(
        "--vae-decoder-only", action="store_true", help="train only the VAE's decoder (keeps the latent space)"
    )
    ap.add_argument(
        "--colors", default="", help="comma-separated subset of draw.COLORS to train on (default: all)"
    )
    ap.add_argument("--lr", type=float, default=8e-4)
    ap.add_argument("--text-dim", type=int, default=128)
    ap.add_argument("--eval-every", type=int, default=300)
    ap.add_argument("--steps", type=int, default=20, help="sampling steps used for evals and as default")
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--cfg-dropout", type=float, default=0.1)
    ap.add_argument("--device", default="cpu", help="cpu (the reference) or cuda")
    ap.add_argument("--workers", type=int, default=1, help="processes drawing the data set")
    ap.add_argument("--work", type=Path, default=Path("/tmp/demo_train"), help="scratch dir (eval grids)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from diffusers import DDPMScheduler, DPMSolverMultistepScheduler

    t0 = time.time()
    budget = args.minutes * 60.0
    args.work.mkdir(parents=True, exist_ok=True)

    # ---- data
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    x, prod_idx, col_idx = cached_dataset(args.work, args.per_combo, args.seed, args.workers)
    x_val, _, col_val = cached_dataset(args.work, 3, args.seed + 1000, args.workers)
    colors = args.colors.split(",") if args.colors else list(COLORS)
    if unknown := [c for c in colors if c not in COLORS]:
        raise SystemExit(f"unknown colour(s) {', '.join(unknown)}; choose from {', '.join(COLORS)}")
    if len(colors) < len(COLORS):
        keep = torch.tensor([list(COLORS).index(c) for c in colors])
        sel, sel_val = torch.isin(col_idx, keep), torch.isin(col_val, keep)
        x, prod_idx, col_idx = x[sel], prod_idx[sel], col_idx[sel]
        x_val, col_val = x_val[sel_val], col_val[sel_val]
        log(f"training on {len(colors)} colours: {', '.join(colors)}")
    x, x_val = x.to(dev), x_val.to(dev)
    log(f"drew {len(x)} train + {len(x_val)} held-out images in {time.time() - t0:.0f}s")

    init: Path | None = args.init_from
    if init is not None:
        init = init.resolve()
        tok = load_tokenizer(init, caption_words())
        vae, te, unet = load_models(init, dev)
        log(f"fine-tuning {init}")
    else:
        tok = build_tokenizer(caption_words(), args.work / "tokenizer")
        vae = make_vae().to(dev)
        te = unet = None
        if args.vae_fraction <= 0:
            raise SystemExit("--vae-fraction 0 keeps an existing VAE: it needs --init-from")
    for probe in ("a photo of a red ceramic mug on white", "navy and forest green tote, studio light"):
        log(f"tokens: {probe!r} -> {tok.tokenize(probe)}")

    # ---- VAE
    log(f"vae params {n_params(vae) / 1e6:.2f}M")
    if init is not None:
        log("vae before training:")
        vae_report(vae, x_val, col_val)
    # Fine-tuning: colours the checkpoint did not know are drawn more often, and images of the
    # colours it knew keep their latents near the old encoder's (the UNet has learned those).
    known = set(COLORS)
    if init is not None and (init / "chatcanvas.json").exists():
        known = set(json.loads((init / "chatcanvas.json").read_text()).get("colors", list(COLORS)))
    is_known = torch.tensor([list(COLORS)[int(c)] in known for c in col_idx], device=dev)
    weights = torch.where(is_known.cpu(), 1.0, args.new_weight).float()
    log(f"colours new to the checkpoint: {[c for c in colors if c not in known]} (weight {args.new_weight})")
    if args.vae_fraction > 0:
        anchor = None
        if init is not None and bool(is_known.any()) and args.anchor > 0 and not args.vae_decoder_only:
            ref_mu = torch.zeros((len(x), 4, 16, 16), device=dev)
            held = is_known.nonzero().flatten()
            with torch.no_grad():
                for i in range(0, len(held), 256):
                    j = held[i : i + 256]
                    ref_mu[j] = vae.encode(to_float(x[j])).latent_dist.mean
            anchor = (ref_mu, is_known, args.anchor)
        vae_seconds = budget * args.vae_fraction - (time.time() - t0)
        train_vae(
            vae,
            x,
            (x_val, col_val),
            vae_seconds,
            args.vae_batch,
            args.seed,
            base_lr=args.vae_lr,
            weights=weights if init is not None else None,
            anchor=anchor,
            probe=(col_idx.to(dev), args.probe) if args.probe > 0 else None,
            decoder_only=args.vae_decoder_only,
        )
    vae.eval()
    vae_report(vae, x_val, col_val)
    with torch.no_grad():
        lat = torch.cat(
            [vae.encode(to_float(x[i : i + 256])).latent_dist.mode() for i in range(0, len(x), 256)]
        )
    std = lat.std().item()
    if init is None:
        scaling = 1.0 / std
        vae.register_to_config(scaling_factor=scaling)
    else:  # the loaded UNet was trained on latents at this scale
        scaling = float(vae.config.scaling_factor)
    log(
        f"latents {tuple(lat.shape)} mean {lat.mean().item():.3f} std {std:.3f} -> scaling_factor {scaling:.4f}"
    )
    lat = lat * scaling
    for p in vae.parameters():
        p.requires_grad_(False)

    # ---- text encoder + UNet
    if te is None or unet is None:
        te = make_text_encoder(tok, args.text_dim).to(dev)
        unet = make_unet(args.text_dim).to(dev)
    log(f"text encoder params {n_params(te) / 1e6:.2f}M, unet params {n_params(unet) / 1e6:.2f}M")
    train_sched: Any = DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        clip_sample=False,
        steps_offset=1,
    )
    infer_sched = DPMSolverMultistepScheduler.from_config(
        train_sched.config, algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="zero"
    )

    combo = (prod_idx * len(COLORS) + col_idx).to(dev)
    cap_ids = []
    for p in PRODUCTS:
        for c in COLORS:
            caps = all_captions(p, c)
            ids = tok(
                caps, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
            ).input_ids
            cap_ids.append(ids)
    n_caps = min(len(c) for c in cap_ids)
    cap_table = torch.stack([c[:n_caps] for c in cap_ids]).to(dev)  # [combos, n_caps, 77]
    empty_ids = tok([""], padding="max_length", max_length=77, return_tensors="pt").input_ids[0].to(dev)
    log(
        f"{cap_table.shape[1]} captions per combo, e.g. {tok.decode(cap_table[0, 5], skip_special_tokens=True)!r}"
    )

    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2, betas=(0.9, 0.99))
    ema_unet, ema_te = copy.deepcopy(unet).eval(), copy.deepcopy(te).eval()
    for m in (ema_unet, ema_te):
        for p in m.parameters():
            p.requires_grad_(False)
    pipe = make_pipeline(vae, ema_te, tok, ema_unet, infer_sched)

    g = torch.Generator().manual_seed(args.seed + 1)
    gd = torch.Generator(device=dev).manual_seed(args.seed + 2)
    acp = train_sched.alphas_cumprod.to(dev)
    unet_start = time.time()
    save_reserve = 45.0
    unet_seconds = budget - (unet_start - t0) - save_reserve
    log(f"unet/text training for {unet_seconds / 60:.1f} min")
    step = 0
    best = -1.0
    while True:
        elapsed = time.time() - unet_start
        if elapsed > unet_seconds:
            break
        frac = elapsed / unet_seconds
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for pg in opt.param_groups:
            pg["lr"] = lr
        unet.train()
        te.train()
        if init is None:
            idx = torch.randint(0, len(lat), (args.batch,), generator=g).to(dev)
        else:
            idx = torch.multinomial(weights, args.batch, replacement=True, generator=g).to(dev)
        z0 = lat[idx]
        ci = torch.randint(0, n_caps, (args.batch,), generator=g).to(dev)
        ids = cap_table[combo[idx], ci]
        drop = (torch.rand(args.batch, generator=g) < args.cfg_dropout).to(dev)
        ids[drop] = empty_ids
        noise = torch.randn(z0.shape, generator=gd, device=dev)
        t = torch.randint(0, 1000, (args.batch,), generator=g).to(dev)
        a = acp[t].sqrt().view(-1, 1, 1, 1)
        s = (1 - acp[t]).sqrt().view(-1, 1, 1, 1)
        zt = a * z0 + s * noise
        target = a * noise - s * z0
        enc = te(ids)[0]
        pred = unet(zt, t, encoder_hidden_states=enc).sample
        loss = F.mse_loss(pred, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(0.998, (1 + step) / (10 + step))
        ema_update(ema_unet, unet, decay)
        ema_update(ema_te, te, decay)
        if step % (25 if dev.type == "cpu" else 500) == 0:
            rate = step / (time.time() - unet_start)
            log(
                f"step {step} loss {loss.item():.4f} lr {lr:.2e} ({rate:.2f} it/s, {frac * 100:.0f}% of time)"
            )
        if step % args.eval_every == 0:
            best = max(
                best, eval_adherence(pipe, step, args.steps, args.guidance, args.work / f"eval_{step}.png", colors)
            )
    log(f"trained {step} steps in {(time.time() - unet_start) / 60:.1f} min")
    eval_adherence(pipe, step, args.steps, args.guidance, args.work / "eval_final.png", colors)

    # ---- save (fp16 weights; loads fine with torch_dtype=float32)
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)

    def fp16(m: torch.nn.Module) -> Any:
        return copy.deepcopy(m).to("cpu", torch.float16)

    save = make_pipeline(fp16(vae), fp16(ema_te), tok, fp16(ema_unet), infer_sched)
    save.save_pretrained(out, safe_serialization=True)
    for cfg in out.glob("*/config.json"):  # a fine-tuned model would record where it was loaded from
        meta = json.loads(cfg.read_text())
        if meta.pop("_name_or_path", None) is not None:
            cfg.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    (out / "chatcanvas.json").write_text(
        json.dumps(
            {
                "name": "chatcanvas-demo",
                "demo": True,
                "default_steps": args.steps,
                "default_guidance": args.guidance,
                "native_size": 64,
                "trained_on": "procedural product photos (chatcanvas.generation.demo.draw)",
                "products": list(PRODUCTS),
                "colors": colors,
            },
            indent=2,
        )
        + "\n"
    )
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log(f"saved to {out} ({size / 1e6:.1f} MB) total time {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
