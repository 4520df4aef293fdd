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
    g.add_argument("--from-png", type=Path, help="make the image in this PNG's recipe again")

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

    sub.add_parser("usage", help="spending on the OpenAI image API, by user")
    return p


def _settings(**overrides: Any) -> Settings:
    from chatcanvas.config import load_settings

    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


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
        from chatcanvas.generation.diffusers_backend import resolve_model_ref
        from chatcanvas.generation.metadata import recipe_from_png

        recipe = recipe_from_png(args.from_png.read_bytes())
        spec = spec_from_recipe(recipe)
        if recipe.backend == "local" and not args.model:
            overrides["model"] = (
                None if resolve_model_ref(recipe.model) == resolve_model_ref("") else recipe.model
            )
        overrides["backend"] = args.backend or recipe.backend
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
            )
        except ValueError as exc:
            raise SpecError(_first_error(exc)) from None
        for f in (args.init_image, args.mask):
            if f is not None and not f.is_file():
                raise SpecError(f"No such file: {f}")
    settings = _settings(**overrides)
    _demo_notice(settings)
    if spec.init_image:
        from chatcanvas.images import load_upload

        load_upload(Path(spec.init_image).read_bytes(), settings)  # noqa: ASYNC240 - before any work starts
    ctx = await build_app(settings)
    try:
        who, where = _cli_user()
        out = TerminalRenderer(args.out, out_is_file=bool(args.out and args.out.suffix))
        return await out.consume(ctx.assistant.generate(spec, who, where), expected=spec.count)
    finally:
        await ctx.aclose()


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        e = errors()[0]
        return f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
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
    from chatcanvas.generation.spending import usage_report
    from chatcanvas.store import Store

    settings = _settings()
    store = Store(settings.data_dir)
    try:
        print(usage_report(store, settings))
    finally:
        store.close()
    return 0


COMMANDS = {
    "generate": _generate,
    "ask": _ask,
    "chat": _chat,
    "run": _run,
    "jobs": _jobs,
    "history": _history,
    "usage": _usage,
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
        return asyncio.run(COMMANDS[args.command](args))
    except ChatcanvasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
