"""Sampling: FramerPipeline and autopilot trajectory refinement."""
