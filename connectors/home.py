"""Where m3sync keeps its files: ``--home``, else ``$M3SYNC_HOME``, else ``./.m3sync``.

The standard library only: the command line resolves the home first thing, before pandas or
Prefect are imported (Prefect's temporary server starts at once, with its files there).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

HOME_VARIABLE = "M3SYNC_HOME"


def resolve_home(arg: str | None, env: Mapping[str, str] = os.environ) -> Path:
    """``--home`` if given, else ``$M3SYNC_HOME``, else ``./.m3sync`` (absolute)."""
    chosen = arg or env.get(HOME_VARIABLE) or ".m3sync"
    return Path(chosen).expanduser().absolute()
