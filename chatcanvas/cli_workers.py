"""``chatcanvas workers``: the image workers as a Ray Serve application, until SIGTERM or Ctrl-C.

With ``CHATCANVAS_RAY_ADDRESS`` it joins that cluster; without, it starts a local Ray instance with
this machine's CPUs (no dashboard, no Serve HTTP proxy: the bot calls the application through its
handle). It prints a line starting ``ready`` once every replica has loaded the model; on SIGTERM or
Ctrl-C it deletes the application (and stops the local Ray it started).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    w = sub.add_parser("workers", help="run the image workers on Ray Serve (for CHATCANVAS_BACKEND=ray)")
    w.add_argument("--replicas", type=int, help="this many replicas (default: autoscale MIN..MAX_REPLICAS)")
    w.add_argument("--gpus-per-replica", type=float, help="GPUs each replica reserves (0: CPU replicas)")
    w.add_argument("--max-batch", type=int, help="requests a replica runs together (CHATCANVAS_RAY_MAX_BATCH)")


class _Workers:
    """Start (blocking; run in a thread) and stop the application."""

    def __init__(self, settings: Any, args: argparse.Namespace) -> None:
        self.settings = settings
        self.args = args
        self.started_ray = False
        self.address = ""
        self.model = ""

    def start(self, after_init: Any = None) -> int:
        import ray
        from ray import serve

        from chatcanvas.generation.ray_app import WorkerOptions, application

        s, args = self.settings, self.args
        quiet = not args.verbose
        if s.ray_address:
            ray.init(address=s.ray_address, logging_level=logging.WARNING, log_to_driver=not quiet)
        else:
            ray.init(
                num_cpus=os.cpu_count() or 1,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=not quiet,
            )
            self.started_ray = True
        if after_init is not None:
            after_init()  # ray.init set signal handlers of its own
        self.address = str(ray.get_runtime_context().gcs_address)
        opts = WorkerOptions.from_settings(s, args.replicas, args.gpus_per_replica, args.max_batch)
        if self.started_ray and opts.gpus_per_replica == 0:  # CPU replicas share this machine's cores
            cpus = float(ray.cluster_resources().get("CPU", 1))
            opts = opts.model_copy(update={"cpus_per_replica": min(1.0, cpus / max(1, opts.initial_replicas))})
        serve.start(proxy_location="Disabled")
        handle = serve.run(application(opts), name=s.ray_app, route_prefix=None)
        with ThreadPoolExecutor(1) as pool:  # a handle's sync result is refused on the event loop's thread
            self.model = str(pool.submit(lambda: handle.info.remote().result()["model_name"]).result())
        return opts.initial_replicas

    def stop(self) -> None:
        import ray
        from ray import serve

        if not ray.is_initialized():
            return
        with contextlib.suppress(Exception):
            serve.delete(self.settings.ray_app)
        if self.started_ray:
            with contextlib.suppress(Exception):
                serve.shutdown()
            ray.shutdown()


class _Stop(Exception):
    pass


async def run_workers(args: argparse.Namespace, settings: Any) -> int:
    """Runs on the main thread, blocking: the processes a local Ray starts are tied to the thread that
    started them (they die with it), so Ray is started, and stopped, here."""
    from chatcanvas import messages as m
    from chatcanvas.errors import BackendError, ConfigError
    from chatcanvas.generation.ray_link import use_token_auth

    if settings.ray_address and settings.ray_address != "auto":
        use_token_auth()  # before Ray reads its configuration, at import
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError:
        raise ConfigError(m.RAY_NOT_INSTALLED) from None
    if args.replicas is not None and args.replicas < 1:
        raise ConfigError("--replicas must be at least 1.")
    if args.max_batch is not None and not 1 <= args.max_batch <= 64:
        raise ConfigError("--max-batch must be between 1 and 64.")

    state = {"stop": False, "starting": True}

    def on_signal(signum: int, frame: Any) -> None:
        state["stop"] = True
        if state["starting"]:  # interrupt the deployment
            raise _Stop()

    def install() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)

    old = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    install()
    workers = _Workers(settings, args)
    try:
        try:
            replicas = workers.start(install)
        except _Stop:
            replicas = 0
        except Exception as exc:  # a model that does not load, a cluster that cannot be reached
            detail = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__
            raise BackendError(m.RAY_WORKERS_FAILED.format(detail=detail)) from None
        state["starting"] = False
        if not state["stop"]:
            print(
                m.RAY_WORKERS_READY.format(
                    replicas=replicas, model=workers.model, address=workers.address, app=settings.ray_app
                ),
                flush=True,
            )
        while not state["stop"]:
            time.sleep(0.2)  # noqa: ASYNC251 - this command owns the loop; nothing else runs on it
        print(m.RAY_WORKERS_STOPPING, file=sys.stderr, flush=True)
    finally:
        state["starting"] = False
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not cut the clean-up short
        try:
            workers.stop()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    print(m.RAY_WORKERS_STOPPED, file=sys.stderr, flush=True)
    return 0
