"""Files written whole or not at all: checkpoints, reports, tables, figures.

Every file the project writes for a user to keep goes through `write_atomically`: a kill, a crash
or a full disk while it is written leaves the file as it was before (an earlier run's report, a
committed benchmark JSON), never a truncated one.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """`write` a file atomically: into a temporary file in the same directory (a rename is atomic only
    within a file system), flushed to disk, then renamed over `path`. A failed write raises OSError
    naming `path` (torch reports one as a RuntimeError) and leaves no temporary file. The file gets the
    permissions `open` would give it (0o666 less the umask), not mkstemp's owner-only ones."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        os.unlink(tmp)
        if isinstance(e, OSError | RuntimeError):
            raise OSError(getattr(e, "errno", None), getattr(e, "strerror", None) or str(e), str(path)) from None
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power loss
    finally:
        os.close(dir_fd)


def write_text(path: str | Path, text: str) -> None:
    write_atomically(path, lambda f: f.write(text.encode()))


def save_figure(fig, stem: str | Path, dpi: int) -> None:
    """A matplotlib figure as <stem>.svg and <stem>.png."""
    for suffix in ("svg", "png"):
        write_atomically(f"{stem}.{suffix}", lambda f, suffix=suffix: fig.savefig(f, format=suffix, dpi=dpi))


def write_json(path: str | Path, data, indent: int = 2) -> None:
    write_text(path, json.dumps(data, indent=indent) + "\n")
