"""Property tests (hypothesis) for the parsers, the config loader and the clip index arithmetic."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from framerturbo.core.config import ConfigError, load_config
from framerturbo.data.clips import Span, clip_times, frame_step, num_windows
from framerturbo.data.sources import read_manifest
from framerturbo.core.tracks import parse_tracks, resample_tracks

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_track_parser_never_crashes_on_arbitrary_json(doc):
    try:
        ts = parse_tracks(doc, "t.json")
    except ValueError as e:
        assert str(e).startswith("t.json: ")
        return
    arr = resample_tracks(ts, 7)
    assert arr.shape == (7, len(ts.tracks), 2) and np.isfinite(arr).all()


coords = st.floats(-1e4, 1e4, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(coords, coords), min_size=1, max_size=6), min_size=1,
                max_size=5), st.integers(3, 25))
def test_valid_tracks_hit_their_anchors(tracks, frames):
    ts = parse_tracks({"tracks": [{"points": [list(p) for p in t]} for t in tracks]})
    arr = resample_tracks(ts, frames)
    for k, t in enumerate(tracks):
        assert np.allclose(arr[0, k], t[0]) and np.allclose(arr[-1, k], t[-1])
        lo, hi = np.min(t, axis=0), np.max(t, axis=0)  # PCHIP: never outside the anchors
        assert (arr[:, k] >= lo - 1e-6).all() and (arr[:, k] <= hi + 1e-6).all()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(json_values | st.text(max_size=30), max_size=5))
def test_manifest_parser_never_crashes(tmp_path, lines):
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines))
    try:
        sources = read_manifest(path)
    except ValueError as e:
        assert "m.jsonl:" in str(e)
        return
    assert all(s.path.name for s in sources)


config_values = st.one_of(st.integers(-5, 5000), st.floats(-10, 10, allow_nan=False),
                          st.text(max_size=8), st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["train.max_steps", "train.lr", "data.height", "data.flip",
                        "lora.preset", "data.sources", "objective.p_std", "train.seed",
                        "nosuch.key", "train.nosuch"]), config_values)
@example("data.sources", "[")  # found by this test: a broken JSON list must be a ConfigError
def test_config_loader_accepts_or_names_the_key(key, value):
    try:
        cfg = load_config(None, [f"{key}={value}"])
    except ConfigError as e:
        assert "\n" not in str(e)
        section, name = key.split(".")
        assert section in str(e) or name in str(e) or "must" in str(e)
        return
    section, name = key.split(".")
    assert hasattr(getattr(cfg, section), name)


@settings(max_examples=300, deadline=None)
@given(st.floats(1, 240), st.integers(1, 2000), st.integers(3, 30), st.integers(1, 10),
       st.sampled_from([0.0, 6.0, 24.0]), st.sampled_from(["random", "uniform", "every-window"]),
       st.integers(0, 2**32 - 1))
def test_clip_indices_are_never_out_of_range_or_empty(fps, frames, num, stride, target, mode,
                                                      seed):
    span = Span(0.0, frames / fps, fps)
    step = frame_step(span, num, stride, target, mode)
    windows = num_windows(span, num, step)
    if windows == 0:
        return
    rng = np.random.default_rng(seed)
    for window in {0, windows - 1}:
        times = clip_times(span, num, step, mode, window, rng)
        idx = [round(t * fps) for t in times]
        assert len(idx) == num
        assert 0 <= idx[0] and idx[-1] <= frames - 1
        assert all(b > a for a, b in zip(idx, idx[1:])) or step * fps < 1.5
        assert not math.isnan(times[0])


@settings(max_examples=300, deadline=None)
@given(st.integers(8, 3000), st.integers(8, 3000), st.sampled_from([(64, 64), (320, 512),
                                                                     (576, 576), (96, 160)]),
       st.sampled_from(["pad", "crop"]))
def test_a_canvas_has_the_frames_aspect_and_holds_or_cuts_the_picture(h, w, frame, mode):
    """interpolate's framing: the canvas scales evenly onto the frame (its aspect within a
    pixel's rounding), pad holds the whole picture, crop lies inside it, and pad's content box
    keeps the picture's aspect and stays inside the frame."""
    from framerturbo.media.video import canvas_for

    height, width = frame
    c = canvas_for(h, w, height, width, mode)
    ch, cw = c.canvas_hw
    assert abs(ch * width - cw * height) <= (height + width) / 2  # each side rounded once
    if mode == "pad":
        assert ch >= h and cw >= w and c.top + h <= ch and c.left + w <= cw
        picture = np.full((h, w, 1), 255, np.uint8)
        assert c.place(picture).sum() == picture.sum()
        box = c.content(np.zeros((1, height, width, 1)))
        bh, bw = box.shape[1:3]
        assert 1 <= bh <= height and 1 <= bw <= width
        scale = max(height / ch, width / cw)  # frame pixels per canvas pixel
        assert abs(bh * w - bw * h) <= (h + w) * (1 + scale)  # the aspect, to a canvas pixel
    else:
        assert ch <= h and cw <= w and c.top + ch <= h and c.left + cw <= w
