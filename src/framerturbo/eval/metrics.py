"""Frame metrics — the one definition that training's validation and ``evaluate`` both report:
frames quantised to uint8 (what a written video holds), PSNR per frame then averaged, SSIM
(torchmetrics, 11-px Gaussian) averaged over frames. The learned metrics (LPIPS, FID, FVD) are
in ``networks.py`` and ``distribution.py``: they need networks the user supplies."""

from __future__ import annotations

import numpy as np
import torch


def _tensor(frames) -> torch.Tensor:
    from ..media.files import to_uint8

    return torch.from_numpy(to_uint8(frames)).permute(0, 3, 1, 2).float() / 255.0


def frame_metrics(pred, real) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM over frames; inputs (N, H, W, 3) uint8 or float in [0, 1]."""
    from torchmetrics.functional.image import (
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
    )

    p, r = _tensor(pred), _tensor(real)
    psnr = [float(peak_signal_noise_ratio(p[i:i + 1], r[i:i + 1], data_range=1.0))
            for i in range(len(p))]
    ssim = float(structural_similarity_index_measure(p, r, data_range=1.0))
    return {"psnr": float(np.mean(psnr)), "ssim": ssim}
