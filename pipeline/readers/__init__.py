"""Input readers: what the user names as input -> input units -> a stream of raw records.

    units = expand_inputs(["crawl/", "s3://bucket/*.warc.gz", "hf:./saved_dataset"])
    for item in read_unit(units[0], cfg.read):   # RawRecord or Rejection, never an exception
        ...

Every document record of a unit ends in exactly one yielded item, with a (source, source_offset)
unique within the unit, so ids are stable and counts add up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pipeline.config import ReadConfig
from pipeline.readers.files import read_hidden, read_html_files, read_jsonl, read_parquet, read_text
from pipeline.readers.hf import read_hf
from pipeline.readers.inputs import InputNotFound, InputUnit, UnsupportedInput, expand_inputs
from pipeline.readers.warc import read_warc
from pipeline.records import RawRecord, Rejection

__all__ = ["InputNotFound", "InputUnit", "UnsupportedInput", "expand_inputs", "read_unit"]

_READERS: dict[str, Callable[[InputUnit, ReadConfig], Iterator[RawRecord | Rejection]]] = {
    "warc": read_warc,
    "html": read_html_files,
    "jsonl": read_jsonl,
    "text": read_text,
    "parquet": read_parquet,
    "hf": read_hf,
    "hidden": read_hidden,
}


def read_unit(unit: InputUnit, cfg: ReadConfig) -> Iterator[RawRecord | Rejection]:
    """Every record of the unit, in input order, each a RawRecord or a Rejection (stage "read")."""
    return _READERS[unit.format](unit, cfg)
