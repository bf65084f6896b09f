"""The app's per-session trajectory state survives every click order (the earlier app crashed
on several) and turns into tracks in start-image pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from framerturbo.cli.app import Session, draw


def test_click_orders_never_crash_and_make_sense():
    s = Session()
    s.undo()  # nothing to undo
    s.clear()
    s.click("end", 5, 5)  # an end before any start: an end-only (stationary) point
    s.click("start", 10, 10)
    s.click("start", 20, 20)  # two open tracks
    s.click("end", 30, 30)  # completes the newest open one
    s.click("end", 15, 15)  # then the older one
    s.click("end", 40, 40)  # nothing open: a new end-only point
    s.click("start", 1, 1)
    s.click("start", 1, 1)  # identical clicks are fine
    assert [(t["start"], t["end"]) for t in s.tracks] == [
        (None, (5, 5)), ((10, 10), (15, 15)), ((20, 20), (30, 30)), (None, (40, 40)),
        ((1, 1), None), ((1, 1), None)]
    s.undo()
    s.undo()
    assert len(s.tracks) == 4
    s.clear()
    assert s.tracks == []
    s.undo()
    assert len(s.tracks) == 4
    ts = s.track_set((64, 48))
    assert ts.image_size == (64, 48) and len(ts.tracks) == 4
    assert np.array_equal(ts.tracks[0].points, [[5, 5]])
    assert np.array_equal(ts.tracks[1].points, [[10, 10], [15, 15]])
    assert Session().track_set((64, 64)) is None


def test_draw_marks_points_without_touching_the_original():
    img = Image.new("RGB", (64, 64), (128, 128, 128))
    s = Session(start=img)
    s.click("start", 32, 32)
    marked = draw(img, s, "start")
    assert np.asarray(marked).std() > 0 and np.asarray(img).std() == 0
    assert draw(None, s, "end") is None


def test_autopilot_moves_the_control_slider_to_its_scale():
    """Ticking autopilot sets the control slider to Framer's autopilot strength (the CLI and the
    API give SIFT tracks 0.5); unticking it gives drawn points the model's strength back.
    Before, the slider stayed at the model's 2 and autopilot ran at 2 in the app only."""
    pytest.importorskip("gradio")
    from framerturbo.cli.app import Runner, build_app
    from framerturbo.models.record import AUTOPILOT_CONTROL_SCALE

    app = build_app(Runner(pipe=None, loras={}), {"control_scale": 2.0})
    (fn,) = [f.fn for f in app.fns.values() if getattr(f.fn, "__name__", "") == "on_autopilot"]
    assert fn(True) == AUTOPILOT_CONTROL_SCALE and fn(False) == 2.0


def test_the_app_letterboxes_a_wide_pair_and_moves_its_points(micro_pipe, monkeypatch):
    """A 2:1 upload on a 64×64 request is letterboxed (not stretched) and the clicked points move
    with it; the video shows the picture without the bars. The framing is the pipeline's
    ``resize=`` (the settings' pad / crop / squash), as interpolate's."""
    import framerturbo.sampling.pipeline as pipeline
    from framerturbo.cli.app import Runner, Session
    from framerturbo.media.files import read_video_frames

    seen = {}
    frame_batch = pipeline.frame_batch
    monkeypatch.setattr(pipeline, "frame_batch", lambda starts, ends, tracks, *a: (
        seen.update(given=tracks, framed=frame_batch(starts, ends, tracks, *a)[0]),
        [seen["framed"]])[1])
    session = Session()
    session.start = Image.fromarray(np.full((40, 80, 3), 200, np.uint8))
    session.end = session.start.copy()
    session.click("start", 10.0, 20.0)
    session.click("end", 30.0, 25.0)
    settings = dict(autopilot=False, sampler="euler", steps=2, seed=0, gmin=1.0, gmax=1.0,
                    frames=5, height=64, width=64, lora="none", lora_scale=1.0,
                    control_scale=1.0)
    mp4, _ = Runner(micro_pipe, {}).generate(session, **settings)
    framed = seen["framed"]
    assert framed.start.shape == (80, 80, 3) and not framed.start[:20].any()
    assert framed.tracks.image_size == (80, 80)
    assert framed.tracks.tracks[0].points.tolist() == [[10.0, 40.0], [30.0, 45.0]]
    assert read_video_frames(mp4).shape[1:3] == (32, 64)
    # the settings' "squash": Framer's own stretch, the points as clicked
    mp4, _ = Runner(micro_pipe, {}).generate(session, **settings, fit="squash")
    assert seen["framed"].start.shape == (40, 80, 3) and seen["given"].image_size == (80, 40)
    assert read_video_frames(mp4).shape[1:3] == (64, 64)
