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

import math

import torch


def white_noise(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """i.i.d. N(0, 1) of `shape` on the generator's device."""
    return torch.randn(shape, generator=generator, device=generator.device)


def colored_noise(beta: float, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise [..., H, A] with power spectrum ~ 1/f^beta along H, unit variance.

    Generated in the frequency domain: independent complex Gaussian coefficients for the
    rfft frequencies f_k = k / H, scaled by f_k^(-beta/2) (amplitude, so the power goes
    as f^-beta), turned into time series by an inverse real FFT. The DC coefficient
    takes the amplitude of the lowest nonzero frequency 1/H (f = 0 would be infinite);
    the DC and Nyquist coefficients are real, so their real part gets twice the variance
    (which makes beta = 0 exactly white). The result is divided by its exact standard
    deviation, the same for every time step, so each entry is N(0, 1).
    """
    *lead, horizon, action_dim = shape
    freqs = torch.fft.rfftfreq(horizon, device=generator.device)  # [F], 0 .. 0.5
    freqs[0] = 1.0 / horizon
    amplitude = freqs ** (-beta / 2.0)  # [F]
    # variance of each bin's real and imaginary part: 1, except real-only DC/Nyquist: 2
    real_var = torch.ones_like(amplitude)
    imag_var = torch.ones_like(amplitude)
    real_var[0], imag_var[0] = 2.0, 0.0
    if horizon % 2 == 0:
        real_var[-1], imag_var[-1] = 2.0, 0.0
    coeffs = torch.randn(
        (*lead, action_dim, amplitude.shape[0], 2), generator=generator, device=generator.device
    )
    spectrum = amplitude * torch.complex(
        coeffs[..., 0] * real_var.sqrt(), coeffs[..., 1] * imag_var.sqrt()
    )
    series = torch.fft.irfft(spectrum, n=horizon, dim=-1)  # [..., A, H]
    # Var x_t = sum_k w_k amp_k^2 (re_k + im_k) / H^2, with w_k = 2 for the bins that
    # stand for a conjugate pair and 1 for DC/Nyquist (already real-only)
    pair = torch.full_like(amplitude, 2.0)
    pair[0] = 1.0
    if horizon % 2 == 0:
        pair[-1] = 1.0
    var = (pair * amplitude**2 * (real_var + imag_var)).sum() / horizon**2
    return (series / var.sqrt()).transpose(-1, -2)


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
