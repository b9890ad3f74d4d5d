"""Where each table of a dataset lives under the warehouse root (local path or fsspec URL).

<root>/<dataset>/docs/                Delta table of documents
<root>/<dataset>/rejects/             Delta table of rejected records
<root>/<dataset>/stats/shards/        one row per committed input (the commit marker)
<root>/<dataset>/stats/stages/        one row per (input, stage)
<root>/<dataset>/filtered/            opt-in: full rows of documents the quality rules/classifier rejected
<root>/<dataset>/builds/              one row per build: versions a model's lineage points at
<root>/<dataset>/dedup/               MinHash band signatures per shard (near-duplicate stage)
<root>/<dataset>/tokens/<tokenizer>/  tokenizer.model, train.bin, val.bin, *.idx, meta.json
<root>/runs/<run-id>/                 checkpoints, metrics.parquet, samples.txt, lineage.json

Token files are memory-mapped and a training run writes its checkpoint as it goes, so both need a
local folder: under an object-store root they are made in `local_mirror(...)` of their place, and a
finished run is uploaded to its place in the warehouse (flows/train_after_build.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from warehouse.errors import UsageError

DEFAULT_ROOT = "data/warehouse"


def join(base: str, *parts: str) -> str:
    """Join URL or path parts with '/', which both local paths and fsspec URLs accept."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


@dataclass(frozen=True)
class DatasetPaths:
    root: str
    name: str

    @classmethod
    def parse(cls, spec: str) -> "DatasetPaths":
        """`DIR/NAME` as the CLI takes it: the last path component is the dataset name."""
        spec = spec.rstrip("/")
        root, _, name = spec.rpartition("/")
        if not name:
            raise UsageError(f"expected DIR/NAME, got {spec!r}")
        return cls(root or ".", name)

    @property
    def base(self) -> str:
        return join(self.root, self.name)

    @property
    def docs(self) -> str:
        return join(self.base, "docs")

    @property
    def rejects(self) -> str:
        return join(self.base, "rejects")

    @property
    def shards(self) -> str:
        return join(self.base, "stats", "shards")

    @property
    def stages(self) -> str:
        return join(self.base, "stats", "stages")

    @property
    def filtered(self) -> str:
        return join(self.base, "filtered")

    @property
    def builds(self) -> str:
        return join(self.base, "builds")

    @property
    def dedup(self) -> str:
        return join(self.base, "dedup")

    def tokens(self, tokenizer_id: str) -> str:
        return join(self.base, "tokens", tokenizer_id)


def run_dir(root: str, run_id: str) -> str:
    return join(root, "runs", run_id)


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def local_mirror(path: str) -> str:
    """`path` itself when it is local; for an object-store URL, the local folder standing in for it:
    $TOKENMILL_CACHE (default ~/.cache/tokenmill)/<scheme>/<bucket>/<key>."""
    if not is_remote(path):
        return path.removeprefix("file://")
    scheme, rest = path.split("://", 1)
    cache = Path(os.environ.get("TOKENMILL_CACHE") or Path.home() / ".cache" / "tokenmill").expanduser()
    return str(cache / scheme / rest.strip("/"))
