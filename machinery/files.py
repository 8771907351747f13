"""Files written whole or not at all: checkpoints, reports, tables, figures.

Every file the project writes for a user to keep goes through `write_atomically`: a kill, a crash
or a full disk while it is written leaves the file as it was before (an earlier run's report, a
committed benchmark JSON), never a truncated one. `why_not_replace` keeps an output flag pointed at
the wrong file (a checkpoint, the README) from writing over it.
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
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:  # a read-only or full file system: named for the file the user asked for
        raise OSError(e.errno, e.strerror, str(path)) from None
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


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def why_not_replace(path: str | Path, keys: tuple[str, ...] = ()) -> str | None:
    """Why an output must not be written over the file at `path`, or None where it may: no file, an
    empty one (but for a tool that adds to it, which reads it first), or one of the kind the project
    writes under that name (a PNG or SVG figure, a NIR graph, a markdown table, else a JSON object,
    with `keys` where the tool adds to it). Anything else, a checkpoint given to --report or the
    README to --out, is a mistake of the command line that would destroy it."""
    path = Path(path)
    try:
        if not path.is_file() or (path.stat().st_size == 0 and not keys):
            return None
        with open(path, "rb") as f:
            head = f.read(4096)
        if path.suffix == ".png":
            return None if head.startswith(PNG_SIGNATURE) else "is not a PNG image"
        if path.suffix == ".svg":
            return None if b"<svg" in head else "is not an SVG image"
        if path.suffix == ".nir":  # NIR's file format is HDF5
            return None if head.startswith(HDF5_SIGNATURE) else "is not a NIR graph (an HDF5 file)"
        if path.suffix == ".md":  # the tables the tools write begin with their header row
            return (
                None if head.startswith(b"|") else "is not a table of this project (its first line is not a table row)"
            )
        data = json.loads(path.read_bytes()) if head.lstrip().startswith(b"{") else None
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    except ValueError:  # UnicodeDecodeError included
        data = None
    if not isinstance(data, dict):
        return "is not a JSON object"
    missing = [key for key in keys if key not in data]
    return f"is JSON without {', '.join(map(repr, missing))}" if missing else None


def write_text(path: str | Path, text: str) -> None:
    write_atomically(path, lambda f: f.write(text.encode()))


def save_figure(fig, stem: str | Path, dpi: int) -> None:
    """A matplotlib figure as <stem>.svg and <stem>.png."""
    for suffix in ("svg", "png"):
        write_atomically(f"{stem}.{suffix}", lambda f, suffix=suffix: fig.savefig(f, format=suffix, dpi=dpi))


def write_json(path: str | Path, data, indent: int = 2) -> None:
    write_text(path, json.dumps(data, indent=indent) + "\n")
