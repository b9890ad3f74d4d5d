"""Banding: datasketch's optimal parameters, band keys that agree exactly when the rows agree."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from pipeline.dedup.candidates import bucket_pairs
from pipeline.dedup import lsh
from pipeline.dedup.lsh import band_hashes, candidate_probability, lsh_params
from pipeline.dedup.unionfind import choose_keepers, cluster_labels, clustered_docs


def test_bands_and_rows_come_from_datasketch_optimiser():
    # datasketch 2.0's MinHashLSH at threshold 0.8: (0.1, 0.9) weights, and its default (0.5, 0.5)
    assert lsh_params(0.8, 128, verified=True) == (14, 9)
    assert lsh_params(0.8, 128, verified=False) == (9, 13)


def test_bands_and_rows_equal_datasketchs_choice_across_thresholds_and_sizes():
    """The numpy quadrature picks what datasketch's scipy `quad` picks, everywhere a user may set."""
    from datasketch import MinHashLSH

    for num_perm in (16, 64, 128, 256):
        for threshold in (0.05, 0.5, 0.7, 0.8, 0.85, 0.95):
            for verified, weights in ((True, lsh.WEIGHTS_VERIFIED), (False, lsh.WEIGHTS_UNVERIFIED)):
                try:
                    theirs = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
                except ValueError as exc:  # e.g. one band at a low threshold: the same error here
                    with pytest.raises(ValueError, match=re.escape(str(exc))):
                        lsh.lsh_params.__wrapped__(threshold, num_perm, verified)
                    continue
                assert lsh.lsh_params.__wrapped__(threshold, num_perm, verified) == (theirs.b, theirs.r)


def test_a_near_tie_is_left_to_datasketch(monkeypatch):
    asked = []
    monkeypatch.setattr(lsh, "_TIE", 1.0)  # every choice a near tie
    monkeypatch.setattr(lsh, "_datasketch_params", lambda *args: asked.append(args) or (7, 7))
    assert lsh.lsh_params.__wrapped__(0.8, 128, True) == (7, 7) and asked == [(0.8, 128, lsh.WEIGHTS_VERIFIED)]


def test_checked_banding_finds_pairs_at_085_and_datatrove_default_sits_at_07():
    assert candidate_probability(0.85, 14, 9) > 0.97
    assert 0.5 < candidate_probability(0.7, 14, 8) < 0.6  # datatrove's 14 x 8: its midpoint is J ~ 0.7


def test_band_keys_agree_exactly_where_the_band_rows_agree():
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, size=(4, 128), dtype=np.uint64).astype(np.uint32)
    sigs[1, :9] = sigs[0, :9]  # band 0 shared
    sigs[2, 9:18] = sigs[0, 9:18]  # band 1 shared
    sigs[3] = sigs[0]
    sigs[3, 8] ^= 1  # one row of band 0 differs
    keys = band_hashes(sigs, 14, 9)
    assert keys[1, 0] == keys[0, 0] and keys[1, 1] != keys[0, 1]
    assert keys[2, 1] == keys[0, 1] and keys[2, 0] != keys[0, 0]
    assert keys[3, 0] != keys[0, 0] and (keys[3, 1:] == keys[0, 1:]).all()


def test_bucket_members_pair_with_the_smallest_doc_and_unique_keys_give_no_pairs():
    keys = pl.LazyFrame({"doc": [5, 2, 9, 7, 3, 4], "key": [10, 10, 10, 11, None, None]}, schema={"doc": pl.UInt32, "key": pl.Int64})
    pairs = bucket_pairs(keys).collect().sort("doc")
    assert pairs.rows() == [(5, 2), (9, 2)]


def test_clusters_join_transitively():
    labels = cluster_labels(np.array([[1, 0], [2, 1], [4, 3]], np.uint32), 6)
    assert labels[0] == labels[1] == labels[2] and labels[3] == labels[4]
    assert len({labels[0], labels[3], labels[5]}) == 3
    assert sorted(clustered_docs(labels)["doc"].to_list()) == [0, 1, 2, 3, 4]


def test_keeper_is_highest_quality_then_smallest_id_among_documents_still_present():
    members = pl.DataFrame(
        {
            "doc": [0, 1, 2, 3, 4, 5, 6],
            "cluster": [0, 0, 0, 1, 1, 2, 2],
            "id": ["b", "a", "c", "e", "d", "f", "g"],
            "quality_score": [0.5, 0.5, 0.9, None, None, 0.1, 0.9],
            "present": [True, True, False, True, True, True, False],
        }
    )
    kept, removed = choose_keepers(members)
    # cluster 0: c scores highest but was removed earlier; a and b tie, a is the smaller id.
    # cluster 1: no scores, smallest id. cluster 2: g (absent) outranks f, f is kept and alone.
    assert sorted(kept.rows()) == [("a", "a"), ("d", "d"), ("f", "f")]
    assert sorted(removed.rows()) == [("b", "a"), ("e", "d")]
