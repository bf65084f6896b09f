"""Evaluation: baselines, metrics, and interpolating held-out clips against ground truth."""
