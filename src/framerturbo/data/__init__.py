"""Training data: sources (videos, frame folders, manifests), seek-based clip reading, the
dataset, quality checks, point tracks from video, and the latent cache."""
