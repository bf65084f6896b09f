"""The learned metrics' networks — LPIPS, FID's Inception, FVD's I3D — loaded from files the
user supplies (nothing is downloaded), in the TorchScript formats the common metric code
publishes:

* **I3D** (FVD): ``i3d_torchscript.pt`` of StyleGAN-V / the FVD comparisons — called as
  ``net(videos, rescale=True, resize=True, return_features=True)`` on (B, 3, T, H, W) floats in
  [0, 255]; returns the 400-d Kinetics logits the TF FVD uses. Any other TorchScript module is
  called as ``net(videos)`` on (B, 3, T, 224, 224) in [−1, 1].
* **Inception** (FID): ``inception-2015-12-05.pt`` of StyleGAN2-ADA — ``net(images,
  return_features=True)`` on uint8 (N, 3, H, W); returns the 2048-d pool features. Any other
  module: ``net(images)`` on (N, 3, 299, 299) floats in [0, 1], features flattened.
* **LPIPS**: a TorchScript export of ``lpips.LPIPS`` (``net(x, y)`` on (N, 3, H, W) in [−1, 1]
  → distances), or StyleGAN2-ADA's ``vgg16.pt`` (``net(images, resize_images=False,
  return_lpips=True)`` on floats in [0, 255] → normalised features whose squared difference,
  summed, is the distance).

Which call a file gets is read from its ``forward`` signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .distribution import frechet_distance_of

BATCH = 16


def load_network(path, what: str, flag: str) -> torch.jit.ScriptModule:
    """A TorchScript module from ``path``, in eval mode; one clear line when it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: {what} file not found — check {flag} (see docs/evaluation.md)")
    try:
        net = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"{path}: not a TorchScript {what} ({str(e).splitlines()[0]}) — "
                         f"{flag} takes the TorchScript file (see docs/evaluation.md)") from None
    return net.eval()


def argument_names(net) -> set[str]:
    """The names ``net.forward`` takes (TorchScript schema, or the Python signature)."""
    try:
        return {a.name for a in net.forward.schema.arguments}
    except AttributeError:
        import inspect

        return set(inspect.signature(net.forward).parameters)


def _device(net) -> torch.device:
    p = next(iter(net.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def inception_features(net, frames: np.ndarray) -> np.ndarray:
    """(N, D) features of (N, H, W, 3) uint8 frames."""
    nvlabs, out = "return_features" in argument_names(net), []
    for k in range(0, len(frames), BATCH):
        x = torch.from_numpy(np.ascontiguousarray(frames[k:k + BATCH])).permute(0, 3, 1, 2)
        x = x.to(_device(net))
        if nvlabs:
            f = net(x, return_features=True)
        else:
            f = net(F.interpolate(x.float() / 255, size=(299, 299), mode="bilinear",
                                  align_corners=False))
        out.append(f.reshape(len(x), -1).double().cpu().numpy())
    return np.concatenate(out)


@torch.no_grad()
def i3d_features(net, videos: list[np.ndarray]) -> np.ndarray:
    """(B, D) features of videos, each (T, H, W, 3) uint8, all of one shape."""
    nvlabs, out = "return_features" in argument_names(net), []
    for k in range(0, len(videos), BATCH):
        x = torch.from_numpy(np.stack(videos[k:k + BATCH])).permute(0, 4, 1, 2, 3).float()
        x = x.to(_device(net))
        if nvlabs:
            f = net(x, rescale=True, resize=True, return_features=True)
        else:
            b, c, t, h, w = x.shape
            frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
            frames = F.interpolate(frames, size=(224, 224), mode="bilinear", align_corners=False)
            f = net(frames.reshape(b, t, c, 224, 224).permute(0, 2, 1, 3, 4) / 127.5 - 1)
        out.append(f.reshape(len(x), -1).double().cpu().numpy())
    return np.concatenate(out)


@torch.no_grad()
def lpips_distances(net, pred: np.ndarray, real: np.ndarray) -> np.ndarray:
    """(N,) LPIPS between frame pairs, (N, H, W, 3) uint8 each."""
    nvlabs, out = "return_lpips" in argument_names(net), []
    for k in range(0, len(pred), BATCH):
        p, r = (torch.from_numpy(np.ascontiguousarray(a[k:k + BATCH])).permute(0, 3, 1, 2)
                .float().to(_device(net)) for a in (pred, real))
        if nvlabs:
            fp = net(p, resize_images=False, return_lpips=True)
            fr = net(r, resize_images=False, return_lpips=True)
            d = (fp - fr).square().sum(dim=1)
        else:
            d = net(p / 127.5 - 1, r / 127.5 - 1)
        out.append(d.reshape(len(p)).double().cpu().numpy())
    return np.concatenate(out)


@dataclass
class MetricNetworks:
    """The learned metrics' networks (None: not given) and why each missing one is skipped."""

    lpips: object = None
    inception: object = None
    i3d: object = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, lpips: str | None = None, inception: str | None = None,
             i3d: str | None = None, device="cpu") -> MetricNetworks:
        nets = cls()
        for name, path, what, flag in (
                ("lpips", lpips, "LPIPS network", "--lpips-weights"),
                ("inception", inception, "Inception network", "--inception"),
                ("i3d", i3d, "I3D network", "--i3d")):
            metric = {"lpips": "LPIPS", "inception": "FID", "i3d": "FVD"}[name]
            if path:
                setattr(nets, name, load_network(path, what, flag).to(device))
            else:
                nets.notes.append(f"{metric} skipped: no {flag} given (the {what} as a "
                                  "TorchScript file — docs/evaluation.md)")
        return nets


def learned_metrics(nets: MetricNetworks, videos: list[np.ndarray], real: list[np.ndarray],
                    real_features: dict) -> dict[str, float]:
    """LPIPS (mean over every generated middle frame), FID (Inception features of the
    generated middle frames against the real ones) and FVD (I3D features of the whole
    generated videos, endpoints included, against the real videos) of one row. Clips of
    different sizes (buckets) are fine for LPIPS/FID; FVD stacks videos of one shape.
    ``real_features`` caches the real sets' features across rows."""
    out: dict[str, float] = {}
    middle = lambda vs: np.concatenate([v[1:-1] for v in vs])  # noqa: E731
    if nets.lpips is not None:
        out["lpips"] = float(np.mean([lpips_distances(nets.lpips, v[1:-1], r[1:-1]).mean()
                                      for v, r in zip(videos, real)]))
    if nets.inception is not None and len(videos) * (len(real[0]) - 2) >= 2:
        if "inception" not in real_features:
            real_features["inception"] = inception_features(nets.inception, middle(real))
        out["fid"] = frechet_distance_of(real_features["inception"],
                                         inception_features(nets.inception, middle(videos)))
    if nets.i3d is not None and len(videos) >= 2 and len({v.shape for v in real}) == 1:
        if "i3d" not in real_features:
            real_features["i3d"] = i3d_features(nets.i3d, real)
        out["fvd"] = frechet_distance_of(real_features["i3d"], i3d_features(nets.i3d, videos))
    return out
