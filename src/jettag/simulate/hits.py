"""Silicon hit patterns: which barrel layers a track crosses and leaves a hit in.

Hit counts are what ATLAS track quality cuts use (>= 7 silicon hits, >= 1 pixel hit, at most
one pixel hole), and they carry physics: a track made beyond the innermost layer (a K0S or
Lambda daughter, a hadronic-interaction product) has no innermost hit and a worse d0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jettag.config import HitsConfig

_MADE_IN_LAYER_MM = 1e-6


@dataclass(frozen=True)
class HitPattern:
    """Per-track hit counts, (n,) int arrays, and pixel hits per layer (n, n_pixel_layers)."""

    pixel_hit: np.ndarray
    n_pixel: np.ndarray
    n_sct: np.ndarray
    n_pixel_holes: np.ndarray

    @staticmethod
    def from_layers(
        pixel_hit: np.ndarray, n_sct: np.ndarray, pixel_crossed: np.ndarray | None = None
    ) -> HitPattern:
        """Counts from the pixel hits per layer (n, n_layers); None: every layer crossed."""
        crossed = np.ones_like(pixel_hit) if pixel_crossed is None else pixel_crossed
        # a hole is a crossed layer without a hit, after the first hit (before it, none is expected)
        after_first = np.cumsum(pixel_hit, axis=1) > 0
        holes = (crossed & ~pixel_hit & after_first).sum(axis=1)
        return HitPattern(
            pixel_hit=pixel_hit,
            n_pixel=pixel_hit.sum(axis=1).astype(np.int32),
            n_sct=np.asarray(n_sct).astype(np.int32),
            n_pixel_holes=holes.astype(np.int32),
        )

    def columns(self, n_shared: np.ndarray) -> dict[str, np.ndarray]:
        """The stored hit-count columns (HIT_FIELDS), with the shared-hit counts given."""
        return {
            "numberOfPixelHits": self.n_pixel,
            "numberOfSCTHits": self.n_sct,
            "numberOfInnermostPixelLayerHits": self.n_innermost,
            "numberOfNextToInnermostPixelLayerHits": self.n_next_to_innermost,
            "numberOfPixelSharedHits": n_shared,
            "numberOfPixelHoles": self.n_pixel_holes,
        }

    @property
    def n_innermost(self) -> np.ndarray:
        """Hits on the innermost pixel layer (IBL)."""
        return self.pixel_hit[:, 0].astype(np.int32)

    @property
    def n_next_to_innermost(self) -> np.ndarray:
        """Hits on the next-to-innermost pixel layer."""
        return self.pixel_hit[:, 1].astype(np.int32)


def hit_pattern(
    production_radius: np.ndarray, end_radius: np.ndarray, config: HitsConfig, rng
) -> HitPattern:
    """Hits on the layers between where a particle is made and where it stops."""
    n = production_radius.size
    # a particle made in a layer (a conversion or hadronic interaction there) has no hit on it;
    # its vertex is computed on the layer's radius only to rounding, hence the tolerance
    r0, r1 = production_radius[:, None] + _MADE_IN_LAYER_MM, end_radius[:, None]
    pixel = np.asarray(config.pixel_radii_mm)[None, :]
    sct = np.asarray(config.sct_radii_mm)[None, :]
    pixel_crossed = (r0 < pixel) & (pixel < r1)
    pixel_hit = pixel_crossed & (rng.random((n, pixel.size)) < config.pixel_hit_efficiency)
    sct_crossed = (r0 < sct) & (sct < r1)
    # SCT modules are double-sided: two hits per layer crossed
    sct_hits = (
        sct_crossed[:, :, None] & (rng.random((n, sct.size, 2)) < config.sct_hit_efficiency)
    ).sum(axis=(1, 2))
    return HitPattern.from_layers(pixel_hit, sct_hits, pixel_crossed)


def passes_quality(hits: HitPattern, config: HitsConfig) -> np.ndarray:
    """ATLAS Loose-like hit requirements."""
    return (
        (hits.n_pixel >= config.min_pixel_hits)
        & (hits.n_pixel + hits.n_sct >= config.min_silicon_hits)
        & (hits.n_pixel_holes <= config.max_pixel_holes)
    )
