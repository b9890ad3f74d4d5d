"""What a user names as input (paths, folders, globs, fsspec URLs, `hf:` datasets) -> input units.

An `InputUnit` is one input as the warehouse records it done: one file (archive, data file or HTML
page), or one saved Hugging Face dataset. A folder or glob is expanded to its files when the build
is planned, so a file added to a folder later is a new input of the next build. Everything is
opened through fsspec, so a local path and an `s3://` URL behave the same.

Dot-prefixed entries below a named folder (macOS `._x.warc.gz` AppleDouble files, `.cache`
folders, editor lock files) are tool litter, not inputs: those whose name says they are an
input become a unit of format "hidden", read as one `hidden_file` rejection, so they are
counted and visible rather than silently skipped.
"""

from __future__ import annotations

import gzip
import os
import posixpath
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pipeline.records import InputUnavailable, Rejection, is_environmental
from warehouse.errors import TokenmillError

GZIP_MAGIC = b"\x1f\x8b"

# Order does not matter: a name ending in two of these (`.warc` ends in `.arc`) gets one format.
_FORMAT_BY_SUFFIX = (
    (".warc", "warc"), (".warc.gz", "warc"), (".arc", "warc"), (".arc.gz", "warc"),
    (".wet", "warc"), (".wet.gz", "warc"),
    (".html", "html"), (".htm", "html"), (".html.gz", "html"), (".htm.gz", "html"),
    (".jsonl", "jsonl"), (".jsonl.gz", "jsonl"), (".json.gz", "jsonl"),
    (".ndjson", "jsonl"), (".ndjson.gz", "jsonl"),
    (".txt", "text"), (".txt.gz", "text"),
    (".parquet", "parquet"),
)
# Names that mention an archive format but end otherwise (`x.warc.gz.bad`, Heritrix's
# `x.warc.gz.open`, Common Crawl's `x.warc.wat.gz`): inside a folder these are opened and
# sniffed, and taken when they really are WARC or ARC.
_ARCHIVE_NAME_HINT = re.compile(r"\.(warc|arc|wet|wat)(\.|$)", re.IGNORECASE)
_GLOB_CHARS = re.compile(r"[*?\[]")
_HF_SAVED_MARKERS = ("state.json", "dataset_info.json")


@dataclass(frozen=True)
class InputUnit:
    """One unit of atomic commit in the warehouse.

    key: URI identifying the input (local: absolute path; remote: the fsspec URL;
    `hf:NAME[:CONFIG]:SPLIT` for datasets loaded by name).
    paths: the files to read, each a local absolute path or a full fsspec URL.
    """

    key: str
    format: str  # "warc" | "html" | "jsonl" | "text" | "parquet" | "hf" | "hidden"
    paths: tuple[str, ...]
    size_bytes: int


class InputNotFound(TokenmillError, FileNotFoundError):
    """A named input that does not exist or holds nothing readable; the message is one line."""


class UnsupportedInput(TokenmillError, ValueError):
    """A file named explicitly whose format cannot be recognised; the message is one line."""


def format_from_name(name: str) -> str | None:
    """Input format implied by a file name, or None."""
    lower = name.lower()
    for suffix, input_format in _FORMAT_BY_SUFFIX:
        if lower.endswith(suffix):
            return input_format
    return None


def expand_inputs(specs: list[str]) -> list[InputUnit]:
    """Every input unit the specs name, deduplicated by key and sorted by key.

    A spec is a file, a folder (searched recursively, hidden entries skipped), a glob, any of
    these as an fsspec URL, or `hf:NAME_OR_PATH[[:CONFIG]:SPLIT]`. Raises InputNotFound for a spec that
    matches nothing and UnsupportedInput for a named file of unknown format.
    """
    units: dict[str, InputUnit] = {}
    for spec in specs:
        for unit in _expand_spec(spec):
            units.setdefault(unit.key, unit)
    return [units[key] for key in sorted(units)]


def open_file(path: str) -> IO[bytes]:
    """Open a local path or fsspec URL for reading bytes, as stored; the caller closes it."""
    return fsspec.open(path, "rb").open()


def gunzipped(handle: IO[bytes]) -> IO[bytes]:
    """The handle itself, or a gunzipping view of it when its content is gzip, whatever the name says."""
    magic = handle.read(len(GZIP_MAGIC))
    handle.seek(0)
    return gzip.GzipFile(fileobj=handle) if magic == GZIP_MAGIC else handle


def read_error(source: str, offset: int, path: str, exc: BaseException) -> Rejection:
    """The rejection that stands for a file, or the part of one from `offset` on, that could not be read.

    Raises InputUnavailable instead where the failure is the environment's, not the file's
    (`is_environmental`): that is no verdict about the data, and the input is read again later.
    """
    message = " ".join(str(exc).split())[:500]
    if is_environmental(exc):
        raise InputUnavailable(f"{path}: {type(exc).__name__}: {message}") from exc
    return Rejection(
        source=source,
        source_offset=offset,
        stage="read",
        reason="read_error",
        detail=f"{path}: {type(exc).__name__}: {message}" if message else f"{path}: {type(exc).__name__}",
    )


def is_archive_file(path: str) -> bool:
    """Whether the file's content starts like a WARC or ARC file (gzipped or not)."""
    try:
        with open_file(path) as handle:
            head = handle.read(4096)
        if head.startswith(GZIP_MAGIC):
            head = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(head, 64)
    except (OSError, zlib.error, ValueError):
        return False
    return head.startswith((b"WARC/", b"filedesc://"))


def _expand_spec(spec: str) -> list[InputUnit]:
    if spec.startswith("hf:"):
        return [_hf_spec_unit(spec)]
    fs, path = fsspec.core.url_to_fs(spec)
    if isinstance(fs, LocalFileSystem):
        path = os.path.normpath(path)
    if _GLOB_CHARS.search(path):
        return _expand_glob(fs, path, spec)
    if not fs.exists(path):
        raise InputNotFound(f"input not found: {spec}")
    if fs.isdir(path):
        if _is_saved_hf_dataset(fs, path):
            return [_saved_hf_unit(fs, path, fs.find(path, detail=True))]
        units = _units_in_listing(fs, path, fs.find(path, detail=True))
        if not units:
            raise InputNotFound(f"no supported input files in {spec}")
        return units
    return [_single_file_unit(fs, path, spec)]


def _expand_glob(fs, pattern: str, spec: str) -> list[InputUnit]:
    listing: dict[str, dict] = {}
    units: list[InputUnit] = []
    for match, info in fs.glob(pattern, detail=True).items():
        if info["type"] != "directory":
            listing[match] = info
        elif _is_saved_hf_dataset(fs, match):
            units.append(_saved_hf_unit(fs, match, fs.find(match, detail=True)))
        else:
            listing.update(fs.find(match, detail=True))
    fixed_part = pattern[: _GLOB_CHARS.search(pattern).start()]
    units += _units_in_listing(fs, posixpath.dirname(fixed_part), listing)
    if not units:
        raise InputNotFound(f"no supported input files match {spec}")
    return units


def _single_file_unit(fs, path: str, spec: str) -> InputUnit:
    uri = _uri(fs, path)
    input_format = format_from_name(posixpath.basename(path))
    if input_format is None and is_archive_file(uri):
        input_format = "warc"
    if input_format is None:
        raise UnsupportedInput(f"unsupported input format (not WARC/ARC/WET, HTML, JSONL, text or Parquet): {spec}")
    return InputUnit(key=uri, format=input_format, paths=(uri,), size_bytes=int(fs.size(path) or 0))


def _units_in_listing(fs, root: str, listing: dict[str, dict]) -> list[InputUnit]:
    """Units for the files of a folder walk or glob: one per file (and per saved HF dataset)."""
    hf_dirs = sorted(
        posixpath.dirname(path)
        for path in listing
        if posixpath.basename(path) == _HF_SAVED_MARKERS[0]
        and posixpath.join(posixpath.dirname(path), _HF_SAVED_MARKERS[1]) in listing
    )
    units = [_saved_hf_unit(fs, d, listing) for d in hf_dirs]
    for path in sorted(listing):
        if any(_is_under(path, d) for d in hf_dirs):
            continue
        uri = _uri(fs, path)
        input_format = format_from_name(posixpath.basename(path))
        if input_format is None and _ARCHIVE_NAME_HINT.search(posixpath.basename(path)) and is_archive_file(uri):
            input_format = "warc"
        if input_format is not None:
            input_format = "hidden" if _is_hidden(path, root) else input_format
            units.append(InputUnit(key=uri, format=input_format, paths=(uri,), size_bytes=int(listing[path].get("size") or 0)))
    return units


def _hf_spec_unit(spec: str) -> InputUnit:
    """`hf:NAME_OR_PATH[:CONFIG]:SPLIT` or `hf:NAME_OR_PATH`: a saved dataset on disk, local data
    files, or a Hub dataset name. CONFIG is the dataset's configuration (`load_dataset`'s `name`:
    "en" of allenai/c4, "sample-10BT" of HuggingFaceFW/fineweb); the split defaults to "train"."""
    target, *rest = _colon_parts(spec[len("hf:"):])
    if not target or len(rest) > 2:
        raise InputNotFound(f"cannot read {spec!r}: expected hf:NAME_OR_PATH, hf:NAME_OR_PATH:SPLIT "
                            "or hf:NAME_OR_PATH:CONFIG:SPLIT")
    config, split = rest if len(rest) == 2 else (None, rest[0] if rest else "")
    split = split or "train"
    named = f"{config}:{split}" if config else split
    local = Path(target).expanduser()
    if local.exists():
        path = local.resolve()
        fs = LocalFileSystem()
        if (path / "dataset_dict.json").is_file():
            # DatasetDict.save_to_disk writes each split as a saved Dataset in a folder of its name.
            splits = sorted(p.name for p in path.iterdir() if _is_saved_hf_dataset(fs, str(p)))
            if split not in splits:
                raise InputNotFound(f"no split {split!r} in {path} (splits: {', '.join(splits)})")
            path = path / split
        if _is_saved_hf_dataset(fs, str(path)):
            return _saved_hf_unit(fs, str(path), fs.find(str(path), detail=True))
        size = sum(int(info.get("size") or 0) for info in fs.find(str(path), detail=True).values())
        return InputUnit(key=f"hf:{path}:{named}", format="hf", paths=(str(path),), size_bytes=size)
    if target.startswith((".", "/", "~")):
        raise InputNotFound(f"input not found: {spec}")
    return InputUnit(key=f"hf:{target}:{named}", format="hf", paths=(target,), size_bytes=0)


def hf_config_and_split(unit: InputUnit) -> tuple[str | None, str] | None:
    """(config or None, split) of an `hf:NAME[:CONFIG]:SPLIT` unit; None for a saved dataset folder."""
    prefix = f"hf:{unit.paths[0]}:"
    if not unit.key.startswith(prefix):
        return None
    parts = _colon_parts(unit.key[len(prefix):])
    return (parts[0] or None, parts[1]) if len(parts) == 2 else (None, parts[0])


def _colon_parts(text: str) -> list[str]:
    """`text` split at colons outside a split slice: "en:train[:10%]" -> ["en", "train[:10%]"]."""
    head, bracket, slice_ = text.partition("[")
    parts = head.split(":")
    parts[-1] += bracket + slice_
    return parts


def _saved_hf_unit(fs, path: str, listing: dict[str, dict]) -> InputUnit:
    uri = _uri(fs, path)
    size = sum(int(info.get("size") or 0) for p, info in listing.items() if _is_under(p, path))
    return InputUnit(key=uri, format="hf", paths=(uri,), size_bytes=size)


def _is_saved_hf_dataset(fs, path: str) -> bool:
    return all(fs.isfile(posixpath.join(path, marker)) for marker in _HF_SAVED_MARKERS)


def _is_under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


def _is_hidden(path: str, root: str) -> bool:
    # Only parts below the named folder count: a folder named `.crawls` can still be an input.
    relative = path[len(root.rstrip("/")) + 1:] if _is_under(path, root) else posixpath.basename(path)
    return any(part.startswith(".") for part in relative.split("/"))


def _uri(fs, path: str) -> str:
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)
