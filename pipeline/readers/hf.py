"""Hugging Face datasets -> one RawRecord(kind="text") or Rejection per row.

In: an input unit of format "hf": a folder written by `Dataset.save_to_disk` (memory-mapped by
`datasets.load_from_disk`, read batch by batch), or `hf:NAME[:CONFIG]:SPLIT` (a Hub name or local
data files, opened with `datasets.load_dataset(NAME, CONFIG, split=SPLIT, streaming=True)` so
nothing is loaded whole).
Out: rows in order, offset = row index; columns cfg.text_column / id_column / url_column.
A dataset that cannot be opened, or lacks the text column, is one `read_error` Rejection.
"""

from __future__ import annotations

from collections.abc import Iterator

from pipeline.config import ReadConfig
from pipeline.readers.files import row_item
from pipeline.readers.inputs import InputUnit, hf_config_and_split, read_error
from pipeline.records import RawRecord, Rejection

HF_BATCH_ROWS = 1024


def read_hf(unit: InputUnit, cfg: ReadConfig) -> Iterator[RawRecord | Rejection]:
    """Every row of the unit's dataset, as RawRecord or Rejection."""
    row_index = 0
    try:
        dataset = _open_dataset(unit)
        columns = list(dataset.column_names or [])
        if columns and cfg.text_column not in columns:
            yield _missing_text_column(unit, cfg, columns)
            return
        wanted = [c for c in dict.fromkeys((cfg.text_column, cfg.id_column, cfg.url_column)) if c in columns]
        if wanted:
            dataset = dataset.select_columns(wanted)
        for batch in dataset.iter(batch_size=HF_BATCH_ROWS):
            if row_index == 0 and cfg.text_column not in batch:
                # Streamed datasets may only reveal their columns with the first batch.
                yield _missing_text_column(unit, cfg, list(batch))
                return
            names = list(batch)
            for values in zip(*(batch[name] for name in names), strict=True):
                yield row_item(dict(zip(names, values, strict=True)), unit.key, row_index, cfg)
                row_index += 1
    except Exception as exc:  # noqa: BLE001 - an unloadable dataset is its read_error, never a crash
        yield read_error(unit.key, row_index, unit.paths[0], exc)


def _open_dataset(unit: InputUnit):
    # Imported here: `datasets` takes seconds to import and most builds never read one.
    import datasets

    named = hf_config_and_split(unit)
    if named is None:
        return datasets.load_from_disk(unit.paths[0])
    config, split = named
    # Split slices (`train[:10%]`) are not supported by streaming, so those load normally.
    return datasets.load_dataset(unit.paths[0], config, split=split, streaming="[" not in split)


def _missing_text_column(unit: InputUnit, cfg: ReadConfig, columns: list[str]) -> Rejection:
    return Rejection(source=unit.key, source_offset=0, stage="read", reason="read_error",
                     detail=f"{unit.paths[0]}: no column {cfg.text_column!r} (columns: {', '.join(columns)})")
