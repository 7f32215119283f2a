"""jettag: a pipeline for jet-flavour tagging with track-based neural networks."""

__version__ = "0.1.0"
