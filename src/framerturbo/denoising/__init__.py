"""The network step and its inputs: encoders, conditioning, FramerDenoiser."""
