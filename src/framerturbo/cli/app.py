"""`framerturbo app`: a Gradio web UI for interpolation with trajectories (the ``[app]`` extra).

Each browser session has its own state (the uploaded frames and its trajectories) in a
``gr.State`` — nothing is shared between users. Click on the start image to place a point and on
the end image to say where it goes (a point without a partner stays put). The model is loaded
once; requests run one at a time. The server binds to 127.0.0.1 unless ``--host`` says otherwise,
limits upload size, and no request can name a server path: images arrive as uploads, LoRAs are
chosen by name from those given on the command line, and results are written to fresh temporary
files.

(No ``from __future__ import annotations`` here: Gradio reads the ``gr.SelectData`` annotation
at run time to inject click coordinates.)
"""

import copy
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZES = [64, 128, 192, 256, 320, 384, 448, 512, 576, 640, 704, 768]
COLOURS = [(230, 60, 60), (60, 160, 230), (80, 200, 80), (230, 180, 40), (180, 80, 220)]


@dataclass
class Session:
    """One user's frames and trajectories. Each track: {"start": (x, y)|None, "end": …}."""

    start: Image.Image | None = None
    end: Image.Image | None = None
    tracks: list[dict] = field(default_factory=list)
    history: list[list[dict]] = field(default_factory=list)

    def _remember(self) -> None:
        self.history.append(copy.deepcopy(self.tracks))

    def click(self, which: str, x: float, y: float) -> None:
        """A click on the ``start`` image opens a new track; one on the ``end`` image completes
        the newest open track (or adds an end-only point)."""
        self._remember()
        if which == "start":
            self.tracks.append({"start": (x, y), "end": None})
            return
        for track in reversed(self.tracks):
            if track["end"] is None:
                track["end"] = (x, y)
                return
        self.tracks.append({"start": None, "end": (x, y)})

    def undo(self) -> None:
        if self.history:
            self.tracks = self.history.pop()

    def clear(self) -> None:
        self._remember()
        self.tracks = []

    def track_set(self, size: tuple[int, int]):
        """The trajectories as a TrackSet in start-image pixels (None when there are none)."""
        from ..core.tracks import Track, TrackSet

        tracks = []
        for t in self.tracks:
            a, b = t["start"] or t["end"], t["end"] or t["start"]
            points = np.array([a] if a == b else [a, b], dtype=np.float64)
            tracks.append(Track(points))
        return TrackSet(tracks, image_size=size) if tracks else None


def draw(image: Image.Image | None, session: Session, which: str) -> Image.Image | None:
    """The image with this session's points on it (numbered, one colour per track)."""
    if image is None:
        return None
    out = image.convert("RGB").copy()
    pen = ImageDraw.Draw(out)
    r = max(3, min(out.size) // 60)
    for i, t in enumerate(session.tracks):
        p = t[which]
        if p is None:
            continue
        c = COLOURS[i % len(COLOURS)]
        pen.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], outline=c, width=2)
        pen.text((p[0] + r + 1, p[1] - r), str(i + 1), fill=c)
    return out


class Runner:
    """The loaded pipeline and the generation call (one request at a time). ``turbo_scale``:
    the scale of the turbo LoRA the pipeline carries (``load_turbo``), applied only to requests
    with the ``turbo`` sampler (the others run the model without it)."""

    def __init__(self, pipe, loras: dict[str, str], fps: float = 7, motion_bucket: int = 100,
                 turbo_scale: float | None = None):
        self.pipe, self.loras, self.lock = pipe, loras, threading.Lock()
        self.fps, self.motion_bucket = fps, motion_bucket  # the model's (its framerturbo.json)
        self.turbo_scale = turbo_scale
        self.active: str | None = None

    def _use_lora(self, name: str, scale: float, sampler: str = "euler") -> None:
        from ..models.adapters import TURBO_ADAPTER, load_loras, set_weights
        from ..models.schedulers import TURBO, canonical_name

        unet = self.pipe.unet
        weights = {}
        if name != "none" and name in self.loras:
            if self.active != name:
                if self.active:
                    unet.delete_adapters([self.active])
                (self.active,) = load_loras(unet, [(self.loras[name], scale)])
            weights[self.active] = scale
        elif self.active:
            weights[self.active] = 0.0
        if self.turbo_scale is not None:
            weights[TURBO_ADAPTER] = self.turbo_scale if canonical_name(sampler) == TURBO else 0.0
        if weights:
            set_weights(unet, weights)

    def generate(self, session: Session, *, autopilot: bool, sampler: str, steps: int,
                 seed: int, gmin: float, gmax: float, frames: int, height: int, width: int,
                 lora: str, lora_scale: float, control_scale: float,
                 keep_static: float | None = None, fit: str = "pad"):
        import torch

        from ..media.files import to_uint8, write_gif, write_mp4
        from ..models.schedulers import canonical_name

        if session.start is None or session.end is None:
            raise ValueError("upload a start and an end image first")
        if canonical_name(sampler) not in offered_samplers(self):
            raise ValueError(f"sampler {sampler!r} is not offered here: choose one of "
                             f"{', '.join(offered_samplers(self))} (turbo needs `app --turbo`)")
        tracks = None if autopilot else session.track_set(session.start.size)
        has_control = self.pipe.controlnet is not None
        with self.lock:
            self._use_lora(lora, lora_scale, sampler)
            result = self.pipe(  # framed as interpolate --resize frames them
                session.start, session.end, num_frames=int(frames), height=int(height),
                width=int(width), num_inference_steps=int(steps), sampler=sampler,
                min_guidance_scale=gmin, max_guidance_scale=gmax, fps=self.fps,
                motion_bucket_id=self.motion_bucket, tracks=tracks if has_control else None,
                resize=fit, autopilot=autopilot and has_control,
                control_scale=control_scale, keep_static=keep_static, output_type="np",
                generator=torch.Generator().manual_seed(int(seed)))
        video = to_uint8(result.frames[0])
        folder = Path(tempfile.mkdtemp(prefix="framerturbo-app-"))
        mp4, gif = folder / "interpolation.mp4", folder / "interpolation.gif"
        write_mp4(video, mp4, fps=self.fps)
        write_gif(video, gif, fps=self.fps)
        return str(mp4), str(gif)


def offered_samplers(runner: Runner) -> list[str]:
    """Every sampler, ``turbo`` only when the app carries a turbo LoRA (`app --turbo`): on the
    undistilled model it samples a blur, the earlier toolkit's "LCM" mistake."""
    from ..models.schedulers import SAMPLERS, TURBO

    return [s for s in SAMPLERS if s != TURBO or runner.turbo_scale is not None]


def build_app(runner: Runner, defaults: dict | None = None):
    import gradio as gr

    from ..models.record import AUTOPILOT_CONTROL_SCALE, FRAMER_GUIDANCE

    d = {"height": 320, "width": 512, "frames": 14, "steps": 12, "sampler": "dpm++",
         "guidance": FRAMER_GUIDANCE, "keep_static": 0.0, "control_scale": 1.0} | (defaults or {})
    with gr.Blocks(title="FramerTurbo") as app:
        gr.Markdown("## FramerTurbo — interactive frame interpolation\n"
                    "Upload a start and an end frame. Click the start image to place a point, "
                    "then the end image to say where it goes. Or tick *autopilot*.")
        state = gr.State(None)  # a Session per browser session, created on first use
        with gr.Row():
            start = gr.Image(label="start frame", type="pil", sources=["upload"],
                             elem_id="start-image")
            end = gr.Image(label="end frame", type="pil", sources=["upload"], elem_id="end-image")
        points = gr.Markdown("no trajectory points", elem_id="points")
        with gr.Row():
            undo = gr.Button("undo point")
            clear = gr.Button("clear points")
            autopilot = gr.Checkbox(label="autopilot (SIFT matches, refined while sampling)")
        with gr.Accordion("settings", open=False):
            with gr.Row():
                sampler = gr.Dropdown(offered_samplers(runner), value=d["sampler"],
                                      label="sampler (turbo: the turbo LoRA of `app --turbo`, "
                                            "1–8 steps, no CFG)")
                steps = gr.Slider(1, 50, value=d["steps"], step=1, label="steps")
                seed = gr.Number(value=0, precision=0, label="seed")
            with gr.Row():
                gmin = gr.Slider(1.0, 10.0, value=d["guidance"][0], step=0.1,
                                 label="guidance, first frame")
                gmax = gr.Slider(1.0, 10.0, value=d["guidance"][1], step=0.1,
                                 label="guidance, last frame")
                control_scale = gr.Slider(0.0, 4.0, value=d["control_scale"], step=0.05,
                                          label="control scale")
                keep_static = gr.Slider(0.0, 1.0, value=d["keep_static"], step=0.05,
                                        label="keep static pixels (τ; 0: off)")
            with gr.Row():
                frames = gr.Slider(3, 25, value=d["frames"], step=1, label="frames")
                height = gr.Dropdown(SIZES, value=d["height"], label="height")
                width = gr.Dropdown(SIZES, value=d["width"], label="width")
                fit = gr.Dropdown(["pad", "crop", "squash"], value="pad",
                                  label="another aspect: pad (letterbox) / crop / squash")
            with gr.Row():
                lora = gr.Dropdown(["none", *runner.loras], value="none", label="LoRA")
                lora_scale = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="LoRA scale")
        run = gr.Button("interpolate", variant="primary", elem_id="run")
        with gr.Row():
            video = gr.Video(label="result", elem_id="result-video")
            gif = gr.File(label="GIF download")

        def describe(s: Session) -> str:
            if not s.tracks:
                return "no trajectory points"
            fmt = lambda p: "·" if p is None else f"({p[0]:.0f}, {p[1]:.0f})"  # noqa: E731
            return "; ".join(f"{i + 1}: {fmt(t['start'])} → {fmt(t['end'])}"
                             for i, t in enumerate(s.tracks))

        def on_upload(which):
            def handler(image, s):
                s = s or Session()
                setattr(s, which, image.convert("RGB") if image is not None else None)
                return s
            return handler

        def on_click(which):
            def handler(image, s, evt: gr.SelectData):
                s = s or Session()
                if getattr(s, which) is None and image is not None:
                    # the click's event ran before the upload's: take the image from the view
                    # (undrawn: nothing is drawn before the first click registers)
                    setattr(s, which, image.convert("RGB"))
                if getattr(s, which) is None:
                    return s, gr.update(), gr.update(), describe(s)
                x, y = evt.index[0], evt.index[1]
                s.click(which, float(x), float(y))
                return s, draw(s.start, s, "start"), draw(s.end, s, "end"), describe(s)
            return handler

        def edit(action):
            def handler(s):
                s = s or Session()
                getattr(s, action)()
                return s, draw(s.start, s, "start"), draw(s.end, s, "end"), describe(s)
            return handler

        views = [state, start, end, points]
        start.upload(on_upload("start"), [start, state], [state])
        end.upload(on_upload("end"), [end, state], [state])
        start.select(on_click("start"), [start, state], views)
        end.select(on_click("end"), [end, state], views)
        undo.click(edit("undo"), [state], views)
        clear.click(edit("clear"), [state], views)

        def on_run(s, ap, smp, st, sd, g0, g1, nf, h, w, lo, ls, cs, ks, ft,
                   progress=gr.Progress(track_tqdm=True)):
            try:
                return runner.generate(s or Session(), autopilot=ap, sampler=smp, steps=st,
                                       seed=sd, gmin=g0, gmax=g1, frames=nf, height=h, width=w,
                                       lora=lo, lora_scale=ls, control_scale=cs, keep_static=ks,
                                       fit=ft)
            except ValueError as e:
                raise gr.Error(str(e)) from None

        def on_autopilot(on: bool) -> float:
            """Autopilot's SIFT tracks steer at Framer's 0.5 (as in the CLI and the API), drawn
            points at the model's strength: the slider shows the scale the run will use."""
            return AUTOPILOT_CONTROL_SCALE if on else d["control_scale"]

        autopilot.change(on_autopilot, [autopilot], [control_scale])
        run.click(on_run, [state, autopilot, sampler, steps, seed, gmin, gmax, frames, height,
                           width, lora, lora_scale, control_scale, keep_static, fit],
                  [video, gif])
    return app


def launch(pipe, loras: dict[str, str], host: str = "127.0.0.1", port: int = 7860,
           max_upload_mb: int = 20, defaults: dict | None = None) -> None:
    """``defaults``: height, width, frames, steps, sampler, fps, motion_bucket, guidance,
    keep_static, control_scale (the model's), turbo_scale (when the pipeline carries a turbo
    LoRA)."""
    d = defaults or {}
    runner = Runner(pipe, loras, fps=d.get("fps", 7), motion_bucket=d.get("motion_bucket", 100),
                    turbo_scale=d.get("turbo_scale"))
    app = build_app(runner, defaults)
    app.queue(default_concurrency_limit=1)
    app.launch(server_name=host, server_port=port, max_file_size=f"{max_upload_mb}mb",
               show_error=True)
