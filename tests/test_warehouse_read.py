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
