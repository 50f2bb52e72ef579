"""Arrow's allocator for the command line: jemalloc where the pyarrow build has it.

pyarrow's default pool on Linux is mimalloc, which hands large blocks back to the system
eagerly, so every big column of a million-line settlement is faulted in again from fresh
pages: measured on the 1,000,000-line ``m3sync settle`` (bench.settle_command), mimalloc
took ~1 s longer (twice the system time) and peaked ~0.1 GB higher than jemalloc. Buffers
already allocated keep their pool, so switching at run time is safe. An explicit
``ARROW_DEFAULT_MEMORY_POOL`` is the user's choice and is left alone.
"""

from __future__ import annotations

import os


def use_jemalloc_for_arrow() -> None:
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    import pyarrow

    try:
        pyarrow.set_memory_pool(pyarrow.jemalloc_memory_pool())
    except NotImplementedError:  # builds without jemalloc (Windows wheels) keep their default
        pass
