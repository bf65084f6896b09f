"""Trajectories: parsing, PCHIP resampling, the heat-map rasteriser vs a per-point reference,
and SIFT endpoint matching."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import textured_image
from framerturbo.core.tracks import (Track, load_tracks, match_sift, parse_tracks, rasterize_heatmaps,
                                rescale_points, resample_track, resample_tracks)


def reference_heatmap(points, height, width, sigma=8.0, radius=20.0):
    """Straightforward per-point, per-pixel loop: Gaussian σ=8 px cut at 20 px, peak 255, max."""
    out = np.zeros((height, width))
    for x, y in points:
        if not (0 <= x < width and 0 <= y < height):
            continue
        for i in range(height):
            for j in range(width):
                d2 = (j - x) ** 2 + (i - y) ** 2
                if d2 <= radius**2:
                    out[i, j] = max(out[i, j], 255 * math.exp(-d2 / (2 * sigma**2)))
    return np.round(out).astype(np.uint8)


def test_rasteriser_matches_per_point_reference():
    frames = np.array([
        [[10.0, 12.0], [18.5, 14.2], [70.0, 5.0], [-3.0, 20.0]],  # overlap, edge, outside
        [[47.9, 39.0], [0.0, 0.0], [30.0, 30.0], [64.0, 10.0]],   # corner, x == W is outside
    ])
    maps = rasterize_heatmaps(frames, 40, 64, chunk=3)
    assert maps.shape == (2, 3, 40, 64) and maps.dtype.is_floating_point is False
    for f in range(2):
        ref = reference_heatmap(frames[f], 40, 64)
        assert np.array_equal(maps[f, 0].numpy(), ref)
        assert np.array_equal(maps[f, 1].numpy(), maps[f, 2].numpy())
    assert int(maps[0, 0, 12, 10]) == 255
    assert int(maps[0, 0, 35, 10]) == 0  # 23 px from the nearest point: beyond the cut


def test_empty_tracks_give_blank_heatmaps():
    assert int(rasterize_heatmaps(np.zeros((3, 0, 2)), 16, 16).max()) == 0


def test_resampling_one_two_and_many_points():
    still = resample_track(Track(np.array([[5.0, 6.0]])), 4)
    assert np.array_equal(still, [[5, 6]] * 4)
    line = resample_track(Track(np.array([[0.0, 0.0], [30.0, 60.0]])), 4)
    assert np.allclose(line, [[0, 0], [10, 20], [20, 40], [30, 60]])
    pts = np.array([[0.0, 0.0], [10.0, 50.0], [40.0, 50.0]])
    curve = resample_track(Track(pts, np.array([0.0, 0.25, 1.0])), 5)
    assert np.allclose(curve[[0, 1, 4]], pts)
    assert curve[:, 1].max() <= 50.0 + 1e-9  # PCHIP: no overshoot past the plateau
    held = resample_track(Track(np.array([[1.0, 1.0], [3.0, 3.0]]), np.array([0.25, 0.5])), 5)
    assert np.allclose(held[0], [1, 1]) and np.allclose(held[-1], [3, 3])
    assert resample_tracks([], 3).shape == (3, 0, 2)


def test_rescale_points():
    assert np.allclose(rescale_points(np.array([[100.0, 50.0]]), (200, 100), (512, 320)),
                       [[256, 160]])


def test_parse_accepts_both_layouts(tmp_path):
    doc = {"image_size": [640, 480], "tracks": [{"points": [[1, 2], [3, 4]], "times": [0, 1]},
                                                {"points": [[5, 6]]}]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    ts = load_tracks(path)
    assert ts.image_size == (640, 480) and len(ts.tracks) == 2
    assert np.array_equal(ts.tracks[0].times, [0, 1])
    assert len(parse_tracks([[[1, 2]], [[3, 4], [5, 6]]]).tracks) == 2


@pytest.mark.parametrize("doc,match", [
    ({"tracks": [{"points": []}]}, "no valid"),
    ({"tracks": [{"points": [[1, 2, 3]]}]}, "no valid"),
    ({"tracks": [{"points": [[1, "a"]]}]}, "no valid"),
    ({"tracks": [{"points": [[1, 2], [3, 4]], "times": [0.5, 0.2]}]}, "strictly increasing"),
    ({"image_size": [0, 10], "tracks": []}, "image_size"),
    ({"points": [[1, 2]]}, "no track list"),
    ({"tracks": [{"points": [[1, 2], [3e300, 4]]}]}, "coordinate of 3e\\+300 px, beyond any image"),
])
def test_parse_errors_name_the_source_and_fix(doc, match):
    with pytest.raises(ValueError, match=match) as err:
        parse_tracks(doc, "my.json")
    assert str(err.value).startswith("my.json:") and " — " in str(err.value)


def test_load_tracks_bad_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        load_tracks(bad)
    with pytest.raises(ValueError, match="file not found"):
        load_tracks(tmp_path / "none.json")


def test_sift_recovers_a_shift_and_spreads_points():
    a, b = textured_image(128, seed=1), textured_image(128, seed=1, shift=(6, 3))
    p0, p1 = match_sift(a, b, max_points=5, min_distance=20)
    assert 2 <= len(p0) <= 5
    assert np.allclose(p1 - p0, [6, 3], atol=1.0)
    d = np.hypot(*(p0[:, None] - p0[None]).transpose(2, 0, 1))
    assert (d[~np.eye(len(p0), dtype=bool)] >= 20).all()


def test_sift_no_match_is_empty():
    flat = np.full((64, 64, 3), 128, np.uint8)
    p0, p1 = match_sift(flat, flat)
    assert p0.shape == (0, 2) and p1.shape == (0, 2)


def test_tracks_move_with_a_picture_placed_on_a_canvas():
    """interpolate --resize: points given in their own image_size frame are scaled to the
    picture, then shifted by where the picture sits on the canvas; times are kept."""
    from framerturbo.core.tracks import Track, TrackSet, moved_to_canvas

    given = TrackSet([Track(np.array([[100.0, 50.0], [20.0, 10.0]]), np.array([0.0, 1.0]))],
                     image_size=(200, 100))
    moved = moved_to_canvas(given, (96, 48), (0, 24), (96, 96))
    assert moved.image_size == (96, 96)
    assert moved.tracks[0].points.tolist() == [[48.0, 48.0], [9.6, 28.8]]
    assert moved.tracks[0].times.tolist() == [0.0, 1.0]
    assert given.tracks[0].points.tolist() == [[100.0, 50.0], [20.0, 10.0]]  # not changed
    unsized = TrackSet([Track(np.array([[10.0, 20.0]]))])  # points in the picture's pixels
    assert moved_to_canvas(unsized, (96, 48), (-24, 0), (48, 48)).tracks[0].points.tolist() == [
        [-14.0, 20.0]]
