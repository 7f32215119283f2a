"""Training: tensors from prepared files, the loop, checkpoints."""
