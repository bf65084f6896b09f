"""Named samplers, each a stock diffusers scheduler configured for Framer's EDM parameterisation.

Every sampler here uses the model's σ range (0.002–700), σ_data = 1, v-prediction and feeds the
UNet the continuous c_noise = ¼·ln σ (``edm.c_noise``) — never the integer VP timesteps that the
earlier toolkit's DPM++ passed.

* ``euler``: ``EulerDiscreteScheduler`` with SVD-xt's own scheduler config (Karras σ, ρ = 7).
* ``dpm++``: ``EDMDPMSolverMultistepScheduler``, DPM-Solver++ 2M on the same Karras σ grid; good
  at 10–15 steps.
* ``turbo``: :class:`TurboScheduler`, multistep consistency sampling (diffusers'
  ``CMStochasticIterativeScheduler`` with Framer's consistency function) for a model carrying a
  turbo LoRA (``framerturbo distill``); 1, 2, 4 or 8 steps, no CFG. On the undistilled model a
  4-step consistency sampler only returns a blurred posterior mean — that is what the turbo LoRA
  is distilled to fix.
"""

from __future__ import annotations

import torch
from diffusers import (
    CMStochasticIterativeScheduler,
    EDMDPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
)
from diffusers.configuration_utils import register_to_config
from diffusers.schedulers.scheduling_consistency_models import CMStochasticIterativeSchedulerOutput
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor

from ..core import edm
from .configs import SVD_SCHEDULER

DEFAULT_STEPS = {"euler": 30, "dpm++": 12, "turbo": 4}
_ALIASES = {"dpmpp": "dpm++", "dpm++2m": "dpm++", "dpmpp-2m": "dpm++", "consistency": "turbo"}
SAMPLERS = tuple(DEFAULT_STEPS)
TURBO = "turbo"
# The distillation's Karras grid: N points from σ_max to σ_min with ρ = 7 (Song et al. 2023 use
# N = 40 for consistency distillation). A turbo LoRA folder's scheduler_config.json overrides it.
TURBO_GRID = {"num_train_timesteps": 40, "rho": 7.0}


class UndistilledTurboWarning(UserWarning):
    """The ``turbo`` sampler ran on a pipeline with no turbo LoRA loaded (``load_turbo``): a
    consistency sampler on an undistilled model samples a blurred average in a few steps — the
    earlier toolkit's "LCM" mistake. The CLI says it in its own words; the app offers ``turbo``
    only with a turbo LoRA."""


class TurboScheduler(CMStochasticIterativeScheduler):
    """Multistep consistency sampling on Framer's EDM parameterisation.

    Step i: x₀ = f(x, σ_i) = c_skip·x + c_out·F (``edm.consistency_scalings``, v-signed, exact
    boundary f(x, σ_min) = x); then, except at the last step, x = x₀ + σ_{i+1}·ε with fresh
    ε from the call's generator(s). The output of the last step is its x₀ itself.

    The σs are points of the distillation's Karras grid (``num_train_timesteps`` = N, ``rho``):
    n steps take grid indices 0, N//n, 2·N//n, … (index 0 = σ_max), as diffusers'
    parent class does. Differences from the parent: σ_data = 1 and c_out with the minus sign of
    v-prediction, no clipping, timesteps = ``edm.c_noise`` (¼·ln σ, what Framer's UNet saw in
    training) and re-noising with σ_{i+1} (the distillation's x_σ = x₀ + σ·ε) rather than
    √(σ_{i+1}² − σ_min²).
    """

    @register_to_config
    def __init__(self, num_train_timesteps: int = TURBO_GRID["num_train_timesteps"],
                 sigma_min: float = edm.SIGMA_MIN, sigma_max: float = edm.SIGMA_MAX,
                 sigma_data: float = edm.SIGMA_DATA, s_noise: float = 1.0,
                 rho: float = TURBO_GRID["rho"], clip_denoised: bool = False) -> None:
        super().__init__(num_train_timesteps=num_train_timesteps, sigma_min=sigma_min,
                         sigma_max=sigma_max, sigma_data=sigma_data, s_noise=s_noise, rho=rho,
                         clip_denoised=clip_denoised)

    def sigma_to_t(self, sigmas):
        # float32, as the σs are stored: the timesteps are exactly edm.c_noise(self.sigmas)
        return edm.c_noise(torch.as_tensor(sigmas, dtype=torch.float32)).numpy()

    def get_scalings_for_boundary_condition(self, sigma):
        return edm.consistency_scalings(sigma, self.config.sigma_min, self.config.sigma_data)

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor,
             generator=None, return_dict: bool = True):
        """F at σ_i → the next state (x₀ + σ_{i+1}·ε), or x₀ itself after the last step."""
        if self.step_index is None:
            self._init_step_index(timestep)
        i = self.step_index
        sigma = self.sigmas[i].to(sample.device, torch.float64)
        c_skip, c_out = self.get_scalings_for_boundary_condition(sigma)
        x0 = (c_skip.to(sample.dtype) * sample + c_out.to(sample.dtype) * model_output)
        if self.config.clip_denoised:
            x0 = x0.clamp(-1, 1)
        if i + 1 < len(self.timesteps):
            noise = randn_tensor(sample.shape, generator=generator, device=sample.device,
                                 dtype=sample.dtype)
            prev = x0 + self.sigmas[i + 1].to(sample.device, sample.dtype) \
                * self.config.s_noise * noise
        else:
            prev = x0
        self._step_index += 1
        return CMStochasticIterativeSchedulerOutput(prev_sample=prev) if return_dict else (prev,)


def canonical_name(name: str) -> str:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DEFAULT_STEPS:
        raise ValueError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")
    return key


def make_scheduler(name: str = "euler", sigma_min: float = edm.SIGMA_MIN,
                   sigma_max: float = edm.SIGMA_MAX, turbo_grid: dict | None = None
                   ) -> SchedulerMixin:
    """A fresh scheduler for the named sampler (``euler``, ``dpm++`` or ``turbo``);
    ``turbo_grid`` (``num_train_timesteps``, ``rho``, optionally σ_min/σ_max) sets the turbo
    sampler's distillation grid."""
    key = canonical_name(name)
    if key == TURBO:
        grid = dict(TURBO_GRID, sigma_min=sigma_min, sigma_max=sigma_max) | dict(turbo_grid or {})
        return TurboScheduler(**{k: grid[k] for k in
                                 ("num_train_timesteps", "rho", "sigma_min", "sigma_max")})
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
