"""Preprocessing: derived variables, transforms, normalisation, reweighting, splits."""
