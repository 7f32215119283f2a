"""ATLAS-style plots drawn from saved results (metrics JSON, history CSV)."""
