"""`framerturbo report RUN_DIR`: plots of a training run and its samples, as one self-contained
HTML page (images embedded) plus the PNGs beside it."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_file


def read_metrics(run_dir: Path) -> list[dict]:
    """The run's log rows (``train/metrics_log.read_log``); a one-line error without one."""
    from ..train.metrics_log import read_log

    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics — is {run_dir} a run folder written by "
                                "`framerturbo train`?")
    return read_log(run_dir)


def _series(rows: list[dict], key: str):
    pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
    return ([p[0] for p in pts], [p[1] for p in pts]) if pts else None


def _plot(rows, keys: list[str], title: str, path: Path, log_y: bool = False) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {k: _series(rows, k) for k in keys}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    for k, (x, y) in series.items():
        # markers where points are few: a one-point series is otherwise an invisible line
        ax.plot(x, y, label=k.split("/")[-1], linewidth=1.2,
                marker="o" if len(x) <= 20 else None, markersize=4)
    ax.set_title(title)
    ax.set_xlabel("step")
    if log_y:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def sample_grid(run_dir: Path, out: Path) -> Path | None:
    """The newest validation GIF as a PNG: rows = clips (real | generated), columns = frames."""
    from PIL import Image

    gifs = sorted((Path(run_dir) / "samples").glob("*.gif"))
    if not gifs:
        return None
    frames = []
    with Image.open(gifs[-1]) as gif:
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    Image.fromarray(np.concatenate(frames, axis=1)).save(out)
    return out


def _embed(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def run_label(run_dir: Path) -> str:
    """``parent/name`` of a run folder (``demo-out/run``, ``runs/framer-lora``)."""
    run_dir = Path(run_dir).resolve()
    return f"{run_dir.parent.name}/{run_dir.name}" if run_dir.parent.name else run_dir.name


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    figs = run_dir / "report"
    figs.mkdir(exist_ok=True)
    sigma_keys = sorted({k for r in rows for k in r if k.startswith("loss_sigma/")})
    val_loss_keys = sorted({k for r in rows for k in r if k.startswith("val/loss_sigma")})
    plots = [
        _plot(rows, ["loss"], "training loss", figs / "loss.png", log_y=True),
        _plot(rows, sigma_keys, "loss per σ bucket", figs / "loss_sigma.png", log_y=True),
        _plot(rows, ["lr"], "learning rate", figs / "lr.png"),
        _plot(rows, val_loss_keys, "validation loss at fixed σ", figs / "val_loss.png",
              log_y=True),
        _plot(rows, ["val/psnr"], "validation PSNR (dB)", figs / "val_psnr.png"),
        _plot(rows, ["val/ssim"], "validation SSIM", figs / "val_ssim.png"),
        sample_grid(run_dir, figs / "samples.png"),
    ]
    last = {k: v for r in rows for k, v in r.items() if isinstance(v, (int, float))}
    summary = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.5g}</td></tr>"
                      for k, v in sorted(last.items()) if k != "step")
    body = "\n".join(f"<figure>{_embed(p)}</figure>" for p in plots if p is not None)
    name = html.escape(run_label(run_dir))
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>FramerTurbo training report: {name}</title>
<style>body{{font-family:sans-serif;margin:2em}}figure{{display:inline-block;margin:0.5em}}
img{{max-width:100%}}table{{border-collapse:collapse}}td{{padding:2px 8px;border-bottom:1px solid #ddd}}</style>
</head><body><h1>Training report: {name}</h1>
<p>{len(rows)} log rows, last step {rows[-1]["step"] if rows else 0}.</p>
<table>{summary}</table>
{body}
</body></html>"""
    out = Path(out) if out else run_dir / "report.html"
    with atomic_file(out) as tmp:
        tmp.write_text(page)
    return out
