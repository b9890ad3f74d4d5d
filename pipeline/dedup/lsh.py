"""LSH banding: which signature rows make a band, and the 64-bit key of each band of each signature.

Two documents become candidates when all `rows` values of any one of `bands` bands agree, which
happens with probability 1 - (1 - J^rows)^bands for Jaccard similarity J (`candidate_probability`).
`DedupConfig.banded()` takes (bands, rows) from `lsh_params`: the pair datasketch's `MinHashLSH`
chooses, which minimises a weighted sum of the areas under that curve below the threshold (false
positives) and above it (false negatives).

The weights depend on whether candidates are checked afterwards. With the exact Jaccard check
(the default) a false positive costs only the check, so false negatives weigh 0.9 and false
positives 0.1: at threshold 0.8, num_perm 128 that is 14 bands x 9 rows, and the check then drops
every candidate below 0.8. Without the check, datasketch's default equal weights are used (9 x 13),
a curve at 0.5 near J = 0.82 rather than one that merges pairs at 0.6. bench/results/lsh_banding.md
(`python -m bench.lsh_banding`) tabulates these curves and datatrove's default 14 x 8.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# (false positive weight, false negative weight) for datasketch's optimiser; see module doc.
WEIGHTS_VERIFIED = (0.1, 0.9)
WEIGHTS_UNVERIFIED = (0.5, 0.5)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# Two candidates whose weighted errors differ by less than this are left to datasketch to rank:
# quadrature here and scipy's `quad` there agree to ~1e-14 on these polynomials (tests compare them).
_TIE = 1e-9


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int, verified: bool = True) -> tuple[int, int]:
    """(bands, rows) for a Jaccard threshold, as datasketch's public `MinHashLSH(threshold, num_perm,
    weights)` chooses them (its `b` and `r`).

    The same search as datasketch's `_optimal_param`, the same order and the same strict `<`, but the
    areas come from Gauss-Legendre quadrature in numpy rather than scipy's `quad`: each integrand is a
    polynomial of degree b*r <= num_perm, which num_perm/2 + 2 nodes integrate exactly (to rounding).
    datasketch imports scipy.integrate, about 0.5 CPU-seconds and 120 MB in the build's process; it is
    asked only where two choices are too close for the two quadratures to be sure to rank alike.
    """
    weights = WEIGHTS_VERIFIED if verified else WEIGHTS_UNVERIFIED
    if not 0.0 <= threshold <= 1.0 or num_perm < 2:
        return _datasketch_params(threshold, num_perm, weights)  # which raises its ValueError
    errors = _weighted_errors(threshold, num_perm, *weights)
    best = int(np.argmin(errors))  # the first of equal minima, as datasketch's strict `<` keeps it
    others = np.delete(errors, best)
    bands, rows = _band_row_pairs(num_perm)[best]
    # A near tie is datasketch's to rank; one band is its error ("too small (b < 2)"), so it says it.
    if (len(others) and others.min() - errors[best] < _TIE) or bands < 2:
        return _datasketch_params(threshold, num_perm, weights)
    return bands, rows


def _band_row_pairs(num_perm: int) -> list[tuple[int, int]]:
    """Every (bands, rows) with bands * rows <= num_perm, in datasketch's search order."""
    return [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]


def _weighted_errors(threshold: float, num_perm: int, fp_weight: float, fn_weight: float) -> np.ndarray:
    """datasketch's weighted error of every (bands, rows) of `_band_row_pairs`: the area under the
    candidate curve below the threshold (false positives) and above the curve beyond it (false negatives)."""
    from numpy.polynomial.legendre import leggauss

    nodes, node_weights = leggauss(num_perm // 2 + 2)
    pairs = np.array(_band_row_pairs(num_perm), dtype=float)
    bands, rows = pairs[:, :1], pairs[:, 1:]

    def area(low: float, high: float, below: bool) -> np.ndarray:
        s = (high - low) / 2 * nodes[None, :] + (high + low) / 2
        p = 1.0 - (1.0 - s**rows) ** bands
        return (high - low) / 2 * ((p if below else 1.0 - p) * node_weights).sum(axis=1)

    return area(0.0, threshold, True) * fp_weight + area(threshold, 1.0, False) * fn_weight


def _datasketch_params(threshold: float, num_perm: int, weights: tuple[float, float]) -> tuple[int, int]:
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    return int(lsh.b), int(lsh.r)


def candidate_probability(jaccard: float | np.ndarray, bands: int, rows: int) -> float | np.ndarray:
    """Probability that two documents of this Jaccard similarity share at least one band."""
    return 1.0 - (1.0 - np.asarray(jaccard, dtype=float) ** rows) ** bands


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def band_hashes(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(docs, bands) int64 keys: band k hashes signature values [k*rows, (k+1)*rows).

    A 64-bit mix of the values rather than the values themselves keeps the grouping key one
    machine word; two different bands collide with probability ~ docs^2 / 2^64 per band. The band
    number seeds the mix, so the same values in two bands give different keys. int64 (the same
    bits) because Parquet readers and Delta handle signed integers everywhere.
    """
    if bands * rows > sigs.shape[1]:
        raise ValueError(f"{bands} bands x {rows} rows needs {bands * rows} permutations, have {sigs.shape[1]}")
    values = sigs.astype(np.uint64, copy=False)
    out = np.empty((sigs.shape[0], bands), np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            h = np.full(sigs.shape[0], np.uint64(band + 1) * _GOLDEN, np.uint64)
            for row in range(band * rows, (band + 1) * rows):
                h = _fmix64(h ^ values[:, row])
            out[:, band] = h
    return out.view(np.int64)
