"""Reading a dataset back: a version past the end is a one-line error that says which versions exist."""

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from warehouse.layout import DatasetPaths
from warehouse.read import VersionNotFound, open_table, scan


def test_a_version_past_the_end_names_the_versions_there_are(tmp_path):
    ds = DatasetPaths(str(tmp_path), "d")
    for n in range(3):
        write_deltalake(ds.docs, pa.table({"id": [str(n)]}), mode="append")
    assert sorted(scan(ds, "docs", version=1).collect()["id"].to_list()) == ["0", "1"]
    assert open_table(ds, "docs").version() == 2
    with pytest.raises(VersionNotFound, match="has versions 0 to 2, not 7; the builds table"):
        scan(ds, "docs", version=7)
    with pytest.raises(VersionNotFound):
        open_table(ds, "docs", version=-1)


def test_the_readmes_polars_block_runs_as_written_on_what_the_demo_builds(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    from flows.build_corpus import build_corpus

    repo = Path(__file__).resolve().parent.parent
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", (repo / "README.md").read_text(), re.S) if "scan_delta" in b]
    monkeypatch.chdir(tmp_path)
    build_corpus([str(repo / "sample" / "html")], warehouse="data/warehouse", dataset="sample", progress=False)
    scope: dict = {}
    exec(block, scope)
    assert scope["first"] == scope["builds"]["docs_version"][0]
    assert scope["docs"].collect().height >= 1
