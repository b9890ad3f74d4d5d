"""Near-duplicate removal: MinHash signatures (identical to datasketch's), LSH bands, union-find.

`dedup_dataset(ds, cfg)` runs the whole stage over a dataset; `compute_shard_signatures` and
`group_band` are its two parallel steps for an orchestrator to map (see `stage`).
"""

from pipeline.dedup.candidates import group_band
from pipeline.dedup.stage import (
    DedupReport,
    compute_shard_signatures,
    dedup_dataset,
    prepare_signatures,
    record_signatures,
    resolve_duplicates,
)

__all__ = [
    "DedupReport",
    "compute_shard_signatures",
    "dedup_dataset",
    "group_band",
    "prepare_signatures",
    "record_signatures",
    "resolve_duplicates",
]
