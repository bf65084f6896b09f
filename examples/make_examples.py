"""Regenerates start.png and end.png: the first and last of 9 frames of the procedural signer
clip with seed 3 at 128×128 (``framerturbo synth``'s renderer) — the micro model's own domain, with
edges and texture that autopilot's SIFT matching finds at this resolution.

    python examples/make_examples.py
"""

from pathlib import Path

from PIL import Image

from framerturbo.data.synthetic import render

if __name__ == "__main__":
    here = Path(__file__).parent
    clip = render("signer", 3, num_frames=9, size=128)
    Image.fromarray(clip.frames[0]).save(here / "start.png")
    Image.fromarray(clip.frames[-1]).save(here / "end.png")
