"""The demo's own checks: the output folder before any work (a clear message, not a traceback minutes in), and a
loud notice when the learning loop stalls (no attempt for a while: e.g. every proposal refused)."""
from __future__ import annotations

import errno
import os
import shutil
import time
from pathlib import Path

from grasp_core.fileio import atomic_write

# What one default demo run writes (dataset, pretrained Q_s, checkpoints, replay, logs, curve), with margin.
DEFAULT_MIN_FREE_MB = 200


class OutputFolderError(RuntimeError):
    """The output folder cannot take the demo's files."""


def check_output_folder(folder: str | os.PathLike, min_free_mb: float = DEFAULT_MIN_FREE_MB) -> Path:
    """Create `folder` if needed, write and remove a probe file in it, and check its free space. Returns it."""
    folder = Path(folder).resolve()
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"--output {folder} is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputFolderError(f"cannot create the output folder {folder}: {e.strerror or e}; choose another with "
                                "--output") from None
    probe = folder / ".demo_write_test"
    try:
        atomic_write(probe, b"the demo checks that it can write here\n")
        probe.unlink()
    except OSError as e:
        hint = ("the disk is full: free some space" if e.errno == errno.ENOSPC else
                "it is read-only or not yours: choose another with --output")
        raise OutputFolderError(f"cannot write in the output folder {folder}: {e.strerror or e}; {hint}") from None
    free_mb = shutil.disk_usage(folder).free / 1e6
    if free_mb < min_free_mb:
        raise OutputFolderError(f"only {free_mb:.0f} MB free in {folder}; the demo needs about {min_free_mb:.0f} MB "
                                "(free some space, choose another --output, or lower --min-free-mb)")
    return folder


class StallWatch:
    """`check(attempts, nodes)` returns a notice once per `seconds` while the attempt count does not move."""

    def __init__(self, seconds: float, clock=time.monotonic):
        self.seconds, self._clock = float(seconds), clock
        self._attempts, self._since, self._said = None, clock(), clock()

    def check(self, attempts: int, nodes=()) -> str | None:
        now = self._clock()
        if attempts != self._attempts:
            self._attempts, self._since, self._said = attempts, now, now
            return None
        if now - self._since < self.seconds or now - self._said < self.seconds:
            return None
        self._said = now
        complaints = []
        for node in nodes:  # process_graph.RunningNode: the executors' last refusal or failure, if any
            if node.spec.executable == "executor_node":
                lines = [x for x in node.log_tail(200).splitlines() if "refused" in x or "failed" in x]
                if lines:
                    complaints.append(f"{node.label}: {lines[-1].strip()[:300]}")
        return (f"\033[1;31mno grasp attempt for {now - self._since:.0f} s (still at {attempts})\033[0m"
                + ("; the executors say:\n  " + "\n  ".join(complaints) if complaints else "; see the node logs"))
