"""The learner's versioned checkpoints in one folder, and where a restarted learner picks up.

Version k is `model_v{k:06d}.safetensors` (+ `.json`, `.state.safetensors`, `.state.json`, written by
`DQNLearner.save`, each atomically: temp file + rename) and, written last, `model_v{k:06d}.learner.json`:
{"version", "trained", "updates", "stored"} where `trained` counts the replay-store records the learner had
trained on, in store order. A version counts as complete only once that file exists, so a crash mid-save
leaves the previous version as the one to resume from; everything in the store from `trained` on is
trained on after a restart.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from grasp_core import checkpoint

_PROGRESS = re.compile(r"^model_v(\d{6,})\.learner\.json$")


@dataclass(frozen=True)
class CheckpointEntry:
    version: int
    model_path: Path
    trained: int  # replay records trained on (store indices 0 .. trained - 1)
    updates: int
    stored: int  # replay records stored when it was saved


class CheckpointCatalog:
    def __init__(self, directory):
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)

    def model_path(self, version: int) -> Path:
        return self.directory / f"model_v{version:06d}.safetensors"

    def progress_path(self, version: int) -> Path:
        return self.directory / f"model_v{version:06d}.learner.json"

    def files_of(self, version: int) -> list[Path]:
        model = self.model_path(version)
        state = checkpoint.training_state_path(model)
        return [model, checkpoint.sidecar_path(model), state, checkpoint.sidecar_path(state),
                self.progress_path(version)]

    def write_progress(self, version: int, trained: int, updates: int, stored: int) -> Path:
        """Mark version `version` complete (call after its model and training state are saved)."""
        path = self.progress_path(version)
        tmp = path.with_name(f".{path.name}.tmp")
        record = {"version": int(version), "trained": int(trained), "updates": int(updates), "stored": int(stored)}
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    def entries(self) -> list[CheckpointEntry]:
        """Complete versions, oldest first (a version missing any file is skipped)."""
        found = []
        for path in self.directory.iterdir():
            match = _PROGRESS.match(path.name)
            if not match:
                continue
            version = int(match.group(1))
            model = self.model_path(version)
            if not (model.is_file() and checkpoint.training_state_path(model).is_file()):
                continue
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                found.append(CheckpointEntry(version, model, int(record["trained"]), int(record["updates"]),
                                             int(record["stored"])))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # unreadable progress file: not a version to resume from
        return sorted(found, key=lambda e: e.version)

    def latest(self) -> CheckpointEntry | None:
        entries = self.entries()
        return entries[-1] if entries else None

    def prune(self, keep_last: int) -> list[int]:
        """Delete all but the newest `keep_last` complete versions (0 = keep everything); returns the deleted."""
        if keep_last <= 0:
            return []
        entries = self.entries()
        deleted = []
        for entry in entries[:-keep_last]:
            for path in self.files_of(entry.version):
                path.unlink(missing_ok=True)
            deleted.append(entry.version)
        return deleted
