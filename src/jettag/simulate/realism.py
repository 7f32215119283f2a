"""Switching the detector-realism effects off together (the prototype's idealised tracker)."""

from __future__ import annotations

import dataclasses

from jettag.config import SimulationConfig


def ideal_detector(simulation: SimulationConfig) -> SimulationConfig:
    """The same simulation with tails, material, merging, fakes, pile-up and K0S decays off."""
    t = simulation.tracker
    tracker = dataclasses.replace(
        t,
        tails=dataclasses.replace(t.tails, enabled=False),
        material=dataclasses.replace(t.material, enabled=False),
        dense=dataclasses.replace(t.dense, enabled=False),
        fakes=dataclasses.replace(t.fakes, enabled=False),
    )
    return dataclasses.replace(
        simulation,
        tracker=tracker,
        long_lived_decays=False,
        pileup=dataclasses.replace(simulation.pileup, enabled=False),
    )
