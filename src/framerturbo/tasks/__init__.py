"""User-level jobs built on sampling, training and evaluation."""
