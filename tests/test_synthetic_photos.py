"""The ``photos`` world (data/photos.py) and the promise that ``shapes``/``signer`` stay put."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

pytest.importorskip("skimage")

from framerturbo.cli.main import main
from framerturbo.data import photos
from framerturbo.data.photos import (
    BG_POINTS,
    HELD_OUT_PHOTOS,
    PHOTOS,
    camera_clip,
    load_photo,
    pick_photos,
    render_photos,
)
from framerturbo.data.synthetic import DOMAINS, render


def _bilinear(frame: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Colours (N, 3) in [0, 1] at frame points (pixel centres at i + 0.5)."""
    img = frame.astype(np.float64) / 255
    h, w = img.shape[:2]
    x = np.clip(xy[:, 0] - 0.5, 0, w - 1.001)
    y = np.clip(xy[:, 1] - 0.5, 0, h - 1.001)
    x0, y0 = x.astype(int), y.astype(int)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    return ((1 - fx) * (1 - fy) * img[y0, x0] + fx * (1 - fy) * img[y0, x0 + 1]
            + (1 - fx) * fy * img[y0 + 1, x0] + fx * fy * img[y0 + 1, x0 + 1])


def _track_errors(clip, points):
    """Per (t, k) colour error along the tracks, and at the same pixels without following
    them (what a tracker that ignored the motion would see); only where visible at 0 and t."""
    followed, still = [], []
    for t in range(1, len(clip.frames)):
        k = points[clip.visible[t, points] & clip.visible[0, points]]
        ref = _bilinear(clip.frames[0], clip.tracks[0, k])
        followed.append(np.abs(_bilinear(clip.frames[t], clip.tracks[t, k]) - ref).mean(1))
        still.append(np.abs(_bilinear(clip.frames[t], clip.tracks[0, k]) - ref).mean(1))
    return np.concatenate(followed), np.concatenate(still)


def test_photos_is_a_domain_and_deterministic_from_the_seed():
    assert "photos" in DOMAINS
    a, b, c = render("photos", 7), render("photos", 7), render("photos", 8)
    for name in ("frames", "tracks", "visible", "masks"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.frames, c.frames)
    assert a.frames.shape == (9, 64, 64, 3) and a.frames.dtype == np.uint8
    assert a.tracks.shape[1] == a.visible.shape[1] and a.masks.shape == (9, 64, 64)
    assert render_photos(3, num_frames=5, size=96).frames.shape == (5, 96, 96, 3)


def test_unknown_domain_names_every_world():
    with pytest.raises(ValueError, match="shapes, signer, signer-close, photos, camera"):
        render("sky", 0)


def test_camera_clips_use_only_the_held_out_photos(monkeypatch):
    from framerturbo.data import photos

    seen = []
    real = photos.load_photo
    monkeypatch.setattr(photos, "load_photo", lambda name: seen.append(name) or real(name))
    for seed in range(4):
        clip = render("camera", seed)
        assert clip.masks.max() == 0 and clip.frames.shape == (9, 64, 64, 3)
    assert set(seen) == set(photos.HELD_OUT_PHOTOS)


def test_tracks_follow_the_content_on_background_and_cutouts():
    bg_f, bg_s, cut_f, cut_s = [], [], [], []
    for seed in range(12):
        clip = render_photos(seed, lighting=False)  # colours comparable across frames
        k = clip.tracks.shape[1]
        f, s = _track_errors(clip, np.arange(BG_POINTS))
        bg_f.append(f), bg_s.append(s)
        f, s = _track_errors(clip, np.arange(BG_POINTS, k))
        cut_f.append(f), cut_s.append(s)
    for followed, still in ((bg_f, bg_s), (cut_f, cut_s)):
        followed, still = np.concatenate(followed), np.concatenate(still)
        assert len(followed) > 200
        assert np.median(followed) < 0.03  # the same photo point, a few grey levels apart
        assert np.median(followed) < 0.4 * np.median(still)  # and the content really moved


PERIOD = 48.0  # photo pixels of the phase-coded test picture (24 in the working copy)


def _phase_picture(axis: int, n: int = 512) -> np.ndarray:
    """A picture whose red/green encode the x (axis 0) or y (axis 1) photo coordinate as the
    phase of a sinusoid: a frame's colour then says which photo point it shows, to ~0.01 px."""
    c = (np.arange(n) + 0.5) * 2 * np.pi / PERIOD
    phase = np.broadcast_to(c[None, :] if axis == 0 else c[:, None], (n, n))
    return np.stack([0.5 + 0.45 * np.sin(phase), 0.5 + 0.45 * np.cos(phase),
                     np.full((n, n), 0.5)], -1).astype(np.float32)


def _phase_drift(clip) -> np.ndarray:
    """(F − 1, K) how far (working-copy photo pixels) the photo point under each track moves
    from frame 0; NaN where the track is hidden in either frame."""
    def phase(t):
        c = _bilinear(clip.frames[t], clip.tracks[t]) - 0.5
        return np.arctan2(c[:, 0], c[:, 1])
    p0 = phase(0)
    out = []
    for t in range(1, len(clip.frames)):
        d = np.abs((phase(t) - p0 + np.pi) % (2 * np.pi) - np.pi) / (2 * np.pi) * PERIOD / 2
        out.append(np.where(clip.visible[t] & clip.visible[0], d, np.nan))
    return np.array(out)


def test_tracks_stay_on_the_same_photo_point_to_a_tenth_of_a_pixel(monkeypatch):
    """Every photo replaced by a phase-coded picture (and grey tints by none): the photo point
    under each background and cut-out track must not move, which catches sub-pixel slips
    between how the frames and the tracks are computed."""
    bg, cut = [], []
    for axis in (0, 1):
        picture = _phase_picture(axis)
        monkeypatch.setattr(photos, "_working_photo",
                            lambda name, short, p=picture: photos._working_copy(p, short))
        monkeypatch.setattr(photos, "GREY_PHOTOS", ())  # no tints: colours decode as they are
        for seed in range(8):
            drift = _phase_drift(render_photos(seed, lighting=False))
            bg.append(drift[:, :BG_POINTS].ravel()), cut.append(drift[:, BG_POINTS:].ravel())
        drift = _phase_drift(camera_clip(picture, 3))
        bg.append(drift.ravel())
    for d in (np.concatenate(bg), np.concatenate(cut)):
        d = d[~np.isnan(d)]
        assert len(d) > 500 and np.median(d) < 0.05 and np.percentile(d, 80) < 0.1


def test_masks_agree_with_visibility_and_depth_order():
    occluded = 0
    for seed in range(20):
        clip = render_photos(seed)
        n_cut = (clip.tracks.shape[1] - BG_POINTS) // 6
        owner = np.concatenate([np.zeros(BG_POINTS, int), np.repeat(np.arange(1, n_cut + 1), 6)])
        assert set(np.unique(clip.masks)) <= set(range(n_cut + 1))
        inside = ((clip.tracks >= 0) & (clip.tracks < 64)).all(-1)
        xi = np.clip(clip.tracks[..., 0].astype(int), 0, 63)
        yi = np.clip(clip.tracks[..., 1].astype(int), 0, 63)
        under = clip.masks[np.arange(9)[:, None], yi, xi]
        assert np.array_equal(clip.visible, inside & (under == owner))
        hidden = inside & ~clip.visible
        # a hidden point is covered by something in front of it: a cut-out with a higher id
        # (cut-out points sit well inside their outline, so never behind the background)
        assert (under[hidden] > owner[np.nonzero(hidden)[1]]).all()
        occluded += hidden.sum()
    assert occluded > 0  # occlusions do happen


def test_camera_and_exposure_move():
    seeds = range(16)
    shift = [np.linalg.norm(render_photos(s).tracks[-1, :BG_POINTS]
                            - render_photos(s).tracks[0, :BG_POINTS], axis=-1).mean()
             for s in seeds]
    assert np.median(shift) > 2  # the camera moves by pixels, not sub-pixels
    a, b = render_photos(5), render_photos(5, lighting=False)
    assert np.array_equal(a.tracks, b.tracks) and np.array_equal(a.masks, b.masks)
    assert not np.array_equal(a.frames, b.frames)


def test_held_out_photos_are_never_used(monkeypatch):
    assert not set(HELD_OUT_PHOTOS) & set(PHOTOS) and len(HELD_OUT_PHOTOS) == 2
    for name in HELD_OUT_PHOTOS:
        assert load_photo(name).shape[2] == 3  # colour photos that load offline
    loaded = []
    working = photos._working_photo

    def recording(name, short):
        loaded.append(name)
        return working(name, short)

    monkeypatch.setattr(photos, "_working_photo", recording)
    for seed in range(60):
        background, cutouts = pick_photos(seed)
        loaded.clear()
        render_photos(seed, num_frames=2, size=32)
        assert loaded == [background, *cutouts]  # pick_photos says what the render reads
        assert background not in cutouts
    names = set()
    for seed in range(2000):
        background, cutouts = pick_photos(seed)
        names |= {background, *cutouts}
    assert names == set(PHOTOS)  # every photo of the world is used, the held-out ones never


def test_camera_clip_over_a_held_out_photo():
    image = (load_photo("rocket") * 255).astype(np.uint8)
    a, b = camera_clip(image, 3), camera_clip(image, 3)
    assert np.array_equal(a.frames, b.frames) and a.frames.shape == (9, 64, 64, 3)
    assert not np.array_equal(a.frames[0], a.frames[-1])
    assert not a.masks.any() and a.visible.mean() > 0.8
    followed, still = _track_errors(a, np.arange(BG_POINTS))
    assert np.median(followed) < 0.03 and np.median(followed) < 0.4 * np.median(still)
    grey = camera_clip(image.mean(-1) / 255.0, 1, num_frames=3, size=32)
    assert grey.frames.shape == (3, 32, 32, 3)
    with pytest.raises(ValueError, match="camera_clip"):
        camera_clip(np.zeros((8, 8, 2), np.uint8), 0)


@pytest.mark.parametrize("domain, seed, digest", [
    ("shapes", 0, "21b5a869ba7ffa301191bd0fbdff57840c7ef6b07bbe0459ecef6644a7215067"),
    ("shapes", 7, "77a6bbce8f597418f46f6999d46d6d10b88e088ab25b93353b41e1c86dc2986f"),
    ("signer", 0, "c16307e53f5dbcc51204b23049f1a57594d2f07f4c0926e7d39ea082c42a730b"),
    ("signer", 7, "135086eefd2f5f80590035dd7b436eca0cc5f7cd8020f484e72bb2fe9629b082"),
])
def test_shapes_and_signer_clips_are_unchanged(domain, seed, digest):
    """Held-out sets made before the photos world must come out byte-identical (digests from
    the code before it; float rounding on a very different CPU could in principle move one)."""
    assert hashlib.sha256(render(domain, seed).frames.tobytes()).hexdigest() == digest


def test_synth_cli_writes_photos(tmp_path, capsys):
    assert main(["synth", "--domain", "photos", "--n", "2", "--out", str(tmp_path / "p"),
                 "--num-frames", "5"]) == 0
    names = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert names[:3] == ["clip_0000.mp4", "clip_0000.mp4.tracks.json", "clip_0000.mp4.tracks.npz"]
    assert len(names) == 6 and "2 photos clips" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    assert "'photos'" in capsys.readouterr().out
