"""Evaluation: predictions, discriminants, ROC curves and working points."""
