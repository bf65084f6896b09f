"""The papers' protocols and the learned metrics: Fréchet distance against hand computations,
LPIPS / Inception / I3D loaded from TorchScript files of the published interfaces (tiny random
networks here), and `evaluate --protocol davis7` end to end on a small benchmark folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from framerturbo.cli.main import main
from framerturbo.eval.distribution import (feature_statistics, frechet_distance,
                                           frechet_distance_of)
from framerturbo.eval.networks import (MetricNetworks, i3d_features, inception_features,
                                       load_network, lpips_distances)
from videos import moving_square_frames


def test_frechet_distance_of_known_gaussians():
    sigma = np.array([[2.0, 0.5], [0.5, 1.0]])
    mu = np.array([1.0, -2.0])
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)
    # equal covariances: the distance is the squared distance of the means
    assert frechet_distance(mu, sigma, mu + [3.0, 4.0], sigma) == pytest.approx(25.0)
    # diagonal covariances: Σ (√a − √b)² over the diagonal, plus the means' term
    a, b = np.diag([4.0, 9.0]), np.diag([1.0, 16.0])
    assert frechet_distance([0, 0], a, [1, 0], b) == pytest.approx(1 + (2 - 1) ** 2 + (3 - 4) ** 2)
    # 1-D: (μ₁−μ₂)² + (σ₁−σ₂)²
    assert frechet_distance([0.0], [[4.0]], [1.0], [[1.0]]) == pytest.approx(1.0 + 1.0)


def test_feature_statistics_and_sampled_gaussians():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 3))
    mu, cov = feature_statistics(x)
    assert np.allclose(mu, x.mean(0)) and np.allclose(cov, np.cov(x.T))  # unbiased (N − 1)
    shifted = x + np.array([2.0, 0.0, 0.0])
    assert frechet_distance_of(x, shifted) == pytest.approx(4.0, rel=1e-6)
    y = rng.normal(size=(4000, 3)) * 2  # σ 1 → 2 per axis: 3·(2−1)² in the limit
    assert frechet_distance_of(x, y) == pytest.approx(3.0, abs=0.3)
    with pytest.raises(ValueError, match="N >= 2"):
        feature_statistics(x[:1])


class NvInception(torch.nn.Module):
    """StyleGAN2-ADA's inception-2015-12-05.pt interface: uint8 in, pool features out."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)

    def forward(self, images: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = torch.nn.functional.interpolate(images.float() / 255, size=(32, 32))
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


class NvI3D(torch.nn.Module):
    """StyleGAN-V's i3d_torchscript.pt interface: (B, 3, T, H, W) in [0, 255]."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 6, (3, 3, 3), stride=(1, 2, 2))

    def forward(self, videos: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        x = videos / 127.5 - 1 if rescale else videos
        if resize:
            b, c, t, h, w = x.shape
            x = torch.nn.functional.interpolate(x, size=(t, 32, 32))
        return self.conv(x).mean(dim=(2, 3, 4))


class PairLpips(torch.nn.Module):
    """lpips.LPIPS's interface: two [−1, 1] batches → one distance each."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x - y).abs().mean(dim=(1, 2, 3), keepdim=True)


class NvVgg(torch.nn.Module):
    """StyleGAN2-ADA's vgg16.pt interface: [0, 255] in, features whose squared difference is LPIPS."""

    def forward(self, images: torch.Tensor, resize_images: bool = True,
                return_lpips: bool = False) -> torch.Tensor:
        return images.flatten(1) / 255


def _save(module, path):
    torch.jit.script(module).save(str(path))
    return path


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    d = tmp_path_factory.mktemp("nets")
    torch.manual_seed(0)
    return {"inception": _save(NvInception(), d / "inception.pt"), "i3d": _save(NvI3D(), d / "i3d.pt"),
            "lpips": _save(PairLpips(), d / "lpips.pt"), "vgg": _save(NvVgg(), d / "vgg16.pt")}


def test_networks_load_from_torchscript_files_of_the_published_interfaces(nets, tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)
    inception = load_network(nets["inception"], "Inception network", "--inception")
    feats = inception_features(inception, frames)
    assert feats.shape == (6, 8)
    assert frechet_distance_of(feats, feats) == pytest.approx(0.0, abs=1e-9)
    brighter = np.clip(frames.astype(int) + 60, 0, 255).astype(np.uint8)
    assert frechet_distance_of(feats, inception_features(inception, brighter)) > 1e-4
    i3d = load_network(nets["i3d"], "I3D network", "--i3d")
    videos = [rng.integers(0, 256, (9, 40, 48, 3), dtype=np.uint8) for _ in range(3)]
    assert i3d_features(i3d, videos).shape == (3, 6)
    # LPIPS by hand: a constant difference of 51 levels is 51/127.5 in [−1, 1] (pair form),
    # and 48·40·3·(51/255)² summed squared feature differences (vgg16.pt form)
    frames = np.minimum(frames, 204)
    other = frames + 51
    pair = lpips_distances(load_network(nets["lpips"], "LPIPS network", "--lpips-weights"),
                           other, frames)
    assert np.allclose(pair, 51 / 127.5)
    vgg = lpips_distances(load_network(nets["vgg"], "LPIPS network", "--lpips-weights"),
                          other, frames)
    assert np.allclose(vgg, 40 * 48 * 3 * (51 / 255) ** 2)
    (tmp_path / "state.pt").write_bytes(b"not torchscript")
    with pytest.raises(ValueError, match="not a TorchScript Inception network"):
        load_network(tmp_path / "state.pt", "Inception network", "--inception")
    with pytest.raises(ValueError, match="--i3d"):
        load_network(tmp_path / "missing.pt", "I3D network", "--i3d")
    assert [n.split(":")[0] for n in MetricNetworks.load().notes] == [
        "LPIPS skipped", "FID skipped", "FVD skipped"]


@pytest.fixture(scope="module")
def davis7(tmp_path_factory):
    """Three examples in the layout VIDIM's generate_davis-7.py writes (9 frames, 256×256)."""
    root = tmp_path_factory.mktemp("DAVIS-7")
    for n in range(3):
        frames = moving_square_frames(9, size=64, seed=n, velocity=(3.0, 1.5))
        folder = root / f"{n:04d}"
        folder.mkdir()
        for i, f in enumerate(frames):
            Image.fromarray(f).resize((256, 256), Image.BICUBIC).save(folder / f"frame_{i:03d}.png")
    return root


def test_evaluate_protocol_davis7_scores_all_metrics_beside_the_paper(davis7, nets, tmp_path,
                                                                      capsys):
    out = tmp_path / "davis.json"
    assert main(["evaluate", "--protocol", "davis7", str(davis7), "--steps", "2",
                 "--lpips-weights", str(nets["lpips"]), "--inception", str(nets["inception"]),
                 "--i3d", str(nets["i3d"]), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert list(rows) == ["base (micro)", "crossfade", "flow"]
    for row in rows.values():
        assert {"psnr", "ssim", "lpips", "fid", "fvd"} <= set(row) and row["n_clips"] == 3
        assert row["fid"] >= 0 and row["fvd"] >= 0 and 0 < row["lpips"] < 2
    cond = report["conditions"]
    # the micro model generates at its own 64×64; frames are scored at the benchmark's 256×256
    assert cond["protocol"] == "DAVIS-7" and cond["generation size"] == "64x64"
    assert cond["scored at"] == "256x256" and cond["inputs"] == "frames 0 and 8"
    assert report["paper"]["Framer (autopilot)"]["fvd"] == 115.65
    assert any("3 examples, the benchmark has 357" in n for n in report["notes"])
    table = out.with_suffix(".md").read_text()
    assert "| FID |" in table and "| Framer (autopilot) | 21.23 |" in table
    assert "| LPIPS |" in capsys.readouterr().out
    # without the networks: PSNR/SSIM only, and a note per skipped metric
    bare = tmp_path / "bare.json"
    assert main(["evaluate", "--protocol", "davis7", str(davis7), "--steps", "2",
                 "--max-clips", "2", "--out", str(bare)]) == 0
    report = json.loads(bare.read_text())
    assert all("lpips" not in r and r["n_clips"] == 2 for r in report["rows"].values())
    assert sum("skipped: no --" in n for n in report["notes"]) == 3
    assert main(["evaluate", "--protocol", "davis7", str(tmp_path / "nowhere")]) == 2


def test_a_protocol_of_another_aspect_is_squashed_on_purpose(micro_pipe):
    """A benchmark's frames meet the model's size as they are (square DAVIS-7 frames on the
    512×320 model are squashed, then the output back): deliberate, so no StretchWarning."""
    import warnings

    from framerturbo.eval.evaluate import EvalClip, score_model
    from framerturbo.sampling.framing import StretchWarning

    clip = EvalClip("square", moving_square_frames(5, size=64, seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", StretchWarning)
        result = score_model(micro_pipe, [clip], "base", steps=1, size=(64, 128))
    assert result.outputs["base"][0].shape == (5, 64, 64, 3)
