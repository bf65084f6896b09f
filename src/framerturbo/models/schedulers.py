"""Named samplers, each a stock diffusers scheduler configured for Framer's EDM parameterisation.

Every sampler here uses the model's σ range (0.002–700), σ_data = 1, v-prediction and feeds the
UNet the continuous c_noise = ¼·ln σ (``edm.c_noise``) — never the integer VP timesteps that the
earlier toolkit's DPM++ passed.

* ``euler``: ``EulerDiscreteScheduler`` with SVD-xt's own scheduler config (Karras σ, ρ = 7).
* ``dpm++``: ``EDMDPMSolverMultistepScheduler``, DPM-Solver++ 2M on the same Karras σ grid; good
  at 10–15 steps.

Consistency/LCM samplers are deliberately absent: Framer's weights are not distilled, so a 4–6
step consistency sampler only returns a blurred posterior mean.
"""

from __future__ import annotations

from diffusers import EDMDPMSolverMultistepScheduler, EulerDiscreteScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from ..core import edm
from .configs import SVD_SCHEDULER

DEFAULT_STEPS = {"euler": 30, "dpm++": 12}
_ALIASES = {"dpmpp": "dpm++", "dpm++2m": "dpm++", "dpmpp-2m": "dpm++"}
SAMPLERS = tuple(DEFAULT_STEPS)


def canonical_name(name: str) -> str:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DEFAULT_STEPS:
        raise ValueError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")
    return key


def make_scheduler(name: str = "euler", sigma_min: float = edm.SIGMA_MIN,
                   sigma_max: float = edm.SIGMA_MAX) -> SchedulerMixin:
    """A fresh scheduler for the named sampler (``euler`` or ``dpm++``)."""
    key = canonical_name(name)
    if key == "euler":
        return EulerDiscreteScheduler.from_config(
            dict(SVD_SCHEDULER, sigma_min=sigma_min, sigma_max=sigma_max))
    return EDMDPMSolverMultistepScheduler(
        sigma_min=sigma_min, sigma_max=sigma_max, sigma_data=edm.SIGMA_DATA,
        prediction_type="v_prediction", sigma_schedule="karras", rho=7.0,
        algorithm_type="dpmsolver++", solver_order=2, lower_order_final=True,
        final_sigmas_type="zero")


def sigma_range(scheduler: SchedulerMixin) -> tuple[float, float]:
    """(σ_min, σ_max) of a loaded scheduler config (SVD-xt: 0.002, 700)."""
    cfg = scheduler.config
    return float(cfg.get("sigma_min") or edm.SIGMA_MIN), float(cfg.get("sigma_max") or edm.SIGMA_MAX)
