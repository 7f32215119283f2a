"""Readers of ROOT and HDF5 track collections and the canonical HDF5 writer."""
