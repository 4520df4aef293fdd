"""CPU threads per worker, and the speed settings as a loaded pipeline shows them (CUDA parts: test_gpu.py)."""

from __future__ import annotations

import pytest
import torch

from chatcanvas.config import Settings
from chatcanvas.generation import acceleration
from chatcanvas.generation.base import StepInfo
from chatcanvas.generation.diffusers_backend import DiffusersBackend
from chatcanvas.types import ImageSpec


def test_threads_follow_the_cores_shared_by_the_workers(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(acceleration.os, "sched_getaffinity", lambda _pid: set(range(8)))
    assert acceleration.torch_threads(settings.model_copy(update={"workers": 1})) == 8
    assert acceleration.torch_threads(settings.model_copy(update={"workers": 3})) == 2
    assert acceleration.torch_threads(settings.model_copy(update={"workers": 16})) == 1
    assert acceleration.torch_threads(settings.model_copy(update={"torch_threads": 5})) == 5
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert acceleration.torch_threads(settings) is None  # torch already follows OMP_NUM_THREADS


async def test_the_worker_runs_with_the_threads_it_was_given(settings: Settings) -> None:
    before = torch.get_num_threads()
    be = DiffusersBackend(settings.model_copy(update={"torch_threads": 2}))
    seen: list[int] = []

    def on_step(info: StepInfo) -> None:  # called in the worker's thread, between its steps
        seen.append(torch.get_num_threads())

    try:
        await be.generate([be.resolve(ImageSpec(prompt="a lilac mug", seed=1, steps=2))], on_step)
    finally:
        torch.set_num_threads(before)
    assert seen == [2, 2]


async def test_cpu_pipelines_keep_their_defaults_and_attention(settings: Settings) -> None:
    be = DiffusersBackend(settings)
    pipe = be.load()
    assert acceleration.uses_sdpa(pipe)  # PyTorch 2 scaled-dot-product attention, diffusers' default
    assert not acceleration.is_compiled(pipe)
    assert pipe.unet.dtype == torch.float32


def test_compile_warm_up_sizes_are_the_aspect_presets(settings: Settings) -> None:
    sizes = acceleration.warm_sizes(512, settings)
    assert sizes[0] == (512, 512) and len(sizes) == 5
    assert all(w % 8 == 0 and h % 8 == 0 for w, h in sizes)
    assert {(w > h) for w, h in sizes[1:]} == {True, False}
