"""Reading the YAML settings files shipped in ``sync/`` and their overrides under HOME."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def read_yaml_file(path: Path, error: type[Exception]) -> object:
    """The YAML document in ``path``. A file that cannot be read or parsed raises ``error`` with
    one line naming the file (and the line and column of a syntax error), never a traceback."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        raise error(f"{path}:{where} not valid YAML") from None


def yaml_mapping(raw: object, source: str, key: str, error: type[Exception]) -> dict[str, Any]:
    """``raw`` (the value at ``key`` in ``source``) as a mapping with text keys, else ``error``."""
    if not isinstance(raw, dict):
        raise error(f"{source}: {key}: must be a mapping, got {type(raw).__name__}")
    return {str(k): v for k, v in raw.items()}


def refuse_unknown_keys(
    body: Mapping[str, Any], allowed: set[str], source: str, key: str, error: type[Exception]
) -> None:
    """``error`` naming the first key of ``body`` (at ``key`` in ``source``) that is not ``allowed``."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        where = f"{key}.{unknown[0]}" if key else unknown[0]
        raise error(f"{source}: {where}: unknown key (allowed: {', '.join(sorted(allowed))})")
