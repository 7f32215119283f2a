"""Taggers: shared layers, Deep Sets, an IP3D-like baseline and a registry by name."""
