"""Samplers by the names AUTOMATIC1111 gives them, mapped to diffusers schedulers.

The table follows the mapping in diffusers' scheduler overview ("A1111/k-diffusion -> Diffusers"):
``DPM++ 2M`` is ``DPMSolverMultistepScheduler``, ``DPM++ 2M SDE`` the same with
``algorithm_type="sde-dpmsolver++"``, ``DPM++ SDE`` is ``DPMSolverSinglestepScheduler``, ``DPM2`` is
``KDPM2DiscreteScheduler``, and so on; a schedule type is an option on top: ``Karras`` is
``use_karras_sigmas=True``, ``Exponential`` is ``use_exponential_sigmas=True``, ``SGM Uniform`` is
``timestep_spacing="trailing"``. The ancestral samplers (``Euler a``, ``DPM2 a``) have no sigma
options in diffusers; here they get Karras and Exponential sigmas by a small subclass that replaces
the sigmas after ``set_timesteps``, as k-diffusion (and so A1111) does.

A1111 up to 1.8 wrote the schedule into the sampler's name (``Sampler: DPM++ 2M Karras``); 1.9 and
later write it apart (``Sampler: DPM++ 2M, Schedule type: Karras``). :func:`canonical` reads both;
recipes always keep them apart.

A scheduler is built per request from the pipeline's scheduler config
(``Cls.from_config(pipe.scheduler.config, **options)``) and handed to a request-scoped pipeline
(:func:`pipeline_with_sampler`); the loaded pipeline and its scheduler are never changed.

This module imports nothing heavy at import time: :mod:`chatcanvas.types` validates names with it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

KARRAS = "Karras"
EXPONENTIAL = "Exponential"
SGM_UNIFORM = "SGM Uniform"
UNIFORM = "Uniform"  # no sigma schedule of its own: the scheduler's config as it is
AUTOMATIC = "Automatic"  # A1111's "the sampler's own default"

SCHEDULES = (KARRAS, EXPONENTIAL, SGM_UNIFORM)
_SIGMA_KEYS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")


@dataclass(frozen=True)
class SamplerDef:
    name: str  # the A1111 name
    cls: str  # the diffusers scheduler class
    options: dict[str, Any] = field(default_factory=dict)
    schedules: tuple[str, ...] = ()  # the schedule types it takes
    native_sigmas: bool = True  # False: Karras/Exponential come from our subclass
    automatic: str | None = None  # what A1111 >= 1.9 runs for "Schedule type: Automatic"


_ALL = (KARRAS, EXPONENTIAL, SGM_UNIFORM)
SAMPLERS: dict[str, SamplerDef] = {
    s.name: s
    for s in (
        SamplerDef("Euler", "EulerDiscreteScheduler", {}, _ALL),
        SamplerDef("Euler a", "EulerAncestralDiscreteScheduler", {}, _ALL, native_sigmas=False),
        SamplerDef(
            "DPM++ 2M",
            "DPMSolverMultistepScheduler",
            {"algorithm_type": "dpmsolver++", "solver_order": 2},
            _ALL,
            automatic=KARRAS,
        ),
        SamplerDef(
            "DPM++ 2M SDE",
            "DPMSolverMultistepScheduler",
            {"algorithm_type": "sde-dpmsolver++", "solver_order": 2},
            _ALL,
            automatic=EXPONENTIAL,
        ),
        SamplerDef(
            "DPM++ SDE",
            "DPMSolverSinglestepScheduler",
            {"algorithm_type": "dpmsolver++"},
            (KARRAS, EXPONENTIAL),
            automatic=KARRAS,
        ),
        SamplerDef("DPM2", "KDPM2DiscreteScheduler", {}, _ALL),
        SamplerDef("DPM2 a", "KDPM2AncestralDiscreteScheduler", {}, _ALL),
        SamplerDef("Heun", "HeunDiscreteScheduler", {}, _ALL),
        SamplerDef("LMS", "LMSDiscreteScheduler", {}, _ALL),
        SamplerDef("DDIM", "DDIMScheduler", {"clip_sample": False, "set_alpha_to_one": False}, (SGM_UNIFORM,)),
        SamplerDef("PLMS", "PNDMScheduler", {"skip_prk_steps": True}, (SGM_UNIFORM,)),
        SamplerDef("UniPC", "UniPCMultistepScheduler", {}, _ALL),
        SamplerDef("LCM", "LCMScheduler", {"clip_sample": False}, (SGM_UNIFORM,)),
    )
}


def _key(s: str) -> str:
    return " ".join(s.replace("_", " ").split()).casefold()


_BY_KEY = {_key(n): n for n in SAMPLERS}
# Other spellings people type or older tools write: k-diffusion names, diffusers class names.
_ALIASES = {
    "k euler": "Euler",
    "k euler a": "Euler a",
    "k euler ancestral": "Euler a",
    "euler ancestral": "Euler a",
    "k dpmpp 2m": "DPM++ 2M",
    "k dpmpp sde": "DPM++ SDE",
    "k dpmpp 2m sde": "DPM++ 2M SDE",
    "k dpm 2": "DPM2",
    "k dpm 2 a": "DPM2 a",
    "k heun": "Heun",
    "k lms": "LMS",
    "eulerdiscretescheduler": "Euler",
    "eulerancestraldiscretescheduler": "Euler a",
    "dpmsolvermultistepscheduler": "DPM++ 2M",
    "dpmsolversinglestepscheduler": "DPM++ SDE",
    "kdpm2discretescheduler": "DPM2",
    "kdpm2ancestraldiscretescheduler": "DPM2 a",
    "heundiscretescheduler": "Heun",
    "lmsdiscretescheduler": "LMS",
    "ddimscheduler": "DDIM",
    "pndmscheduler": "PLMS",
    "unipcmultistepscheduler": "UniPC",
    "lcmscheduler": "LCM",
}
_SCHEDULE_KEYS = {
    "karras": KARRAS,
    "exponential": EXPONENTIAL,
    "sgm uniform": SGM_UNIFORM,
    "sgmuniform": SGM_UNIFORM,
    "uniform": UNIFORM,
    "normal": UNIFORM,
    "automatic": AUTOMATIC,
}


def known_samplers() -> str:
    return ", ".join(SAMPLERS)


def known_schedules() -> str:
    return ", ".join((*SCHEDULES, UNIFORM, AUTOMATIC))


def sampler_name(text: str) -> str | None:
    """The A1111 name for ``text`` (any case, spacing, alias), or None."""
    k = _key(text)
    return _BY_KEY.get(k) or _ALIASES.get(k)


def schedule_name(text: str) -> str | None:
    return _SCHEDULE_KEYS.get(_key(text))


def split_legacy(text: str) -> tuple[str, str | None]:
    """``"DPM++ 2M Karras"`` -> ``("DPM++ 2M", "Karras")`` (the form A1111 wrote before 1.9)."""
    if sampler_name(text):
        return text, None
    for label in SCHEDULES:
        if _key(text).endswith(" " + _key(label)):
            return text[: -len(label)].strip(), label
    return text, None


def canonical(sampler: str | None, schedule: str | None) -> tuple[str | None, str | None]:
    """Validated ``(sampler, schedule)``: A1111 names, or ValueError with the known ones.

    ``schedule`` comes back as None for Uniform (the scheduler's own spacing) and for Automatic
    where A1111 would run the sampler's plain schedule.
    """
    from chatcanvas import messages as m

    name: str | None = None
    if sampler is not None and sampler.strip():
        base, legacy = split_legacy(sampler)
        name = sampler_name(base)
        if name is None:
            raise ValueError(m.UNKNOWN_SAMPLER.format(name=sampler.strip(), known=known_samplers()))
        if legacy and not (schedule and schedule.strip()):
            schedule = legacy
    label: str | None = None
    if schedule is not None and schedule.strip():
        label = schedule_name(schedule)
        if label is None:
            raise ValueError(m.UNKNOWN_SCHEDULE.format(name=schedule.strip(), known=known_schedules()))
        if label == AUTOMATIC:
            label = SAMPLERS[name].automatic if name else None
        elif label == UNIFORM:
            label = None
    if name and label and label not in SAMPLERS[name].schedules:
        raise ValueError(
            m.SCHEDULE_NOT_FOR_SAMPLER.format(
                sampler=name, schedule=label, ok=", ".join(SAMPLERS[name].schedules) or "none"
            )
        )
    return name, label


# ---------------------------------------------------------------- diffusers side (lazy imports)


def describe(scheduler: Any) -> tuple[str, str | None]:
    """The A1111 ``(sampler, schedule)`` a diffusers scheduler instance runs; the class name if none fits."""
    cls = type(scheduler).__name__
    cfg = scheduler.config
    name = getattr(scheduler, "a1111_name", None)
    if name is None:
        for s in SAMPLERS.values():
            if s.cls == cls or (s.cls + "WithSigmas") == cls:
                if s.cls == "DPMSolverMultistepScheduler":
                    sde = str(cfg.get("algorithm_type", "")).startswith("sde")
                    if sde != (s.name == "DPM++ 2M SDE") or int(cfg.get("solver_order", 2)) != 2:
                        continue
                name = s.name
                break
    if name is None:
        return cls, None
    schedule = getattr(scheduler, "sigma_schedule", None)
    if schedule is None:
        if cfg.get("use_karras_sigmas"):
            schedule = KARRAS
        elif cfg.get("use_exponential_sigmas"):
            schedule = EXPONENTIAL
        elif cfg.get("timestep_spacing") == "trailing":
            schedule = SGM_UNIFORM
    return name, schedule


def build_scheduler(base: Any, sampler: str | None, schedule: str | None) -> Any:
    """A new scheduler for one request, from ``base``'s config (``base`` itself is left as it is).

    ``sampler`` None: the model's own scheduler class. When the request names what the model's
    scheduler already is, its config is copied unchanged, so the pixels match the default exactly.
    """
    from chatcanvas import messages as m
    from chatcanvas.errors import SpecError

    own_name, own_schedule = describe(base)
    if (sampler is None or sampler == own_name) and schedule in (None, own_schedule):
        return type(base).from_config(base.config)
    name = sampler or own_name
    spec = SAMPLERS.get(name)
    if spec is None:  # the model's own scheduler is one we have no A1111 name for
        if schedule is not None:
            raise SpecError(m.SCHEDULE_NEEDS_SAMPLER.format(sampler=name, schedule=schedule))
        return type(base).from_config(base.config)
    if schedule and schedule not in spec.schedules:
        raise SpecError(
            m.SCHEDULE_NOT_FOR_SAMPLER.format(
                sampler=name, schedule=schedule, ok=", ".join(spec.schedules) or "none"
            )
        )
    cls = _scheduler_class(spec.cls)
    accepted = _init_keys(cls)
    opts: dict[str, Any] = dict(spec.options)
    if spec.native_sigmas:
        opts.update({k: False for k in _SIGMA_KEYS if k in accepted})
        if schedule == KARRAS:
            opts["use_karras_sigmas"] = True
        elif schedule == EXPONENTIAL:
            opts["use_exponential_sigmas"] = True
    if schedule == SGM_UNIFORM:
        opts["timestep_spacing"] = "trailing"
    elif base.config.get("timestep_spacing") == "trailing" and sampler is not None and schedule is None:
        # the model's config asks for trailing spacing (turbo models): keep it, it is not a choice here
        opts["timestep_spacing"] = "trailing"
    if not spec.native_sigmas and schedule in (KARRAS, EXPONENTIAL):
        cls = _with_sigmas(cls)
    sched = cls.from_config(base.config, **{k: v for k, v in opts.items() if k in accepted})
    if not spec.native_sigmas and schedule in (KARRAS, EXPONENTIAL):
        sched.sigma_schedule = schedule
    sched.a1111_name = name
    return sched


def pipeline_with_sampler(pipe: Any, sampler: str | None, schedule: str | None) -> Any:
    """A request-scoped pipeline sharing ``pipe``'s models, with its own new scheduler."""
    sched = build_scheduler(pipe.scheduler, sampler, schedule)
    # torch_dtype=None: DiffusionPipeline.from_pipe would otherwise cast the shared models to float32
    out = type(pipe).from_pipe(pipe, scheduler=sched, torch_dtype=None)
    out.set_progress_bar_config(disable=True)
    return out


def _scheduler_class(name: str) -> Any:
    import diffusers

    return getattr(diffusers, name)


def _init_keys(cls: Any) -> set[str]:
    import inspect

    return set(inspect.signature(cls.__init__).parameters)


@functools.cache
def _with_sigmas(cls: Any) -> Any:
    """``cls`` with Karras or Exponential sigmas put in after ``set_timesteps`` (k-diffusion's way)."""
    import numpy as np
    import torch

    class WithSigmas(cls):  # type: ignore[misc, valid-type]
        sigma_schedule: str | None = None

        def set_timesteps(self, num_inference_steps: int, device: Any = None, **kw: Any) -> None:
            super().set_timesteps(num_inference_steps, device=device, **kw)
            if self.sigma_schedule not in (KARRAS, EXPONENTIAL):
                return
            n = int(num_inference_steps)
            train = np.asarray(((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5, dtype=np.float64)
            lo, hi = float(train.min()), float(train.max())
            if self.sigma_schedule == KARRAS:
                rho = 7.0
                ramp = np.linspace(0, 1, n)
                sig = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
            else:
                sig = np.exp(np.linspace(np.log(hi), np.log(lo), n))
            # sigma grows with t: interpolate t at each new sigma on the log scale
            ts = np.interp(np.log(sig), np.log(train), np.arange(len(train), dtype=np.float64))
            dev = getattr(self, "timesteps").device if device is None else device  # noqa: B009 - set by super()
            self.timesteps = torch.from_numpy(ts.astype(np.float32)).to(dev)
            self.sigmas = torch.from_numpy(np.concatenate([sig, [0.0]]).astype(np.float32))
            self._step_index = None
            self._begin_index = None

    WithSigmas.__name__ = WithSigmas.__qualname__ = cls.__name__ + "WithSigmas"
    return WithSigmas


def request_defaults(spec: Any, settings: Any) -> dict[str, Any]:
    """Spec fields a request leaves to the settings: ``CHATCANVAS_DEFAULT_SAMPLER`` / ``_SCHEDULE``."""
    upd: dict[str, Any] = {}
    if spec.sampler is None and settings.default_sampler:
        upd["sampler"] = settings.default_sampler
        if spec.schedule is None and settings.default_schedule:
            upd["schedule"] = settings.default_schedule
    elif spec.sampler is None and spec.schedule is None and settings.default_schedule:
        upd["schedule"] = settings.default_schedule
    return upd
