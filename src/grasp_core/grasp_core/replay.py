"""The learner's on-disk replay memory (append-only, crash-safe) and VPG's prioritised replay sampler.

Layout of a store directory:
    replay.json          {"format": "grasp-replay", "version": 1}
    00000000.npz         one compressed experience: images + a JSON metadata string (no pickle)
    00000001.npz ...
A record is written to `.<name>.tmp`, fsync'ed, renamed into place and the directory fsync'ed before
`append` returns, so every acknowledged experience survives a crash or power cut; a temp file left by a crash
is deleted on the next open. Records are numbered without gaps, so the index of an experience never changes.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import re
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from grasp_core.fileio import fsync_directory

FORMAT = "grasp-replay"
VERSION = 1
MARKER_FILE = "replay.json"
_RECORD = re.compile(r"^(\d{8})\.npz$")
_IMAGE_FIELDS = ("color_hm", "depth_hm", "next_color_hm", "next_depth_hm")


@dataclass(eq=False)
class Experience:
    """One grasp attempt (mirrors grasp_interfaces/GraspExperience): state, action, outcome, how it was chosen.

    Heightmaps: colour uint8 (H, W, 3), depth float32 (H, W). pixel = (u, v) = (column, row). The next state is
    None when `terminal` (scene reset or workspace empty: the target is the reward alone).
    """

    id: str
    source: str
    attempt: int
    color_hm: np.ndarray
    depth_hm: np.ndarray
    rotation_index: int
    num_rotations: int
    pixel: tuple[int, int]
    reward: float
    terminal: bool
    next_color_hm: np.ndarray | None = None
    next_depth_hm: np.ndarray | None = None
    model_version: int = 0
    epsilon: float = 0.0
    explored: bool = False
    predicted_q: float = 0.0
    failure_reason: int = 0
    stamp: float = field(default_factory=time.time)  # seconds since the UNIX epoch

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"experience id must be a non-empty string, got {self.id!r}")
        _check_heightmaps(self.color_hm, self.depth_hm, f"experience {self.id}")
        shape = self.depth_hm.shape
        if (self.next_color_hm is None) != (self.next_depth_hm is None):
            raise ValueError(f"experience {self.id}: give both next heightmaps or neither")
        if self.next_color_hm is None and not self.terminal:
            raise ValueError(f"experience {self.id}: a non-terminal experience needs the next heightmaps")
        if self.next_color_hm is not None:
            _check_heightmaps(self.next_color_hm, self.next_depth_hm, f"experience {self.id} (next)")
            if self.next_depth_hm.shape != shape:
                raise ValueError(f"experience {self.id}: next heightmap {self.next_depth_hm.shape} differs from "
                                 f"{shape}")
        if not 0 <= self.rotation_index < self.num_rotations:
            raise ValueError(f"experience {self.id}: rotation index {self.rotation_index} not in "
                             f"[0, {self.num_rotations})")
        u, v = self.pixel
        if not (0 <= u < shape[1] and 0 <= v < shape[0]):
            raise ValueError(f"experience {self.id}: pixel (u={u}, v={v}) is outside the {shape[1]}x{shape[0]} "
                             "heightmap")
        if not (math.isfinite(self.reward) and math.isfinite(self.predicted_q) and 0 <= self.epsilon <= 1):
            raise ValueError(f"experience {self.id}: reward and predicted_q must be finite and epsilon in [0, 1], "
                             f"got {self.reward}, {self.predicted_q}, {self.epsilon}")
        self.pixel = (int(u), int(v))

    def metadata(self) -> dict:
        """Everything but the images, JSON-ready."""
        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _IMAGE_FIELDS}
        meta["pixel"] = list(self.pixel)
        return json.loads(json.dumps(meta, default=_numpy_scalar))


def _numpy_scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{value!r} ({type(value).__name__}) cannot be stored in replay metadata")


def _check_heightmaps(color, depth, what: str) -> None:
    if not (isinstance(depth, np.ndarray) and depth.dtype == np.float32 and depth.ndim == 2):
        raise ValueError(f"{what}: depth heightmap must be a float32 (H, W) array, got "
                         f"{getattr(depth, 'dtype', type(depth))} {getattr(depth, 'shape', '')}")
    if not (isinstance(color, np.ndarray) and color.dtype == np.uint8 and color.shape == depth.shape + (3,)):
        raise ValueError(f"{what}: colour heightmap must be uint8 {depth.shape + (3,)}, got "
                         f"{getattr(color, 'dtype', type(color))} {getattr(color, 'shape', '')}")


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


class ReplayStore:
    """Append-only experience store in a directory. One writer at a time (an flock guards it); any number of
    `read_only=True` readers. Metadata of every record is held in memory, images are read on demand.
    """

    def __init__(self, directory, read_only: bool = False):
        self.directory = Path(directory)
        self.read_only = read_only
        self.duplicates = 0          # appends of an id already stored, since this store was opened
        self.removed_partial = 0     # crash leftovers (temp files) deleted when opening
        self._lock_fd = None
        self._open_directory()
        self._metadata: list[dict] = []
        self._index_of_id: dict[str, int] = {}
        self._load_metadata()

    # -- opening ---------------------------------------------------------------------------------------------
    def _open_directory(self) -> None:
        marker = self.directory / MARKER_FILE
        if self.read_only:
            if not marker.is_file():
                raise ValueError(f"{self.directory} is not a replay store ({MARKER_FILE} is missing)")
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._lock_fd)
                self._lock_fd = None
                raise ValueError(f"replay store {self.directory} is already open for writing by another "
                                 "process (or object); open it with read_only=True to read") from None
            if not marker.exists():
                if any(p.name != ".lock" and not _is_temp(p.name) for p in self.directory.iterdir()):
                    self.close()
                    raise ValueError(f"refusing to use {self.directory} as a replay store: it is not empty and "
                                     f"has no {MARKER_FILE}")
                self._write_atomically(marker, lambda f: f.write(json.dumps({"format": FORMAT,
                                                                             "version": VERSION}).encode()))
        try:
            header = json.loads(marker.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{marker} is corrupt ({e})") from e
        if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != VERSION:
            raise ValueError(f"{self.directory} holds {header!r}, not a {FORMAT} version {VERSION} store")

    def _load_metadata(self) -> None:
        indices = []
        for path in self.directory.iterdir():
            if _is_temp(path.name):
                if not self.read_only:
                    path.unlink()     # a record or marker whose writer died before the rename
                    self.removed_partial += 1
            elif match := _RECORD.match(path.name):
                indices.append(int(match.group(1)))
        indices.sort()
        if indices != list(range(len(indices))):
            missing = sorted(set(range(indices[-1] + 1)) - set(indices))
            raise ValueError(f"replay store {self.directory} is missing records {missing[:10]}: it was edited by "
                             "hand or damaged")
        for index in indices:
            path = self._record_path(index)
            try:
                with np.load(path, allow_pickle=False) as data:
                    meta = json.loads(str(data["meta"]))
            except Exception as e:  # zipfile/json/key errors all mean the same thing here
                raise ValueError(f"replay record {path} is unreadable ({type(e).__name__}: {e})") from e
            if meta["id"] in self._index_of_id:
                raise ValueError(f"replay store {self.directory}: id {meta['id']!r} is stored twice "
                                 f"(records {self._index_of_id[meta['id']]} and {index})")
            self._index_of_id[meta["id"]] = index
            self._metadata.append(meta)

    # -- writing ---------------------------------------------------------------------------------------------
    def _record_path(self, index: int) -> Path:
        return self.directory / f"{index:08d}.npz"

    def _write_atomically(self, path: Path, write) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            raise ValueError(f"{path} already exists: another writer is using this replay store")
        os.replace(tmp, path)
        fsync_directory(self.directory)

    def append(self, experience: Experience) -> int:
        """Store an experience durably and return its index; an id already stored returns the old index."""
        if self.read_only or self._lock_fd is None:
            raise ValueError(f"replay store {self.directory} is read-only or closed")
        if experience.id in self._index_of_id:
            self.duplicates += 1
            return self._index_of_id[experience.id]
        meta = experience.metadata()
        arrays = {name: getattr(experience, name) for name in _IMAGE_FIELDS if getattr(experience, name) is not None}
        index = len(self._metadata)
        self._write_atomically(self._record_path(index),
                               lambda f: np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays))
        self._metadata.append(meta)
        self._index_of_id[experience.id] = index
        return index

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def __enter__(self) -> "ReplayStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_lock_fd", None) is not None:
            self.close()

    # -- reading ---------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._metadata)

    def _check_index(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"replay index {index} out of range for {len(self)} experiences")
        return index % len(self)

    def __getitem__(self, index: int) -> Experience:
        index = self._check_index(index)
        meta = dict(self._metadata[index])
        with np.load(self._record_path(index), allow_pickle=False) as data:
            arrays = {name: data[name] for name in _IMAGE_FIELDS if name in data.files}
        meta["pixel"] = tuple(meta["pixel"])
        return Experience(**meta, **arrays)

    def metadata(self, index: int) -> dict:
        """An experience's fields without its images, from memory."""
        return dict(self._metadata[self._check_index(index)])

    def index_of(self, experience_id: str) -> int | None:
        return self._index_of_id.get(experience_id)

    @property
    def ids(self) -> list[str]:
        return [m["id"] for m in self._metadata]

    @property
    def rewards(self) -> np.ndarray:
        return np.array([m["reward"] for m in self._metadata], dtype=np.float64)


class VPGReplaySampler:
    """VPG's prioritised experience replay (main.py, "experience replay"): after each training step, replay one
    past experience whose reward differs from the current one, chosen among those by surprise
    |predicted - label|: candidates sorted by ascending surprise, position round(x * (n - 1)) with
    x ~ np.random.power(2), so the most surprising are the likeliest (p(x) = 2x).

    The sampler keeps reward and surprise per store index; add each experience after appending it to the store
    and update its surprise after replaying it (VPG stores the new prediction). state_dict() is JSON-ready and
    holds the RNG state, so a resumed run draws the same samples.
    """

    def __init__(self, seed: int = 0, power: float = 2.0):
        if not power > 0:
            raise ValueError(f"power-law exponent must be > 0, got {power}")
        self.power = float(power)
        self._rng = np.random.default_rng(seed)
        self._rewards: list[float] = []
        self._surprise: list[float] = []

    def __len__(self) -> int:
        return len(self._rewards)

    def add(self, index: int, reward: float, surprise: float) -> None:
        """Register store index `index` (indices come in order: 0, 1, 2, ...)."""
        if index != len(self._rewards):
            raise ValueError(f"sampler holds {len(self._rewards)} experiences, so the next index is "
                             f"{len(self._rewards)}, got {index}")
        if not (math.isfinite(reward) and math.isfinite(surprise)):
            raise ValueError(f"reward and surprise must be finite, got {reward}, {surprise}")
        self._rewards.append(float(reward))
        self._surprise.append(float(surprise))

    def update_surprise(self, index: int, value: float) -> None:
        if not 0 <= index < len(self._surprise):
            raise IndexError(f"sampler index {index} out of range for {len(self._surprise)} experiences")
        if not math.isfinite(value):
            raise ValueError(f"surprise must be finite, got {value}")
        self._surprise[index] = float(value)

    def sample(self, current_reward: float, exclude: int | None = None) -> int | None:
        """Index of a past experience with a reward different from `current_reward`; None if there is none."""
        rewards = np.asarray(self._rewards)
        candidates = np.flatnonzero(~np.isclose(rewards, current_reward, rtol=0.0, atol=1e-6))
        if exclude is not None:
            candidates = candidates[candidates != exclude]
        if len(candidates) == 0:
            return None
        by_surprise = candidates[np.argsort(np.asarray(self._surprise)[candidates], kind="stable")]
        position = int(np.round(self._rng.power(self.power) * (len(candidates) - 1)))
        return int(by_surprise[position])

    def state_dict(self) -> dict:
        return {"power": self.power, "rewards": list(self._rewards), "surprise": list(self._surprise),
                "rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        if len(state["rewards"]) != len(state["surprise"]):
            raise ValueError("sampler state has different numbers of rewards and surprise values")
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        self.power = float(state["power"])
        self._rewards = [float(r) for r in state["rewards"]]
        self._surprise = [float(s) for s in state["surprise"]]
        self._rng = rng
