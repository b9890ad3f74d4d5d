"""Libraries whose internals tokenmill reads, the exact versions it reads them as, and the check.

A few modules subclass or replay a library's private code for strictness or speed. Each such
library is pinned exactly in pyproject.toml (a test holds `PINNED` to it). At import the module
asks `internals_usable`; on any other installed version it takes the library's public path
instead, with a warning, rather than silently misreading changed internals.
"""

from __future__ import annotations

import warnings
from importlib.metadata import PackageNotFoundError, version

PINNED = {
    "warcio": "1.8.1",  # pipeline/readers/warc.py: DecompressingBufferedReader._decompress, ArchiveIterator.reader
    "trafilatura": "2.3.1",  # pipeline/fast_trafilatura.py (parser, XPath lists), pipeline/extract.py
    "htmldate": "1.11.0",  # pipeline/extract.py: htmldate.core's rules, called one by one
}


def installed_version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def internals_usable(package: str, fallback: str) -> bool:
    """True when `package` is installed at its `PINNED` version; else warn that `fallback` (what the
    caller does instead, on the library's public API) is used, and return False."""
    installed = installed_version(package)
    if installed == PINNED[package]:
        return True
    warnings.warn(
        f"{package} {installed} is installed, but tokenmill reads the internals of {package} "
        f"{PINNED[package]}: {fallback}",
        RuntimeWarning,
        stacklevel=2,
    )
    return False
