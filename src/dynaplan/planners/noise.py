"""Standard-normal noise for sampling planners, and its map into the action bounds.

Every function returns noise of shape [..., H, A] whose marginals are N(0, 1); the
planner scales it by its std and moves it to its mean (`Planner.gaussian`). Only the
correlation along the time axis H differs:

- `white_noise`: independent over time (CEM, MPPI);
- `colored_noise`: power spectral density proportional to 1/f^beta along time, per action
  dimension (iCEM, Pinneri et al. 2020, arXiv 2008.06389, sec. 3.1); beta = 0 is white,
  beta = 2 is "red" (Brownian-like), slow and smooth;
- `smooth_noise`: an exponential moving average over time (an AR(1) process), the
  usual way of smoothing MPPI's perturbations.
"""

from __future__ import annotations

import functools
import math

import torch


def white_noise(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """i.i.d. N(0, 1) of `shape` on the generator's device."""
    return torch.randn(shape, generator=generator, device=generator.device)


def colored_noise(beta: float, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise [..., H, A] with power spectrum ~ 1/f^beta along H, unit variance.

    Generated in the frequency domain: independent complex Gaussian coefficients for the
    rfft frequencies f_k = k / H, scaled by f_k^(-beta/2) (amplitude, so the power goes
    as f^-beta), turned into time series by an inverse real FFT. Each action dimension
    gets its own independent series.
    """
    *lead, horizon, action_dim = shape
    scale = _spectrum_scale(float(beta), horizon, generator.device)  # [F, 2]
    coeffs = torch.randn(
        (*lead, action_dim, scale.shape[0], 2), generator=generator, device=generator.device
    )
    series = torch.fft.irfft(torch.view_as_complex(coeffs * scale), n=horizon, dim=-1)
    return series.transpose(-1, -2)  # [..., A, H] -> [..., H, A]


@functools.lru_cache(maxsize=32)
def _spectrum_scale(beta: float, horizon: int, device: torch.device) -> torch.Tensor:
    """[F, 2] std of the real and imaginary part of each rfft coefficient, computed once.

    The DC coefficient takes the amplitude of the lowest nonzero frequency 1/H (f = 0
    would be infinite). The DC and Nyquist coefficients are real-only, so their real
    part gets twice the variance, which makes beta = 0 exactly white. All are divided by
    the exact std of the resulting series, the same at every time step, so that each
    entry is N(0, 1): Var x_t = sum_k m_k amp_k^2 (var re_k + var im_k) / H^2, with
    m_k = 2 for the bins that stand for a conjugate pair and 1 for the real-only ones.
    """
    num_freqs = horizon // 2 + 1
    rows, var = [], 0.0
    for k in range(num_freqs):
        amplitude = (max(k, 1) / horizon) ** (-beta / 2.0)
        real_only = k == 0 or 2 * k == horizon
        real_std, imag_std = (math.sqrt(2.0), 0.0) if real_only else (1.0, 1.0)
        rows.append((amplitude * real_std, amplitude * imag_std))
        var += (1 if real_only else 2) * amplitude**2 * (real_std**2 + imag_std**2)
    std = math.sqrt(var) / horizon
    return torch.tensor(rows, dtype=torch.float32, device=device) / std


def smooth_noise(noise: torch.Tensor, coefficient: float) -> torch.Tensor:
    """Exponential moving average of noise [..., H, A] along H that keeps unit variance:
    y_0 = e_0, y_t = c y_{t-1} + sqrt(1 - c^2) e_t (an AR(1) process, lag-k correlation
    c^k). c = 0 returns the noise unchanged."""
    if coefficient == 0.0:
        return noise
    scale = math.sqrt(1.0 - coefficient**2)
    steps = [noise[..., 0, :]]
    for t in range(1, noise.shape[-2]):
        steps.append(coefficient * steps[-1] + scale * noise[..., t, :])
    return torch.stack(steps, dim=-2)


def truncated_normal(
    mean: torch.Tensor,
    std: torch.Tensor,
    noise: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
) -> torch.Tensor:
    """N(mean, std^2) truncated to [low, high], by the inverse CDF of standard normal
    `noise` (any correlation of the noise carries over through the monotone map).

    u = Phi(noise) is uniform; x = mean + std * Phi^-1(Phi(a) + u (Phi(b) - Phi(a))) with
    a, b the bounds in std units. u is kept off 0 and 1 so that Phi^-1 stays finite, and
    the final clamp absorbs float rounding when the mean lies far outside the bounds.
    Shapes broadcast: mean, std [B, 1, H, A], noise [B, N, H, A], low/high [A].
    """
    std = std.clamp_min(1e-12)
    cdf_low = torch.special.ndtr((low - mean) / std)
    cdf_high = torch.special.ndtr((high - mean) / std)
    u = cdf_low + torch.special.ndtr(noise) * (cdf_high - cdf_low)
    u = u.clamp(1e-6, 1.0 - 1e-6)
    return torch.clamp(mean + std * torch.special.ndtri(u), low, high)
