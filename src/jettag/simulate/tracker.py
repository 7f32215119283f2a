"""A parametrised tracker: helix perigee parameters, resolution smearing, selection.

Impact parameters are measured from the reconstructed primary vertex, whose resolution
enters the reported uncertainties as in ATLAS's impact-parameter estimator. The transverse
impact parameter follows the ATLAS perigee convention: the point of closest approach is
d0 (-sin(phi0), cos(phi0)), so d0 = y cos(phi) - x sin(phi) in the straight-line limit and a
track from a decay along the jet has d0 = L sin(phi_jet - phi_trk); the helix in the
solenoid field is taken into account exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from jettag.config import DenseConfig, EfficiencyConfig, TailsConfig, TrackerConfig
from jettag.io.canonical import HIT_FIELDS
from jettag.simulate import pdg
from jettag.simulate.hits import HitPattern, hit_pattern, passes_quality
from jettag.simulate.particles import Particles

# radius [m] = pT [GeV] / (C * B [T] * |q|)
_CURVATURE_CONSTANT = 0.299792458


@dataclass(frozen=True)
class Perigee:
    """True track parameters at the point of closest approach to the z axis; (n,) arrays."""

    d0: np.ndarray  # mm
    z0: np.ndarray  # mm, along the beam
    phi0: np.ndarray
    theta: np.ndarray
    pt: np.ndarray  # GeV


def perigee_parameters(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    charge: np.ndarray,
    b_field_tesla: float,
) -> Perigee:
    """Perigee parameters of charged helices produced at (x, y, z) relative to the vertex."""
    pt = np.hypot(px, py)
    phi = np.arctan2(py, px)
    q = np.sign(charge)
    radius = 1000.0 * pt / (_CURVATURE_CONSTANT * b_field_tesla * np.abs(charge))
    # centre of the circle: positive charges bend clockwise in a field along +z
    cx = x + q * radius * np.sin(phi)
    cy = y - q * radius * np.cos(phi)
    centre_distance = np.hypot(cx, cy)
    # ATLAS sign: positive when the z axis lies to the right of the motion at the perigee
    d0 = q * (radius - centre_distance)
    phi0 = np.arctan2(q * cx, -q * cy)
    # transverse arc length from the perigee to the production point, along the motion
    angle_perigee = np.arctan2(-cy, -cx)
    angle_production = np.arctan2(y - cy, x - cx)
    swept = np.angle(np.exp(1j * q * (angle_perigee - angle_production)))
    arc = radius * swept
    z0 = z - arc * pz / pt
    theta = np.arctan2(pt, pz)
    return Perigee(d0=d0, z0=z0, phi0=phi0, theta=theta, pt=pt)


def resolution(
    constant: float, multiple_scattering: float, pt: np.ndarray, theta: np.ndarray
) -> np.ndarray:
    """sigma = constant (+) multiple_scattering / (pT sqrt(sin theta)), added in quadrature."""
    return np.hypot(constant, multiple_scattering / (pt * np.sqrt(np.sin(theta))))


def fit_uncertainties(
    pt: np.ndarray,
    theta: np.ndarray,
    n_innermost: np.ndarray,
    n_shared: np.ndarray,
    tracker: TrackerConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Track-fit sigma(d0), sigma(z0 sin theta): pT, theta and the hit pattern's lever arm."""
    lever_arm = np.where(n_innermost == 0, tracker.no_innermost_hit_resolution_factor, 1.0)
    d0, z0 = tracker.d0_resolution_mm, tracker.z0_resolution_mm
    d0_sigma = lever_arm * resolution(d0.constant, d0.multiple_scattering, pt, theta)
    z0_sigma = lever_arm * resolution(z0.constant, z0.multiple_scattering, pt, theta)
    if tracker.dense.enabled:
        shared = np.where(n_shared > 0, tracker.dense.shared_resolution_factor, 1.0)
        d0_sigma, z0_sigma = d0_sigma * shared, z0_sigma * shared
    return d0_sigma, z0_sigma


def with_vertex_uncertainty(
    d0_sigma: np.ndarray, z0_sigma: np.ndarray, theta: np.ndarray, tracker: TrackerConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Reported sigma(d0), sigma(z0 sin theta): the fit's, with the vertex resolution added."""
    if not tracker.primary_vertex_in_uncertainty:
        return d0_sigma, z0_sigma
    return (
        np.hypot(d0_sigma, tracker.primary_vertex_xy_resolution_mm),
        np.hypot(z0_sigma, tracker.primary_vertex_z_resolution_mm * np.sin(theta)),
    )


@dataclass(frozen=True)
class Tracks:
    """Reconstructed tracks; every array has shape (n_tracks,)."""

    record_index: np.ndarray  # index of the truth particle in the event record, -1 if none
    origin: np.ndarray  # ftagTruthOriginLabel
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    charge: np.ndarray
    d0: np.ndarray
    z0_sin_theta: np.ndarray
    d0_uncertainty: np.ndarray
    z0_sin_theta_uncertainty: np.ndarray
    hits: dict[str, np.ndarray]  # HIT_FIELDS -> (n_tracks,) int32
    # (n_tracks, 3) production vertex of the truth particle, mm from the hard scatter; NaN
    # for fakes (no truth particle)
    truth_vertex: np.ndarray

    def __len__(self) -> int:
        return self.pt.size

    def select(self, mask: np.ndarray) -> Tracks:
        """The tracks where mask is True (or at the given indices)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        hits = {k: v[mask] for k, v in fields.pop("hits").items()}
        return Tracks(**{k: v[mask] for k, v in fields.items()}, hits=hits)

    @staticmethod
    def concatenate(parts: list[Tracks]) -> Tracks:
        """All tracks of several tables, in order."""
        names = [f.name for f in dataclasses.fields(Tracks) if f.name != "hits"]
        columns = {n: np.concatenate([getattr(p, n) for p in parts]) for n in names}
        hits = {k: np.concatenate([p.hits[k] for p in parts]) for k in HIT_FIELDS}
        return Tracks(**columns, hits=hits)


def efficiency(pt: np.ndarray, eta: np.ndarray, config: EfficiencyConfig) -> np.ndarray:
    """Reconstruction efficiency: a pT turn-on times an eta-dependent plateau."""
    plateau = config.plateau - config.forward_loss * (np.abs(eta) / 2.5) ** 2
    turn_on = 1.0 - np.exp(-np.maximum(pt - config.threshold_gev, 0.0) / config.turn_on_gev)
    return np.clip(plateau * turn_on, 0.0, 1.0)


def smear(sigma: np.ndarray, tails: TailsConfig, rng: np.random.Generator) -> np.ndarray:
    """Gaussian residuals; with tails on, a fraction is drawn `scale` times wider, and a
    fraction gets a further residual of fixed width (no random draw when that is 0)."""
    residual = sigma * rng.standard_normal(sigma.size)
    if tails.enabled and tails.fraction > 0:
        wide = rng.random(sigma.size) < tails.fraction
        residual = np.where(wide, residual * tails.scale, residual)
    if tails.enabled and tails.fixed_fraction > 0:
        hit = rng.random(sigma.size) < tails.fixed_fraction
        residual = residual + np.where(
            hit, tails.fixed_width_mm * rng.standard_normal(sigma.size), 0.0
        )
    return residual


def merged_clusters(
    phi0: np.ndarray,
    z0: np.ndarray,
    theta: np.ndarray,
    curvature_radius: np.ndarray,
    charge: np.ndarray,
    pixel_hit: np.ndarray,
    radii: np.ndarray,
    config: DenseConfig,
) -> np.ndarray:
    """(n_tracks, 2) bool: the track's hit on each of the two innermost layers is shared.

    Two tracks share a cluster where they pass closer than a cluster size in r-phi and in z;
    in the core of a high-pT jet, tracks are collimated enough for this to happen often.
    """
    shared = np.zeros((phi0.size, 2), dtype=bool)
    cot_theta = 1.0 / np.tan(theta)
    for layer in range(2):
        radius = radii[layer]
        on_layer = np.flatnonzero(pixel_hit[:, layer])
        if on_layer.size < 2:
            continue
        bend = np.arcsin(np.clip(radius / (2.0 * curvature_radius[on_layer]), -1.0, 1.0))
        phi = np.mod(phi0[on_layer] - np.sign(charge[on_layer]) * bend, 2.0 * np.pi)
        z = z0[on_layer] + radius * cot_theta[on_layer]
        shared[on_layer, layer] = _close_pairs(
            phi, z, config.cluster_size_rphi_mm / radius, config.cluster_size_z_mm
        )
    return shared


def _close_pairs(phi: np.ndarray, z: np.ndarray, max_dphi: float, max_dz: float) -> np.ndarray:
    """Mask of points with another point closer than (max_dphi, max_dz); phi in [0, 2 pi).

    Sorting by phi makes this O(n log n): only neighbours within max_dphi in the sorted order
    are compared, one offset at a time (the wrap at 2 pi is handled by a shifted copy).
    """
    n = phi.size
    order = np.argsort(phi)
    sorted_phi, sorted_z = phi[order], z[order]
    ext_phi = np.concatenate([sorted_phi, sorted_phi + 2.0 * np.pi])
    ext_z = np.concatenate([sorted_z, sorted_z])
    ext_index = np.concatenate([order, order])
    close = np.zeros(n, dtype=bool)
    base = np.arange(n)
    for offset in range(1, n):
        partner = base + offset
        within = ext_phi[partner] - sorted_phi < max_dphi
        if not within.any():
            break
        pair = within & (np.abs(ext_z[partner] - sorted_z) < max_dz)
        close[order[pair]] = True
        close[ext_index[partner[pair]]] = True
    return close


def reconstruct_tracks(
    particles: Particles,
    pv_z_reco: float,
    tracker: TrackerConfig,
    rng: np.random.Generator,
    pv_xy_reco: tuple[float, float] = (0.0, 0.0),
) -> Tracks:
    """Hits, resolution (with tails), merged clusters, efficiency and selection of particles.

    Particle positions are relative to the true primary vertex; (`pv_xy_reco`, `pv_z_reco`)
    is the reconstructed vertex (relative to the true one), from which d0 and z0 are measured.
    """
    # particles far outside the acceptance cost time and can never make a track
    pt_all = particles.pt
    rough_eta = np.arcsinh(particles.pz / np.maximum(pt_all, 1e-9))
    p = particles.select(
        (pt_all > 0.8 * tracker.pt_min_gev) & (np.abs(rough_eta) < tracker.abs_eta_max + 0.1)
    )
    true = perigee_parameters(
        p.x - pv_xy_reco[0], p.y - pv_xy_reco[1], p.z - pv_z_reco, p.px, p.py, p.pz, p.charge,
        tracker.b_field_tesla,
    )  # fmt: skip
    n = len(p)
    hits = hit_pattern(p.production_radius, p.end_radius, tracker.hits, rng)
    lost = np.zeros(n, dtype=bool)
    n_shared = np.zeros(n, dtype=np.int32)
    if tracker.dense.enabled:
        curvature = 1000.0 * true.pt / (_CURVATURE_CONSTANT * tracker.b_field_tesla)
        shared = merged_clusters(
            true.phi0, true.z0, true.theta, curvature, p.charge, hits.pixel_hit,
            np.asarray(tracker.hits.pixel_radii_mm), tracker.dense,
        )  # fmt: skip
        # merged on both innermost layers: the pattern recognition often keeps one track only
        merged = shared.all(axis=1)
        lost = merged & (rng.random(n) < tracker.dense.merged_loss_probability)
        n_shared = shared.sum(axis=1).astype(np.int32)
    d0_sigma, z0_sigma = fit_uncertainties(true.pt, true.theta, hits.n_innermost, n_shared, tracker)
    res = tracker.pt_resolution
    pt = true.pt * (
        1.0 + np.hypot(res.constant, res.slope_per_gev * true.pt) * rng.standard_normal(n)
    )
    # the residual is symmetric; subtracting it keeps every event the realisation it was
    # before d0 took ATLAS's sign (measured d0 exactly minus the old one)
    d0 = true.d0 - smear(d0_sigma, tracker.tails, rng)
    z0_sin_theta = true.z0 * np.sin(true.theta) + smear(z0_sigma, tracker.tails, rng)
    eta = -np.log(np.tan(true.theta / 2.0))
    found = rng.random(n) < efficiency(true.pt, eta, tracker.efficiency)
    # the residuals above are the fit's; the vertex error is already in the measured values
    d0_sigma, z0_sigma = with_vertex_uncertainty(d0_sigma, z0_sigma, true.theta, tracker)
    keep = (
        found
        & ~lost
        & passes_quality(hits, tracker.hits)
        & (pt > tracker.pt_min_gev)
        & (np.abs(eta) < tracker.abs_eta_max)
        & (np.abs(d0) < tracker.max_abs_d0_mm)
        & (np.abs(z0_sin_theta) < tracker.max_abs_z0_sin_theta_mm)
    )
    hit_columns = hits.columns(n_shared)
    return Tracks(
        record_index=p.record_index[keep],
        origin=p.origin[keep],
        pt=pt[keep],
        eta=eta[keep],
        phi=true.phi0[keep],
        charge=np.sign(p.charge[keep]),
        d0=d0[keep],
        z0_sin_theta=z0_sin_theta[keep],
        d0_uncertainty=d0_sigma[keep],
        z0_sin_theta_uncertainty=z0_sigma[keep],
        hits={k: v[keep] for k, v in hit_columns.items()},
        truth_vertex=np.stack([p.x, p.y, p.z], axis=1)[keep],
    )


def fake_tracks(
    jet_pt: float,
    jet_eta: float,
    jet_phi: float,
    cone: float,
    tracker: TrackerConfig,
    rng: np.random.Generator,
) -> Tracks:
    """Fake tracks in one jet: random hit combinations near its axis, wide impact parameters.

    With `fakes.realistic_hit_patterns` their hit counts are those of real prompt tracks (with
    the configured excess of missing and shared hits) and their uncertainties follow from
    them as for a real track; otherwise the old uniform random patterns are drawn.
    """
    fakes = tracker.fakes
    mean = fakes.per_jet_constant + fakes.per_jet_per_100gev * jet_pt / 100.0
    n = rng.poisson(mean) if fakes.enabled else 0
    dr = cone * np.sqrt(rng.random(n))  # uniform over the cone's area
    angle = rng.uniform(0, 2 * np.pi, n)
    eta = jet_eta + dr * np.cos(angle)
    pt = tracker.pt_min_gev + rng.exponential(fakes.pt_mean_above_min_gev, n)
    theta = 2.0 * np.arctan(np.exp(-eta))
    phi = np.angle(np.exp(1j * (jet_phi + dr * np.sin(angle))))
    if not fakes.realistic_hit_patterns:
        return _random_hit_fakes(pt, eta, phi, theta, tracker, rng)
    charge = rng.choice([-1.0, 1.0], n)
    d0 = -rng.laplace(0.0, fakes.d0_scale_mm, n)  # negated like the residuals (see above)
    z0_sin_theta = rng.laplace(0.0, fakes.z0_sin_theta_scale_mm, n)
    hits, n_shared, passes = fake_hit_patterns(n, tracker, rng)
    d0_sigma, z0_sigma = fit_uncertainties(pt, theta, hits.n_innermost, n_shared, tracker)
    d0_sigma, z0_sigma = with_vertex_uncertainty(d0_sigma, z0_sigma, theta, tracker)
    tracks = Tracks(
        record_index=np.full(n, -1, np.int64),
        origin=np.full(n, pdg.ORIGIN_FAKE, np.int32),
        pt=pt,
        eta=eta,
        phi=phi,
        charge=charge,
        d0=d0,
        z0_sin_theta=z0_sin_theta,
        d0_uncertainty=d0_sigma,
        z0_sin_theta_uncertainty=z0_sigma,
        hits=hits.columns(n_shared),
        truth_vertex=np.full((n, 3), np.nan),
    )
    # the same acceptance as real tracks: a fake outside it would be recognisable by eta alone
    return tracks.select(passes & (np.abs(eta) < tracker.abs_eta_max))


FAKE_PATTERN_TRIES = 50


def fake_hit_patterns(
    n: int, tracker: TrackerConfig, rng: np.random.Generator
) -> tuple[HitPattern, np.ndarray, np.ndarray]:
    """Hit patterns of n fakes, the number of shared hits of each, and whether each passes.

    A fake is drawn as a track from the beam line would be (so its counts are always
    possible ones), with every layer's hit efficiency lowered by `extra_hit_inefficiency`,
    and redrawn until it passes the Loose hit cuts (as every reconstructed track does); each
    of its hits on the two innermost layers is shared with probability `shared_hit_probability`.
    """
    fakes = tracker.fakes
    keep = 1.0 - fakes.extra_hit_inefficiency
    config = dataclasses.replace(
        tracker.hits,
        pixel_hit_efficiency=tracker.hits.pixel_hit_efficiency * keep,
        sct_hit_efficiency=tracker.hits.sct_hit_efficiency * keep,
    )
    pattern = hit_pattern(np.zeros(n), np.full(n, np.inf), config, rng)
    pixel_hit, n_sct = pattern.pixel_hit.copy(), pattern.n_sct.copy()
    passes = passes_quality(pattern, tracker.hits)
    for _ in range(FAKE_PATTERN_TRIES):
        redo = np.flatnonzero(~passes)
        if redo.size == 0:
            break
        again = hit_pattern(np.zeros(redo.size), np.full(redo.size, np.inf), config, rng)
        pixel_hit[redo], n_sct[redo] = again.pixel_hit, again.n_sct
        passes[redo] = passes_quality(again, tracker.hits)
    hits = HitPattern.from_layers(pixel_hit, n_sct)
    innermost = pixel_hit[:, :2]
    shared = innermost & (rng.random(innermost.shape) < fakes.shared_hit_probability)
    return hits, shared.sum(axis=1).astype(np.int32), passes


def _random_hit_fakes(pt, eta, phi, theta, tracker: TrackerConfig, rng) -> Tracks:
    """The old fakes: uncertainties of a real track of that pT, uniform random hit counts."""
    fakes = tracker.fakes
    n = pt.size
    d0_sigma = resolution(
        tracker.d0_resolution_mm.constant, tracker.d0_resolution_mm.multiple_scattering, pt, theta
    )
    z0_sigma = resolution(
        tracker.z0_resolution_mm.constant, tracker.z0_resolution_mm.multiple_scattering, pt, theta
    )
    d0_sigma, z0_sigma = with_vertex_uncertainty(d0_sigma, z0_sigma, theta, tracker)
    n_pixel = rng.integers(tracker.hits.min_pixel_hits, len(tracker.hits.pixel_radii_mm) + 1, n)
    return Tracks(
        record_index=np.full(n, -1, np.int64),
        origin=np.full(n, pdg.ORIGIN_FAKE, np.int32),
        pt=pt,
        eta=eta,
        phi=phi,
        charge=rng.choice([-1.0, 1.0], n),
        d0=-rng.laplace(0.0, fakes.d0_scale_mm, n),  # negated like the residuals (see above)
        z0_sin_theta=rng.laplace(0.0, fakes.z0_sin_theta_scale_mm, n),
        d0_uncertainty=d0_sigma,
        z0_sin_theta_uncertainty=z0_sigma,
        hits={
            "numberOfPixelHits": n_pixel.astype(np.int32),
            "numberOfSCTHits": rng.integers(max(tracker.hits.min_silicon_hits - 4, 0), 9, n).astype(
                np.int32
            ),
            "numberOfInnermostPixelLayerHits": (rng.random(n) < 0.7).astype(np.int32),
            "numberOfNextToInnermostPixelLayerHits": (rng.random(n) < 0.7).astype(np.int32),
            "numberOfPixelSharedHits": rng.integers(0, 3, n).astype(np.int32),
            "numberOfPixelHoles": (rng.random(n) < 0.3).astype(np.int32),
        },
        truth_vertex=np.full((n, 3), np.nan),
    )
