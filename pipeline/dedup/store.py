"""The signature store: one Parquet file of MinHash band keys per input shard, and its manifest.

    <dataset>/dedup/signatures/<shard-id>.parquet   id, source, quality_score, shingles,
                                                    band_00 .. band_NN (int64), signature (LeanMinHash bytes)
    <dataset>/dedup/signatures/_manifest.json       the parameters, and the shards in index order
    <dataset>/dedup/candidates/band_NN.parquet      candidate pairs of one band (doc, root)

A shard's file is written once, atomically (temporary name, then rename), and listed in the
manifest only after all shards of a run are written, by the one process that drives the run: a
shard written by a killed run is simply computed again. Documents later removed from `docs` keep
their row here, so later builds are compared with them too. A document's place in the index (the
`doc` number in candidate pairs) is its row number over the files in manifest order.

Signatures depend on (num_perm, seed, ngram, scheme): a change of any of these makes every stored
shard stale and it is computed again. The band keys depend on (bands, rows) too (`DedupConfig.bands`,
`rows`), but those come from the stored signatures without re-reading any text (`reband`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import DedupConfig
from pipeline.dedup.lsh import band_hashes
from pipeline.dedup.minhash import DEFAULT_SCHEME, from_lean_bytes, lean_size
from warehouse.layout import DatasetPaths, join

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SignatureParams:
    """Everything a stored band key depends on."""

    num_perm: int
    seed: int
    ngram: int
    scheme: str
    bands: int
    rows: int
    format: int = FORMAT_VERSION

    @classmethod
    def from_config(cls, cfg: DedupConfig, scheme: str = DEFAULT_SCHEME) -> "SignatureParams":
        cfg = cfg.banded()
        return cls(cfg.num_perm, cfg.seed, cfg.ngram, scheme, cfg.bands, cfg.rows)

    def same_signatures(self, other: "SignatureParams") -> bool:
        return (self.num_perm, self.seed, self.ngram, self.scheme, self.format) == (
            other.num_perm, other.seed, other.ngram, other.scheme, other.format
        )

    def band_columns(self) -> list[str]:
        return [band_column(b) for b in range(self.bands)]


def band_column(band: int) -> str:
    return f"band_{band:02d}"


def shard_id(source: str) -> str:
    """File name stem of a source's signatures: stable, short, safe in any file system."""
    return hashlib.blake2b(source.encode(), digest_size=10).hexdigest()


def signatures_dir(ds: DatasetPaths) -> str:
    return join(ds.dedup, "signatures")


def shard_path(ds: DatasetPaths, shard: str) -> str:
    return join(signatures_dir(ds), f"{shard}.parquet")


def candidates_path(ds: DatasetPaths, band: int) -> str:
    return join(ds.dedup, "candidates", f"{band_column(band)}.parquet")


def _manifest_path(ds: DatasetPaths) -> str:
    return join(signatures_dir(ds), "_manifest.json")


@dataclass
class Manifest:
    """The parameters of the stored signatures, and the shards in index order (shard -> source, docs)."""

    params: SignatureParams
    shards: dict[str, dict]

    @property
    def sources(self) -> set[str]:
        return {entry["source"] for entry in self.shards.values()}

    @property
    def documents(self) -> int:
        return sum(entry["docs"] for entry in self.shards.values())

    def paths(self, ds: DatasetPaths) -> list[str]:
        return [shard_path(ds, shard) for shard in self.shards]


def read_manifest(ds: DatasetPaths) -> Manifest | None:
    fs, path = fsspec.core.url_to_fs(_manifest_path(ds))
    if not fs.exists(path):
        return None
    with fs.open(path, "r") as f:
        raw = json.load(f)
    return Manifest(SignatureParams(**raw["params"]), raw["shards"])


def forget_sources(ds: DatasetPaths, sources: set[str]) -> None:
    """Drop these sources' shards from the manifest, so their documents are signed again (an input
    read again by `--retry-failed` may now hold more of them)."""
    manifest = read_manifest(ds)
    if manifest is not None and manifest.sources & sources:
        kept = {shard: entry for shard, entry in manifest.shards.items() if entry["source"] not in sources}
        write_manifest(ds, Manifest(manifest.params, kept))


def _pending_path(ds: DatasetPaths) -> str:
    return join(ds.dedup, "apply_pending.parquet")


def read_pending_apply(ds: DatasetPaths) -> tuple[str, list[str]] | None:
    """(run id, document ids) of a near-dedup apply whose stats row may not be written yet, or None."""
    fs, path = fsspec.core.url_to_fs(_pending_path(ds))
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as f:
        table = pq.read_table(f)
    return table.schema.metadata[b"tokenmill.run"].decode(), table.column("id").to_pylist()


def write_pending_apply(ds: DatasetPaths, run: str, ids: list[str]) -> None:
    """Say, before docs change, which documents this run removes, so a run killed before its stats
    row still has them counted by the next one (`pipeline.dedup.stage.carried_removals`)."""
    table = pa.table({"id": pa.array(ids, pa.string())}).replace_schema_metadata({"tokenmill.run": run})
    _write_atomically(_pending_path(ds), lambda f: pq.write_table(table, f))


def clear_pending_apply(ds: DatasetPaths) -> None:
    fs, path = fsspec.core.url_to_fs(_pending_path(ds))
    if fs.exists(path):
        fs.rm(path)


def write_manifest(ds: DatasetPaths, manifest: Manifest) -> None:
    data = json.dumps({"params": asdict(manifest.params), "shards": manifest.shards}, indent=1)
    _write_atomically(_manifest_path(ds), lambda f: f.write(data.encode()))


def _write_atomically(url: str, write) -> None:
    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(path.rpartition("/")[0], exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with fs.open(tmp, "wb") as f:
        write(f)
    fs.mv(tmp, path)


def signature_schema(params: SignatureParams) -> pa.Schema:
    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("quality_score", pa.float32()),
        pa.field("shingles", pa.int32(), nullable=False),
        *(pa.field(c, pa.int64()) for c in params.band_columns()),
        pa.field("signature", pa.binary(lean_size(params.num_perm, params.scheme))),
    ]
    return pa.schema(fields, metadata={"tokenmill.dedup": json.dumps(asdict(params))})


def band_table(sigs: np.ndarray, counts: np.ndarray, params: SignatureParams) -> dict[str, pa.Array]:
    """The band key columns of a batch; null where a document has no shingles (never a candidate)."""
    keys = band_hashes(sigs, params.bands, params.rows)
    empty = pa.array(counts == 0)
    return {
        band_column(b): pa.array(keys[:, b], pa.int64(), mask=empty.to_numpy(zero_copy_only=False))
        for b in range(params.bands)
    }


def write_shard(ds: DatasetPaths, shard: str, table: pa.Table) -> None:
    """Write one shard's signatures atomically (readers never see half a file)."""
    _write_atomically(shard_path(ds, shard), lambda f: pq.write_table(table, f, compression="zstd"))


def reband(ds: DatasetPaths, shard: str, params: SignatureParams) -> None:
    """Recompute a stored shard's band keys for new (bands, rows) from its stored signatures."""
    fs, path = fsspec.core.url_to_fs(shard_path(ds, shard))
    with fs.open(path, "rb") as f:
        old = pq.read_table(f)
    sigs = from_lean_bytes(old.column("signature"), params.num_perm)
    bands = band_table(sigs, old.column("shingles").to_numpy(), params)
    columns = {c: old.column(c) for c in ("id", "source", "quality_score", "shingles")}
    table = pa.table({**columns, **bands, "signature": old.column("signature")}, schema=signature_schema(params))
    write_shard(ds, shard, table)
