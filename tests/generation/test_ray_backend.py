"""The ray backend against a local Ray instance: two CPU replicas of the tiny checkpoint.

One Ray start for the module (``ray.init(num_cpus=2)``, ``serve.run``); the bot side is the real
engine with ``CHATCANVAS_BACKEND=ray``, talking to the replicas through its link process.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("ray.serve")

from chatcanvas import messages as m  # noqa: E402
from chatcanvas.config import DEMO_MODEL_DIR, Settings  # noqa: E402
from chatcanvas.generation.base import StepInfo  # noqa: E402
from chatcanvas.generation.diffusers_backend import DiffusersBackend  # noqa: E402
from chatcanvas.generation.engine import Engine  # noqa: E402
from chatcanvas.generation.jobs import JobStatus  # noqa: E402
from chatcanvas.generation.ray_backend import RayBackend, WorkersDown  # noqa: E402
from chatcanvas.store import Store  # noqa: E402
from chatcanvas.types import Failed, Images, ImageSpec, Mode, Place, Progress, UserRef  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]

HERE = Place(platform="test", channel="shop")
APP = "chatcanvas-test"


def px(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def deploy(model_dir: Path) -> None:
    from ray import serve

    from chatcanvas.generation.ray_app import WorkerOptions, application

    opts = WorkerOptions(settings={"model": str(model_dir), "default_steps": 2}, replicas=2, max_batch=4)
    serve.run(application(opts), name=APP, route_prefix=None)


@pytest.fixture(scope="module")
def cluster(tiny_model_dir: Path) -> Iterator[str]:
    """A local Ray instance with the workers deployed; yields its address."""
    import ray
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(proxy_location="Disabled")
        deploy(tiny_model_dir)
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        serve.shutdown()
        ray.shutdown()


def bot_settings(tmp_path: Path, model: Path | str, address: str, **extra: Any) -> Settings:
    return Settings(
        model=str(model),
        data_dir=tmp_path / "bot",
        default_steps=2,
        batch_wait_ms=0,
        backend="ray",
        ray_address=address,
        ray_app=APP,
        **extra,
    )


class Bot:
    """The engine with the ray backend, and the one backend instance it uses (to look inside)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.data_dir)
        self.backend = RayBackend(settings)
        self.engine = Engine(settings, self.store, {"ray": lambda: self.backend})

    async def __aenter__(self) -> Bot:
        await self.engine.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.shutdown(drain_timeout=0)

    async def run(self, spec: ImageSpec, user: str = "ana") -> list[object]:
        rec = await self.engine.submit(spec, UserRef(platform="test", user=user, server="s"), HERE)
        return [ev async for ev in self.engine.follow(rec.id)]


def drawn_mug() -> bytes:
    """A mug shape drawn here, to start an image-to-image request from."""
    im = Image.new("RGB", (32, 32), (236, 232, 224))
    d = ImageDraw.Draw(im)
    d.rounded_rectangle((8, 9, 21, 26), radius=3, fill=(30, 60, 160))
    d.arc((18, 13, 27, 22), 270, 90, fill=(30, 60, 160), width=2)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


async def test_same_pixels_and_recipe_as_in_process(cluster: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    s = bot_settings(tmp_path, tiny_model_dir, cluster)
    async with Bot(s) as bot:
        init = bot.store.put_upload(drawn_mug())
        asks = [
            ImageSpec(prompt="a forest green cap on a white table", seed=7, steps=3),
            ImageSpec(prompt="the same mug in navy, studio light", seed=11, steps=4, init_image=init, strength=0.6),
        ]
        remote = [await bot.run(spec) for spec in asks]
    local = DiffusersBackend(s.model_copy(update={"backend": "local"}))
    for spec, events in zip(asks, remote, strict=True):
        done = events[-1]
        assert isinstance(done, Images), events[-1]
        progress = [e for e in events if isinstance(e, Progress)]  # in order (throttled), up to the last
        steps = [p.step for p in progress]
        assert steps == sorted(set(steps)) and steps[0] >= 1
        assert progress and progress[-1].step == progress[-1].total
        want = (await local.generate([local.resolve(spec)]))[0]
        got = done.images[0]
        assert np.array_equal(px(got.png), px(want.png))
        assert got.recipe == want.recipe
    assert remote[1][-1].images[0].recipe.mode == Mode.IMG2IMG  # type: ignore[attr-defined]
    await local.aclose()


async def test_jobs_from_many_users_spread_over_both_replicas(cluster: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    s = bot_settings(tmp_path, tiny_model_dir, cluster, batch_size=1)
    async with Bot(s) as bot:
        colours = ["red", "navy", "mustard", "sage", "coral", "charcoal", "teal", "cream"]
        results = await asyncio.gather(
            *(bot.run(ImageSpec(prompt=f"a {c} tote bag", seed=i, steps=6), user=f"u{i}") for i, c in enumerate(colours))
        )
        assert all(isinstance(r[-1], Images) for r in results)
        assert len(bot.backend.served) == 2, bot.backend.served  # both replicas made images
        assert sum(bot.backend.served.values()) == len(colours)


async def test_requests_that_meet_on_a_replica_run_as_one_pipeline_call(
    cluster: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """More requests at once than replicas: those waiting on a replica are run together (@serve.batch),
    and each still gets the pixels of its own seed."""
    s = bot_settings(tmp_path, tiny_model_dir, cluster)
    be = RayBackend(s)
    local = DiffusersBackend(s.model_copy(update={"backend": "local"}))
    try:
        specs = [be.resolve(ImageSpec(prompt=f"a {c} beanie", seed=20 + i, steps=30)) for i, c in enumerate(
            ["rust", "plum", "ochre", "slate", "mint", "ivory", "denim", "moss"]
        )]
        out = await asyncio.gather(*(be.generate([spec]) for spec in specs))
        assert max(be.batch_sizes) > 1, be.batch_sizes
        for spec, images in zip(specs, out, strict=True):
            want = (await local.generate([local.resolve(spec)]))[0]
            assert np.array_equal(px(images[0].png), px(want.png))
    finally:
        await be.aclose()
        await local.aclose()


async def test_model_named_by_the_deployment_when_the_bot_cannot_read_it(
    cluster: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A model that exists only where the workers run (a hub id, a path on the GPU box)."""
    be = RayBackend(bot_settings(tmp_path, "acme/only-on-the-gpu-box", cluster))
    try:
        await be.warm_up()
        spec = be.resolve(ImageSpec(prompt="a cap"))
        assert (spec.width, spec.height) == (32, 32)  # the tiny checkpoint's native size, from the replicas
        assert spec.model == DiffusersBackend(bot_settings(tmp_path, tiny_model_dir, cluster)).model_name
        assert spec.backend == "ray"
    finally:
        await be.aclose()


async def test_a_different_model_on_the_workers_is_refused_in_words(cluster: str, tmp_path: Path) -> None:
    s = bot_settings(tmp_path, DEMO_MODEL_DIR, cluster)
    async with Bot(s) as bot:
        events = await bot.run(ImageSpec(prompt="a mug", seed=1, steps=2))
    assert isinstance(events[-1], Failed)
    assert "CHATCANVAS_MODEL" in events[-1].reason and "chatcanvas-demo" in events[-1].reason


async def test_replica_killed_mid_job_the_job_completes_exactly_once(
    cluster: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    s = bot_settings(tmp_path, tiny_model_dir, cluster)
    spec = ImageSpec(prompt="a mustard yellow sneaker, side view", seed=42, steps=50)
    async with Bot(s) as bot:
        rec = await bot.engine.submit(spec, UserRef(platform="test", user="kim", server="s"), HERE)
        killed: list[int] = []
        events = []
        async for ev in bot.engine.follow(rec.id):
            events.append(ev)
            if isinstance(ev, Progress) and ev.step >= 1 and not killed:
                where = next(iter(bot.backend.running.values()))
                os.kill(int(where["pid"]), signal.SIGKILL)  # the replica running it dies mid-job
                killed.append(int(where["pid"]))
        assert killed
        steps = [e.step for e in events if isinstance(e, Progress)]
        assert steps.count(1) == 2 and steps[-1] == 50  # begun again from the first step on the other replica
        assert isinstance(events[-1], Images) and len(events[-1].images) == 1
        assert sum(isinstance(e, Images) for e in events) == 1
        row = bot.store.execute("SELECT status, attempts FROM jobs WHERE id = ?", (rec.id,))[0]
        assert row["status"] == JobStatus.DONE and row["attempts"] == 1
        assert len(bot.store.execute("SELECT id FROM images WHERE job_id = ?", (rec.id,))) == 1
        done = bot.store.execute("SELECT kind FROM job_events WHERE job_id = ? AND kind = 'done'", (rec.id,))
        assert len(done) == 1
        # and it is the picture the seed makes, not a half-made one
        local = DiffusersBackend(s.model_copy(update={"backend": "local"}))
        want = (await local.generate([local.resolve(spec)]))[0]
        assert np.array_equal(px(events[-1].images[0].png), px(want.png))
        await local.aclose()


async def test_workers_down_jobs_wait_and_finish_when_they_are_back(
    cluster: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from ray import serve

    serve.delete(APP)  # the workers stop
    s = bot_settings(tmp_path, tiny_model_dir, cluster)
    async with Bot(s) as bot:
        waiting = [
            asyncio.ensure_future(bot.run(ImageSpec(prompt=f"a {c} mug", seed=3, steps=3), user=u))
            for c, u in (("olive", "li"), ("burgundy", "sam"))
        ]
        # a user whose request waits longer than CHATCANVAS_RAY_DOWN_WAIT_S is told the workers are down
        impatient = RayBackend(s.model_copy(update={"ray_down_wait_s": 1.0}))
        with pytest.raises(WorkersDown) as err:
            await impatient.generate([impatient.resolve(ImageSpec(prompt="a cap", seed=1))], lambda i: None)
        assert str(err.value) == m.RAY_WORKERS_DOWN
        await impatient.aclose()
        await asyncio.sleep(3)
        assert not any(t.done() for t in waiting)  # nothing failed meanwhile
        await asyncio.to_thread(deploy, tiny_model_dir)  # the workers are back
        results = await asyncio.wait_for(asyncio.gather(*waiting), 300)
    assert all(isinstance(r[-1], Images) for r in results)


def test_progress_of_a_waiting_batch_lets_the_engine_stop_it(tmp_path: Path) -> None:
    """While the workers are down the backend still calls back, so cancel and shutdown apply."""
    from chatcanvas.errors import JobCancelled

    s = Settings(data_dir=tmp_path, backend="ray", ray_address="127.0.0.1:1", ray_app=APP, ray_down_wait_s=60)
    be = RayBackend(s)
    calls: list[StepInfo] = []

    def cancel_at_first(info: StepInfo) -> None:
        calls.append(info)
        raise JobCancelled("stop")

    async def go() -> None:
        try:
            with pytest.raises(JobCancelled):
                await be.generate([be.resolve(ImageSpec(prompt="a cap", seed=1))], cancel_at_first)
        finally:
            await be.aclose()

    asyncio.run(go())
    assert calls and calls[0].step == 0
    assert calls[0].note is not None and calls[0].note.startswith("Waiting for the image workers")  # told to its user


def test_kuberay_example_names_the_application_chatcanvas_workers_deploys(monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/ray_service.yaml is a valid Serve config whose builder makes GPU replicas, autoscaled."""
    import yaml
    from ray.serve.schema import ServeDeploySchema

    from chatcanvas.generation import ray_app

    doc = yaml.safe_load((Path(__file__).parents[2] / "examples" / "ray_service.yaml").read_text())
    assert doc["kind"] == "RayService"
    config = ServeDeploySchema.model_validate(yaml.safe_load(doc["spec"]["serveConfigV2"]))
    app_cfg = config.applications[0]
    module, _, builder = app_cfg.import_path.partition(":")
    assert module == ray_app.__name__
    for key, value in app_cfg.runtime_env["env_vars"].items():
        monkeypatch.setenv(key, value)
    app = getattr(ray_app, builder)(app_cfg.args)
    deployment = app._bound_deployment
    assert deployment.ray_actor_options["num_gpus"] == 1
    auto = deployment._deployment_config.autoscaling_config
    assert (auto.min_replicas, auto.max_replicas) == (1, 4)
    options = deployment.init_args[0]
    assert options["settings"]["model"] == "stabilityai/sd-turbo" and options["max_batch"] == 4
