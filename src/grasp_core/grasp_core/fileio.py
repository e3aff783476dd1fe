"""Durable file writes: a reader sees the old file or the new one, never half of one, even after a crash."""
from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(directory: str | os.PathLike) -> None:
    """Make a rename inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `.<name>.tmp`, fsync it, rename it over `path` and fsync the directory.

    On any failure (a full disk, a read-only folder, an interrupt) the temp file is removed and `path` keeps its
    old content; the error is raised as it came.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass  # the folder refuses even that: the original error says why
        raise
    fsync_directory(path.parent)
