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


def detail_ratio(pred, real) -> float:
    """Fine detail of ``pred`` relative to ``real``: the energy of the grey frames' Laplacian
    (what blur removes and grain adds), summed over frames, as a ratio — 1 is as detailed as
    the real frames, below 1 blurrier, above 1 grainier. PSNR and SSIM favour a blurred mean
    over a sharp but slightly displaced frame; this column shows which of the two a row is."""
    import cv2

    def energy(frames) -> float:
        from ..media.files import to_uint8

        grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float64) for f in to_uint8(frames)]
        return float(sum(np.square(cv2.Laplacian(g, cv2.CV_64F)).mean() for g in grey))

    return energy(pred) / max(energy(real), 1e-12)
