"""Reading the YAML settings files shipped in ``sync/`` and their overrides under HOME."""

from __future__ import annotations

from pathlib import Path

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
