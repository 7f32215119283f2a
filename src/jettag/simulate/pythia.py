"""Pythia 8 set-up and extraction of an event record into numpy arrays."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

PROCESS_SETTINGS = {
    # pp -> ttbar: the ATLAS/CMS reference sample for b-tagging (b, c from W, light jets)
    "ttbar": ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on"],
    # pp -> Z' -> q qbar (d, u, s, c, b): high-pT jets of every flavour, ATLAS's extended sample;
    # the mass is set per shard (see zprime_settings), so that mixing shards flattens the pT
    "zprime": [
        "NewGaugeBoson:ffbar2gmZZprime = on",
        "Zprime:gmZmode = 3",
        "32:onMode = off",
        "32:onIfAny = 1 2 3 4 5",
    ],
}
# Long-lived strange hadrons (c tau > 10 mm: K0S, Lambda, Sigma+-, Xi, Omega); kept stable
# when long-lived decays are switched off.
STABLE_LONG_LIVED = ["ParticleDecays:limitTau0 = on", "ParticleDecays:tau0Max = 10."]


def zprime_settings(mass_gev: float) -> list[str]:
    """A narrow Z' mass window around one mass point."""
    return [f"32:m0 = {mass_gev}", f"32:mMin = {0.8 * mass_gev}", f"32:mMax = {1.2 * mass_gev}"]


@dataclass(frozen=True)
class EventRecord:
    """One event's particles, all arrays of shape (n_particles,); vertices in mm."""

    pdg_id: np.ndarray
    status: np.ndarray
    mother1: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    charge: np.ndarray
    is_final: np.ndarray

    @property
    def pt(self) -> np.ndarray:
        """Transverse momentum in GeV."""
        return np.hypot(self.px, self.py)

    @property
    def eta(self) -> np.ndarray:
        """Pseudorapidity (large finite values along the beam)."""
        p = np.sqrt(self.px**2 + self.py**2 + self.pz**2)
        return np.arctanh(np.clip(self.pz / np.maximum(p, 1e-12), -0.999999, 0.999999))

    @property
    def phi(self) -> np.ndarray:
        """Azimuth in (-pi, pi]."""
        return np.arctan2(self.py, self.px)


def make_pythia(
    process: str,
    sqrt_s_gev: float,
    seed: int,
    beam_spot_sigma_z_mm: float,
    long_lived_decays: bool = True,
    extra: list[str] | None = None,
):
    """A configured, initialised Pythia 8 instance; quiet, seeded, with a z beam spot."""
    import pythia8mc

    if process not in PROCESS_SETTINGS:
        raise ValueError(f"unknown process '{process}' (have {sorted(PROCESS_SETTINGS)})")
    pythia = pythia8mc.Pythia("", False)
    settings = [
        f"Beams:eCM = {sqrt_s_gev}",
        *PROCESS_SETTINGS[process],
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        # the luminous region: a long z spread, a transverse size negligible for d0
        "Beams:allowVertexSpread = on",
        f"Beams:sigmaVertexZ = {beam_spot_sigma_z_mm}",
        "Beams:sigmaVertexX = 0.0",
        "Beams:sigmaVertexY = 0.0",
        "Print:quiet = on",
        "Next:numberCount = 0",
        *([] if long_lived_decays else STABLE_LONG_LIVED),
        *(extra or []),
    ]
    for line in settings:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting '{line}'")
    if not pythia.init():
        raise RuntimeError("Pythia failed to initialise")
    return pythia


def extract_event(event) -> EventRecord:
    """Copy one Pythia event record into numpy arrays, particle by particle (tests, debugging).

    generate_records gives the same arrays for whole batches of events at a fraction of the
    cost: this loop makes ~12 binding calls per particle, ~55 % of a ttbar event's time.
    """
    rows = [
        (
            p.id(),
            p.status(),
            p.mother1(),
            p.px(),
            p.py(),
            p.pz(),
            p.e(),
            p.xProd(),
            p.yProd(),
            p.zProd(),
            p.charge(),
            p.isFinal(),
        )
        for p in event
    ]
    table = np.array(rows, dtype=np.float64)
    return EventRecord(
        pdg_id=table[:, 0].astype(np.int64),
        status=table[:, 1].astype(np.int64),
        mother1=table[:, 2].astype(np.int64),
        px=table[:, 3],
        py=table[:, 4],
        pz=table[:, 5],
        e=table[:, 6],
        x=table[:, 7],
        y=table[:, 8],
        z=table[:, 9],
        charge=table[:, 10],
        is_final=table[:, 11].astype(bool),
    )


class ChargeTable:
    """Particle charges by PDG id from Pythia's particle data, looked up once per id."""

    def __init__(self, particle_data) -> None:
        self._particle_data = particle_data
        self._charge: dict[int, float] = {}

    def __call__(self, pdg_id: np.ndarray) -> np.ndarray:
        """Charge (units of e) of each particle."""
        ids, inverse = np.unique(pdg_id, return_inverse=True)
        for i in ids.tolist():
            if i not in self._charge:
                self._charge[i] = float(self._particle_data.charge(i))
        return np.array([self._charge[i] for i in ids.tolist()], np.float64)[inverse]


def generate_records(pythia, n_events: int, charges: ChargeTable) -> list[EventRecord | None]:
    """The next n_events of Pythia as EventRecords (None for an event Pythia failed).

    One call to Pythia's batch interface (nextBatch, awkward arrays): the same events, in
    the same order and bit for bit, as n_events calls of next() read with extract_event.
    """
    import awkward as ak

    batch = pythia.nextBatch(n_events, "none")
    failed = ak.to_numpy(ak.is_none(batch, axis=0))
    particles = batch[~failed].prt
    counts = ak.to_numpy(ak.num(particles, axis=1))
    flat = ak.flatten(particles, axis=1)

    def column(array, dtype) -> np.ndarray:
        return ak.to_numpy(ak.fill_none(array, 0)).astype(dtype, copy=False)

    pdg_id = column(flat.id, np.int64)
    status = column(flat.status, np.int64)
    columns = {
        "pdg_id": pdg_id,
        "status": status,
        "mother1": column(flat.mother1, np.int64),
        "px": column(flat.p.px, np.float64),
        "py": column(flat.p.py, np.float64),
        "pz": column(flat.p.pz, np.float64),
        "e": column(flat.p.e, np.float64),
        # a particle without a production vertex reads (0, 0, 0), as Particle.xProd() does
        "x": column(flat.vProd.px, np.float64),
        "y": column(flat.vProd.py, np.float64),
        "z": column(flat.vProd.pz, np.float64),
        "charge": charges(pdg_id),
        "is_final": status > 0,  # Particle::isFinal()
    }
    bounds = np.concatenate([[0], np.cumsum(counts)])
    records = iter(
        EventRecord(**{k: v[start:stop] for k, v in columns.items()})
        for start, stop in itertools.pairwise(bounds)
    )
    return [None if f else next(records) for f in failed]
