"""LSH banding: which signature rows make a band, and the 64-bit key of each band of each signature.

Two documents become candidates when all `rows` values of any one of `bands` bands agree, which
happens with probability 1 - (1 - J^rows)^bands for Jaccard similarity J. `lsh_params` chooses
(bands, rows) with datasketch's own routine (`_optimal_param`), which minimises a weighted sum of
the areas under that curve below the threshold (false positives) and above it (false negatives).

The weights depend on whether candidates are checked afterwards. With the exact Jaccard check
(the default) a false positive costs only the check, so false negatives weigh 0.9 and false
positives 0.1. At threshold 0.8, num_perm 128 that gives 14 bands x 9 rows:

    J                0.5    0.6    0.7    0.75   0.8    0.85   0.9    0.95
    P(candidate)     0.027  0.132  0.438  0.665  0.867  0.975  0.999  1.000

and the check then drops every candidate below 0.8. Without the check, datasketch's default equal
weights are used, 9 bands x 13 rows, a curve that is 0.5 at J ~ 0.82:

    P(candidate)     0.001  0.012  0.084  0.195  0.399  0.686  0.929  0.998

so unchecked runs lose about a third of the pairs at J = 0.85 rather than merge pairs at 0.6.
For comparison, datatrove's default 14 bands x 8 rows (112 permutations) gives 0.053, 0.211,
0.565, 0.772, 0.924, 0.988 at J = 0.5 ... 0.85: it is at 0.5 near J = 0.7, so without a check it
removes documents that are only 0.6-0.7 similar. `recall_curve` prints these rows for any setting.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# (false positive weight, false negative weight) for datasketch's optimiser; see module doc.
WEIGHTS_VERIFIED = (0.1, 0.9)
WEIGHTS_UNVERIFIED = (0.5, 0.5)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@lru_cache(maxsize=64)  # the optimiser integrates ~13,000 curves: 60 ms a call
def lsh_params(threshold: float, num_perm: int, verified: bool = True) -> tuple[int, int]:
    """(bands, rows) for a Jaccard threshold, from datasketch's `_optimal_param`."""
    # imported here: datasketch imports scipy.integrate, a CPU-second of every CLI start-up
    from datasketch.lsh import _optimal_param

    fp_weight, fn_weight = WEIGHTS_VERIFIED if verified else WEIGHTS_UNVERIFIED
    bands, rows = _optimal_param(threshold, num_perm, fp_weight, fn_weight)
    return int(bands), int(rows)


def candidate_probability(jaccard: float | np.ndarray, bands: int, rows: int) -> float | np.ndarray:
    """Probability that two documents of this Jaccard similarity share at least one band."""
    return 1.0 - (1.0 - np.asarray(jaccard, dtype=float) ** rows) ** bands


def recall_curve(bands: int, rows: int, points=(0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)) -> str:
    """The S-curve as a two-line text table, for docs and reports."""
    probs = candidate_probability(np.array(points), bands, rows)
    head = "J             " + " ".join(f"{p:6.2f}" for p in points)
    body = "P(candidate)  " + " ".join(f"{p:6.3f}" for p in probs)
    return f"{bands} bands x {rows} rows\n{head}\n{body}"


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
