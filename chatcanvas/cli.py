"""The ``chatcanvas`` command. Imports stay light here: heavy modules load inside each command."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatcanvas.config import Settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chatcanvas", description="A chat assistant that paints.")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="make images from a prompt (no rewriting)")
    g.add_argument("prompt", nargs="?", help="what to draw")
    g.add_argument("-o", "--out", type=Path, help="output PNG (or folder); default: <image id>.png here")
    g.add_argument("--seed", type=int)
    g.add_argument("--steps", type=int)
    g.add_argument("--size", help="WxH, e.g. 512x512")
    g.add_argument("--guidance", type=float)
    g.add_argument("--negative", default="", help="negative prompt")
    g.add_argument("--count", type=int, default=1)
    g.add_argument("--model", help="diffusers folder, .safetensors file or hub id")
    g.add_argument("--backend", choices=["local", "openai"])
    g.add_argument("--init-image", type=Path, help="start from this image (image-to-image)")
    g.add_argument("--strength", type=float, default=0.75, help="how far to move from the init image (0-1)")
    g.add_argument("--mask", type=Path, help="inpaint where this mask is white")
    g.add_argument("--from-png", type=Path, help="make the image in this PNG's recipe again (ours or A1111's)")
    g.add_argument("--sampler", help='an AUTOMATIC1111 sampler name, e.g. "Euler a", "DPM++ 2M Karras"')
    g.add_argument("--schedule", help="schedule type: Karras, Exponential, SGM Uniform")
    g.add_argument("--hires", type=float, metavar="SCALE", help="hires fix: draw, enlarge by SCALE, refine")
    g.add_argument("--hires-steps", type=int, metavar="N", help="steps of the hires pass (default: --steps)")
    g.add_argument("--hires-denoise", type=float, metavar="D", help="denoising strength of the hires pass (0.7)")

    a = sub.add_parser("ask", help="one chat turn through the assistant (rewriter + tools + backend)")
    a.add_argument("text")
    a.add_argument("-o", "--out", type=Path, default=Path("."), help="folder for the images")
    a.add_argument("--dry-run", action="store_true", help="print the specs as JSON lines; generate nothing")

    sub.add_parser("chat", help="a conversation with the assistant in the terminal")

    r = sub.add_parser("run", help="start every configured adapter (web always; Slack, Discord with tokens)")
    r.add_argument("--adapters", help="comma list of web,slack,discord (default: web + those configured)")

    j = sub.add_parser("jobs", help="list, show, cancel or retry jobs")
    j.add_argument("action", nargs="?", choices=["list", "show", "cancel", "retry"], default="list")
    j.add_argument("job_id", nargs="?")
    j.add_argument("--status", choices=["queued", "running", "done", "failed", "cancelled"])

    h = sub.add_parser("history", help="recent images with their recipes")
    h.add_argument("--user", help="platform:user (default: everyone)")
    h.add_argument("-n", type=int, default=20)

    sub.add_parser("usage", help="images, GPU-seconds and OpenAI spend, by user and by server")

    au = sub.add_parser("audit", help="recent refused requests: who, where, when, which rule")
    au.add_argument("--limit", type=int, default=50, help="how many (newest first)")
    au.add_argument("--rule", help="only this rule or its family, e.g. moderation, blocked_terms")
    au.add_argument("--json", action="store_true", help="one JSON object a line")

    vf = sub.add_parser("verify", help="check images' Content Credentials and watermark (exit 0: all ours)")
    vf.add_argument("files", nargs="+", type=Path, metavar="FILE")
    vf.add_argument("--json", action="store_true", help="print the reports as JSON")

    sub.add_parser("loras", help="the LoRA files in CHATCANVAS_LORA_DIR (use them as <lora:name:weight>)")

    up = sub.add_parser("upscale", help="enlarge an image 2x or 4x (CHATCANVAS_UPSCALER, else Lanczos)")
    up.add_argument("file", type=Path, metavar="FILE")
    up.add_argument("--scale", type=int, choices=[2, 4], default=2)
    up.add_argument("--denoise", type=float, help="image-to-image pass after enlarging (0: none)")
    for sp in (up, op := sub.add_parser("outpaint", help="extend an image: zoom out, pan, banner")):
        sp.add_argument("-o", "--out", type=Path, help="output PNG; default: <image id>.png here")
        sp.add_argument("--seed", type=int)
        sp.add_argument("--steps", type=int)
        sp.add_argument("--model", help="diffusers folder, .safetensors file or hub id")
    op.add_argument("file", type=Path, metavar="FILE")
    for side in ("left", "right", "up", "down"):
        op.add_argument(f"--{side}", type=int, default=0, metavar="PX", help=f"pixels to add {side}")
    op.add_argument("--zoom-out", type=float, choices=[1.5, 2.0], help="the canvas 1.5x or 2x, image centred")
    op.add_argument("--banner", action="store_true", help="widen (or heighten) to a 3:1 banner")
    op.add_argument("--prompt", help="what to paint around it (default: the image's own prompt)")
    op.add_argument("--strength", type=float, default=0.9, help="how freely the new area is painted (0-1)")

    from chatcanvas.cli_workers import add_parser as add_workers_parser  # stdlib only at import

    add_workers_parser(sub)
    from chatcanvas.cli_ops import add_parsers as add_ops_parsers  # admin, doctor; stdlib only at import

    add_ops_parsers(sub)
    return p


def _settings(**overrides: Any) -> Settings:
    from chatcanvas import provenance
    from chatcanvas.config import load_settings

    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    provenance.configure(settings)  # the images this process writes are signed under these settings
    return settings


def _cli_user() -> Any:
    from chatcanvas.types import Place, UserRef

    try:
        name = getpass.getuser()
    except Exception:
        name = "cli"
    return UserRef(platform="cli", user=name), Place(platform="cli", channel="terminal")


def _demo_notice(settings: Settings) -> None:
    from chatcanvas import messages as m

    if settings.using_demo_model and settings.backend == "local":
        print(m.DEMO_MODEL_IN_USE, file=sys.stderr)


# ---------------------------------------------------------------- commands


async def _generate(args: argparse.Namespace) -> int:
    from chatcanvas.adapters.terminal import TerminalRenderer
    from chatcanvas.app import build_app
    from chatcanvas.bot.assistant import spec_from_recipe
    from chatcanvas.errors import SpecError
    from chatcanvas.types import ImageSpec

    overrides: dict[str, Any] = {"model": args.model, "backend": args.backend}
    if args.from_png:
        spec = _spec_from_png(args, overrides, spec_from_recipe)
    else:
        if not args.prompt:
            raise SpecError("Give a prompt, or --from-png FILE.")
        w = h = None
        if args.size:
            ws, _, hs = args.size.lower().partition("x")
            if not ws.isdigit() or (hs and not hs.isdigit()):
                raise SpecError(f"--size {args.size!r}: expected WxH like 512x512.")
            w, h = int(ws), int(hs or ws)
        try:
            spec = ImageSpec(
                prompt=args.prompt,
                negative_prompt=args.negative,
                width=w,
                height=h,
                count=args.count,
                seed=args.seed,
                steps=args.steps,
                guidance=args.guidance,
                init_image=str(args.init_image) if args.init_image else None,
                mask_image=str(args.mask) if args.mask else None,
                strength=args.strength,
                **_sampling_args(args),
            )
        except ValueError as exc:
            raise SpecError(_first_error(exc)) from None
        for f in (args.init_image, args.mask):
            if f is not None and not f.is_file():
                raise SpecError(f"No such file: {f}")
    settings = _settings(**overrides)
    _demo_notice(settings)
    ctx = await build_app(settings)
    try:
        who, where = _cli_user()
        if not args.from_png and (args.init_image or args.mask):
            spec = await _import_local_images(ctx.store, spec, args, settings, who, where)
        out = TerminalRenderer(args.out, out_is_file=bool(args.out and args.out.suffix))
        return await out.consume(ctx.assistant.generate(spec, who, where), expected=spec.count)
    finally:
        await ctx.aclose()


async def _import_local_images(
    store: Any, spec: Any, args: argparse.Namespace, settings: Settings, who: Any, where: Any
) -> Any:
    """``--init-image`` / ``--mask`` files into the store (checked, metadata stripped); the spec takes ids."""
    from chatcanvas.images import import_image_file

    update = {}
    for field, path in (("init_image", args.init_image), ("mask_image", args.mask)):
        if path is not None:
            update[field] = await asyncio.to_thread(
                import_image_file, store, path, settings, owner=who, place=where
            )
    return spec.model_copy(update=update)


def _sampling_args(args: argparse.Namespace) -> dict[str, Any]:
    """--sampler, --schedule, --hires, --hires-steps, --hires-denoise as given (ImageSpec fields)."""
    given = {
        "sampler": args.sampler,
        "schedule": args.schedule,
        "hires_scale": args.hires,
        "hires_steps": args.hires_steps,
        "hires_denoise": args.hires_denoise,
    }
    return {k: v for k, v in given.items() if v is not None}


def _spec_from_png(args: argparse.Namespace, overrides: dict[str, Any], spec_from_recipe: Any) -> Any:
    """The request in ``--from-png FILE`` (ours exactly, A1111's field by field); prints what is not honoured.

    Options given with it (--seed, --steps, --guidance, --sampler, --hires, ...) take precedence.
    """
    from chatcanvas import messages as m
    from chatcanvas.config import load_settings
    from chatcanvas.errors import SpecError
    from chatcanvas.generation.diffusers_backend import resolve_model_ref
    from chatcanvas.generation.metadata import model_matches, request_from_png
    from chatcanvas.types import ImageSpec

    try:
        req = request_from_png(args.from_png.read_bytes())
    except (OSError, ValueError) as exc:
        raise SpecError(f"--from-png {args.from_png}: {exc}") from None
    overrides["backend"] = args.backend or req.backend
    skipped = list(req.not_honoured)
    if overrides["backend"] == "local" and not args.model:
        if req.exact:
            overrides["model"] = None if resolve_model_ref(req.model) == resolve_model_ref("") else req.model
        elif req.model and not model_matches(req.model, req.model_hash, load_settings().model_ref):
            skipped.insert(0, f"Model: {req.model}" + (f" [{req.model_hash}]" if req.model_hash else ""))
    fields = dict(req.spec)
    fields["prompt"], missing = _without_missing_loras(fields["prompt"], load_settings())
    skipped += missing
    if req.recipe is not None:  # our own recipe: everything the assistant carries, then ours on top
        fields = {**spec_from_recipe(req.recipe).model_dump(), **fields}
    fields.update({k: v for k, v in (("seed", args.seed), ("steps", args.steps), ("guidance", args.guidance)) if v is not None})
    fields.update(_sampling_args(args))
    try:
        spec = ImageSpec(**fields)
    except ValueError as exc:
        raise SpecError(_first_error(exc)) from None
    if skipped:
        print(m.FROM_PNG_NOT_HONOURED.format(fields="; ".join(skipped)), file=sys.stderr)
    return spec


def _without_missing_loras(prompt: str, settings: Settings) -> tuple[str, list[str]]:
    """The prompt without ``<lora:...>`` tags naming LoRAs not in CHATCANVAS_LORA_DIR, and those tags."""
    import re

    from chatcanvas.generation.lora import available_loras

    known = {name.casefold() for name in available_loras(settings)}
    missing: list[str] = []

    def drop(mt: re.Match[str]) -> str:
        if mt.group(1).strip().casefold() in known:
            return mt.group(0)
        missing.append(f"LoRA {mt.group(0)} (not in CHATCANVAS_LORA_DIR)")
        return ""

    out = re.sub(r"<lora:([^:>]+)(?::[^>]*)?>", drop, prompt, flags=re.I)
    return (" ".join(out.split()).strip(" ,") if missing else prompt), missing


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        e = errors()[0]
        msg = str(e["msg"]).removeprefix("Value error, ")
        loc = ".".join(str(x) for x in e["loc"])
        return f"{loc}: {msg}" if loc else msg
    return str(exc)


async def _ask(args: argparse.Namespace) -> int:
    from chatcanvas.cli_ask import ask

    settings = _settings()
    if not args.dry_run:
        _demo_notice(settings)
    return await ask(settings, args.text, args.out, args.dry_run)


async def _chat(args: argparse.Namespace) -> int:
    from chatcanvas.adapters.terminal import TerminalRenderer
    from chatcanvas.app import build_app
    from chatcanvas.types import ChatTurn

    settings = _settings()
    _demo_notice(settings)
    ctx = await build_app(settings)
    who, where = _cli_user()
    print("Say what you'd like to see (empty line or Ctrl-D to quit).", file=sys.stderr)
    try:
        while True:
            try:
                text = await asyncio.to_thread(input, "you> ")
            except EOFError:
                break
            if not text.strip():
                break
            out = TerminalRenderer(Path("."))
            await out.consume(ctx.assistant.handle(ChatTurn(who=who, where=where, text=text)))
    finally:
        await ctx.aclose()
    return 0


async def _run(args: argparse.Namespace) -> int:
    import signal

    from chatcanvas.app import build_app

    settings = _settings()
    wanted = set((args.adapters or "").split(",")) - {""}
    if not wanted:
        wanted = {"web"}
        if settings.slack_bot_token:
            wanted.add("slack")
        if settings.discord_token:
            wanted.add("discord")
    unknown = wanted - {"web", "slack", "discord"}
    if unknown:
        from chatcanvas.errors import ConfigError

        raise ConfigError(
            f"Unknown adapter(s) {', '.join(sorted(unknown))}; --adapters takes web, slack, discord."
        )
    _demo_notice(settings)
    ctx = await build_app(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[None]] = []
    for name in sorted(wanted):
        if name == "web":
            from chatcanvas.adapters.web import serve as serve_web

            tasks.append(asyncio.create_task(serve_web(ctx), name="web"))
        elif name == "slack":
            from chatcanvas.adapters.slack import serve as serve_slack

            tasks.append(asyncio.create_task(serve_slack(ctx), name="slack"))
        elif name == "discord":
            from chatcanvas.adapters.discord import serve as serve_discord

            tasks.append(asyncio.create_task(serve_discord(ctx), name="discord"))
    if settings.metrics_port:  # /metrics, /healthz, /readyz on their own port (no API key asked there)
        from chatcanvas.ops.server import serve_ops

        tasks.append(asyncio.create_task(serve_ops(ctx.assistant, settings.metrics_host, settings.metrics_port), name="metrics"))
    print(f"chatcanvas running: {', '.join(sorted(wanted))} (Ctrl-C or SIGTERM to stop)", file=sys.stderr)
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    for t in done:
        if t is not waiter and t.exception() is not None:
            exc = t.exception()
            print(f"error: adapter {t.get_name()} stopped: {exc}", file=sys.stderr)
            code = getattr(exc, "exit_code", 1)
    print("stopping: finishing running jobs…", file=sys.stderr)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    waiter.cancel()
    await ctx.aclose()
    return code


async def _jobs(args: argparse.Namespace) -> int:
    from chatcanvas.generation.engine import Engine
    from chatcanvas.generation.jobs import JobStatus
    from chatcanvas.store import Store

    settings = _settings()
    store = Store(settings.data_dir)
    engine = Engine(settings, store)
    try:
        if args.action == "list":
            status = JobStatus(args.status) if args.status else None
            for j in engine.jobs(status=status):
                print(f"{j.id}  {j.status:<9}  {j.who.platform}:{j.who.user:<12}  {j.spec.prompt[:60]}")
            return 0
        if not args.job_id:
            print(f"error: jobs {args.action} needs a job id", file=sys.stderr)
            return 2
        rec = engine.job(args.job_id)
        if rec is None:
            print(f"error: no job {args.job_id}", file=sys.stderr)
            return 1
        if args.action == "show":
            print(rec.model_dump_json(indent=2))
        elif args.action == "cancel":
            if rec.status.finished:
                print(f"job {rec.id} already {rec.status}", file=sys.stderr)
                return 1
            # Another process owns the queue; marking it here makes that engine skip or stop it.
            engine.table.set_status(rec.id, JobStatus.CANCELLED, "cancelled from the command line")
            print(f"cancelled {rec.id}")
        elif args.action == "retry":
            engine.table.set_status(rec.id, JobStatus.QUEUED)
            print(f"{rec.id} queued again; it runs when chatcanvas is running")
        return 0
    finally:
        store.close()


async def _history(args: argparse.Namespace) -> int:
    from chatcanvas.generation.metadata import recipe_to_parameters
    from chatcanvas.store import Store
    from chatcanvas.types import Recipe

    settings = _settings()
    store = Store(settings.data_dir)
    try:
        sql = "SELECT i.id, i.path, i.recipe, j.platform, j.user_id, i.created FROM images i JOIN jobs j ON j.id = i.job_id"
        params: tuple[object, ...] = ()
        if args.user:
            plat, _, user = args.user.partition(":")
            sql += " WHERE j.platform = ? AND j.user_id = ?"
            params = (plat, user)
        for row in store.execute(sql + " ORDER BY i.created DESC LIMIT ?", (*params, args.n)):
            print(f"# {row['id']}  {row['platform']}:{row['user_id']}  {row['path']}")
            print(recipe_to_parameters(Recipe.model_validate_json(row["recipe"])))
            print()
    finally:
        store.close()
    return 0


async def _usage(args: argparse.Namespace) -> int:
    from chatcanvas.cli_ops import usage_tables

    print(usage_tables(_settings()))
    return 0


async def _audit(args: argparse.Namespace) -> int:
    from chatcanvas.safety.audit import format_refusals, refusals
    from chatcanvas.store import Store

    settings = _settings()
    store = Store(settings.data_dir)
    try:
        out = format_refusals(refusals(store, limit=args.limit, rule=args.rule), as_json=args.json)
        if out:
            print(out)
    finally:
        store.close()
    return 0


async def _verify(args: argparse.Namespace) -> int:
    from chatcanvas.provenance.render import verify_files

    settings = _settings()
    return await asyncio.to_thread(verify_files, args.files, as_json=args.json, out=sys.stdout, settings=settings)


async def _ops(args: argparse.Namespace) -> int:  # admin, doctor (cli_ops.py); doctor reads the settings itself
    from chatcanvas.cli_ops import run_admin, run_doctor

    return await run_doctor(args) if args.command == "doctor" else await run_admin(args, _settings())


async def _workers(args: argparse.Namespace) -> int:
    from chatcanvas.cli_workers import run_workers

    return await run_workers(args, _settings())


async def _loras(args: argparse.Namespace) -> int:
    from chatcanvas import messages as m
    from chatcanvas.generation.lora import available_loras, describe

    settings = _settings()
    if settings.lora_dir is None:
        print(m.LORA_LIST_UNSET, file=sys.stderr)
        return 1
    files = available_loras(settings)
    for f in files.values():
        print(describe(f))
    if not files:
        print(m.LORA_LIST_EMPTY.format(folder=settings.lora_dir), file=sys.stderr)
    return 0


async def _enlarge(args: argparse.Namespace) -> int:
    """``upscale`` and ``outpaint``: the file is stored as an upload, then one job through the engine."""
    from chatcanvas.adapters.terminal import TerminalRenderer
    from chatcanvas.app import build_app
    from chatcanvas.errors import SpecError
    from chatcanvas.generation import outpaint, upscale
    from chatcanvas.generation.metadata import recipe_from_png
    from chatcanvas.images import import_image_file, load_upload
    from chatcanvas.types import Margins

    if not args.file.is_file():
        raise SpecError(f"No such file: {args.file}")
    settings = _settings(model=args.model, backend="local")
    data = args.file.read_bytes()  # noqa: ASYNC240 - a small local file, before any work starts
    size = load_upload(data, settings).size
    try:
        recipe = recipe_from_png(data)
    except ValueError:
        recipe = None
    ctx = await build_app(settings)
    try:
        who, where = _cli_user()
        ref = await asyncio.to_thread(import_image_file, ctx.store, args.file, settings, owner=who, place=where)
        if args.command == "upscale":
            spec = upscale.upscale_spec(ref, size, args.scale, settings, recipe, args.denoise, args.seed)
        else:
            w, h = size
            if args.zoom_out:
                margins = outpaint.zoom_out_margins(w, h, args.zoom_out)
            elif args.banner:
                margins = outpaint.banner_margins(w, h)
            else:
                margins = Margins(left=args.left, right=args.right, up=args.up, down=args.down)
            spec = outpaint.outpaint_spec(
                ref,
                size,
                margins,
                settings,
                recipe,
                args.prompt,
                fit=False,
                seed=args.seed,
                strength=args.strength,
                steps=args.steps,
            )
        if args.steps is not None:
            spec = spec.model_copy(update={"steps": args.steps})
        out = TerminalRenderer(args.out, out_is_file=bool(args.out and args.out.suffix))
        return await out.consume(ctx.assistant.run_specs([spec], who, where), expected=1)
    finally:
        await ctx.aclose()


COMMANDS = {
    "loras": _loras,
    "upscale": _enlarge,
    "outpaint": _enlarge,
    "generate": _generate,
    "ask": _ask,
    "chat": _chat,
    "run": _run,
    "jobs": _jobs,
    "history": _history,
    "usage": _usage,
    "audit": _audit,
    "verify": _verify,
    "workers": _workers,
    "admin": _ops,
    "doctor": _ops,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s",
    )
    if not args.verbose:
        for noisy in ("diffusers", "transformers", "httpx"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        import os
        import warnings

        warnings.filterwarnings("ignore")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from chatcanvas.errors import ChatcanvasError

    try:
        from chatcanvas.safety.redact import install_redaction

        if args.command != "doctor":  # doctor reports a bad setting as one of its checks
            from chatcanvas.ops.logs import configure_logging

            settings = _settings()
            configure_logging(settings, verbose=args.verbose)  # CHATCANVAS_LOG_FORMAT: text or JSON lines
            install_redaction(settings)  # no token or key reaches a log line from here on
        return asyncio.run(COMMANDS[args.command](args))
    except ChatcanvasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
