"""EDM preconditioning with v-scaling, as SVD and Framer use it (σ_data = 1).

The network F_θ sees ``c_in(σ)·x_σ`` and the "timestep" ``c_noise(σ)``; the denoised estimate is

    D(x_σ) = c_skip(σ)·x_σ + c_out(σ)·F_θ(c_in(σ)·x_σ; c_noise(σ))

with, for σ_data = 1,

    c_in    = 1 / √(σ² + 1)
    c_noise = ¼ · ln σ
    c_skip  = 1 / (σ² + 1)
    c_out   = −σ / √(σ² + 1)

Training minimises λ(σ)·‖D − x₀‖² with λ = (σ²+1)/σ². Because λ·c_out² = 1 this is exactly the plain
MSE between F_θ and the v-target ``(ε − σ·x₀) / √(σ² + 1)``, which is what :func:`v_target` returns.

The samplers (``schedulers.py``) use these same formulas through diffusers' EDM-aware schedulers;
the tests pin that both agree. Every function here broadcasts σ against ``x`` from the left, so σ
may be a scalar, a per-sample vector ``(B,)`` or already shaped like ``x``.
"""

from __future__ import annotations

import math

import torch

SIGMA_DATA = 1.0
SIGMA_MIN = 0.002
SIGMA_MAX = 700.0


def _as_tensor(sigma, like: torch.Tensor | None = None) -> torch.Tensor:
    if isinstance(sigma, torch.Tensor):
        return sigma if like is None else sigma.to(device=like.device, dtype=like.dtype)
    return torch.tensor(float(sigma), device=None if like is None else like.device,
                        dtype=torch.float32 if like is None else like.dtype)


def append_dims(sigma: torch.Tensor, ndim: int) -> torch.Tensor:
    """Shape a per-sample σ of shape (B,) as (B, 1, …, 1) with ``ndim`` dimensions in total."""
    return sigma.reshape(sigma.shape + (1,) * (ndim - sigma.ndim))


def sample_sigmas(batch_size: int, p_mean: float = 0.7, p_std: float = 1.6, *,
                  generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """σ ~ LogNormal(p_mean, p_std): ``exp(p_mean + p_std·n)`` with n ~ N(0, 1); shape (B,).

    The defaults (0.7, 1.6) are SVD's video fine-tuning values, shifted toward high noise compared
    with EDM's image default (−1.2, 1.2)."""
    n = torch.randn(batch_size, generator=generator, device=device)
    return torch.exp(p_mean + p_std * n)


def c_in(sigma, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """Input scale 1/√(σ² + σ_data²)."""
    sigma = _as_tensor(sigma)
    return 1.0 / torch.sqrt(sigma**2 + sigma_data**2)


def c_noise(sigma) -> torch.Tensor:
    """The network's continuous "timestep": ¼·ln σ."""
    return 0.25 * torch.log(_as_tensor(sigma))


def c_skip(sigma, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """Skip weight σ_data² / (σ² + σ_data²)."""
    sigma = _as_tensor(sigma)
    return sigma_data**2 / (sigma**2 + sigma_data**2)


def c_out(sigma, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """Output weight for v-prediction: −σ·σ_data / √(σ² + σ_data²)."""
    sigma = _as_tensor(sigma)
    return -sigma * sigma_data / torch.sqrt(sigma**2 + sigma_data**2)


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma) -> torch.Tensor:
    """The forward process x_σ = x₀ + σ·ε."""
    return x0 + append_dims(_as_tensor(sigma, x0), x0.ndim) * noise


def scale_input(x_sigma: torch.Tensor, sigma) -> torch.Tensor:
    """c_in(σ)·x_σ, what the UNet's first 4 channels receive."""
    return append_dims(c_in(_as_tensor(sigma, x_sigma)), x_sigma.ndim) * x_sigma


def denoised(x_sigma: torch.Tensor, model_output: torch.Tensor, sigma) -> torch.Tensor:
    """D(x_σ) = c_skip·x_σ + c_out·F_θ — the x₀ estimate from the network's v-output."""
    s = append_dims(_as_tensor(sigma, x_sigma), x_sigma.ndim)
    return c_skip(s) * x_sigma + c_out(s) * model_output


def v_target(x0: torch.Tensor, noise: torch.Tensor, sigma) -> torch.Tensor:
    """The regression target F* = (ε − σ·x₀)/√(σ² + 1), for which D(x_σ) = x₀ exactly."""
    s = append_dims(_as_tensor(sigma, x0), x0.ndim)
    return (noise - s * x0) / torch.sqrt(s**2 + 1.0)


def consistency_scalings(sigma, sigma_min: float = SIGMA_MIN,
                         sigma_data: float = SIGMA_DATA) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_skip, c_out) of the consistency function f(x_σ, σ) = c_skip·x_σ + c_out·F_θ (Song et
    al. 2023, v-signed like :func:`c_out`): c_skip = σ_d²/((σ−σ_min)² + σ_d²) and
    c_out = −(σ−σ_min)·σ_d/√(σ² + σ_d²). They equal EDM's scalings up to σ_min, so a student
    starts as the base model, and at σ = σ_min they are exactly (1, 0): f(x, σ_min) = x."""
    sigma = _as_tensor(sigma)
    skip = sigma_data**2 / ((sigma - sigma_min) ** 2 + sigma_data**2)
    out = -(sigma - sigma_min) * sigma_data / torch.sqrt(sigma**2 + sigma_data**2)
    return skip, out


def consistency_denoised(x_sigma: torch.Tensor, model_output: torch.Tensor, sigma,
                         sigma_min: float = SIGMA_MIN) -> torch.Tensor:
    """f(x_σ, σ) — the consistency model's x₀ estimate from the network's v-output."""
    s = append_dims(_as_tensor(sigma, x_sigma), x_sigma.ndim)
    skip, out = consistency_scalings(s, sigma_min)
    return skip * x_sigma + out * model_output


def loss_weight(sigma) -> torch.Tensor:
    """λ(σ) = (σ² + 1)/σ², the EDM weight on ‖D − x₀‖² that makes it equal to MSE on F_θ."""
    sigma = _as_tensor(sigma)
    return (sigma**2 + 1.0) / sigma**2


def karras_sigmas(num_steps: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX,
                  rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022) σ schedule from σ_max down to σ_min (``num_steps`` values, no final 0)."""
    ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def log_sigma_bucket(sigma: float, edges=(0.1, 0.5, 2.0, 10.0)) -> str:
    """A readable σ bucket name for logging losses per noise level."""
    for lo, hi in zip((0.0,) + tuple(edges), tuple(edges) + (math.inf,)):
        if lo <= sigma < hi:
            return f"{lo:g}-{hi:g}"
    return "nan"
