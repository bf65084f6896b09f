"""Training: encoding clips into what the model sees, the EDM objective, LoRA/full trainable
sets, checkpoints, and the training loop."""
