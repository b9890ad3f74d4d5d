"""Reading a TOML or YAML settings file into a pydantic model, with one-line errors.

Shared by the build config (pipeline/config.py) and the training config (model/config.py): both
are files a user writes and diffs, and both must fail with a line naming the file and the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def load_settings(
    model: type[Model], path: str | Path | None, error: type[ValueError], overrides: dict[str, Any] | None = None
) -> Model:
    """`model` from the file at `path` (None: the defaults), then `overrides` whose value is not None.

    Any problem raises `error` with one line: a missing file, a parse error, or the first invalid
    field (unknown keys included, where the model forbids them).
    """
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise error(f"config file not found: {path}")
        if path.suffix not in (".toml", ".yaml", ".yml"):
            raise error(f"{path}: config must be .toml, .yaml or .yml")
        try:
            raw = path.read_text(encoding="utf-8")
            data = tomllib.loads(raw) if path.suffix == ".toml" else (yaml.safe_load(raw) or {})
        except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise error(f"{path}: cannot parse: {str(exc).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise error(f"{path}: expected a table of settings at the top level")
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or model.__name__
        raise error(f"{source}: {where}: {first['msg']} ({exc.error_count()} error(s))") from None
