"""The learner's on-disk replay memory (append-only, crash-safe) and VPG's prioritised replay sampler.

Layout of a store directory:
    replay.json          {"format": "grasp-replay", "version": 1}
    00000000.npz         one compressed experience: images + a JSON metadata string (no pickle)
    00000001.npz ...
A record is written to `.<name>.tmp`, fsync'ed, renamed into place and the directory fsync'ed before
`append` returns, so every acknowledged experience survives a crash or power cut; a temp file left by a crash
is deleted on the next open. Records are numbered without gaps, so the index of an experience never changes.

A record that cannot be read back (corrupt file, metadata of the wrong shape) is quarantined, never blamed on
another: it is moved to `quarantine/<index>.npz` with a `<index>.reason.txt` beside it, logged, and from then on
its index is a hole (`store.quarantined`, reward NaN) that `VPGReplaySampler` never draws; every other record
keeps its index and is trained as usual. Records are quarantined when the store is opened (metadata) or when
they are first read (images). Nothing is deleted: fix or inspect the file in `quarantine/` at leisure.
A store opened with `max_pixels` quarantines the same way, when it is read, a record whose heightmap is larger
than that (`workspace.exceeds_pixel_cap`, the affordance node's rule): one such record would cost every update
that draws it seconds and gigabytes. Raise the cap and move the file back to train it after all.
"""
from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import re
import time
import zipfile
import zlib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

import numpy as np

from grasp_core.fileio import fsync_directory
from grasp_core.workspace import exceeds_pixel_cap

FORMAT = "grasp-replay"
VERSION = 1
MARKER_FILE = "replay.json"
QUARANTINE_DIR = "quarantine"
_log = logging.getLogger(__name__)
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


class CorruptRecordError(ValueError):
    """A stored record cannot be read back; it has been quarantined (moved aside), the rest of the store is fine."""

    def __init__(self, index: int, reason: str, moved_to: Path | None):
        self.index, self.reason, self.moved_to = index, reason, moved_to
        where = f"moved to {moved_to}" if moved_to else "left in place (read-only store)"
        super().__init__(f"replay record #{index} is corrupt ({reason}); quarantined: {where}. It will not be "
                         "trained on; every other record is unaffected")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_META_CHECKS = {
    "id": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    "source": (lambda v: isinstance(v, str), "a string"),
    "attempt": (_integer, "an integer"),
    "rotation_index": (_integer, "an integer"),
    "num_rotations": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "pixel": (lambda v: isinstance(v, list) and len(v) == 2 and all(_integer(x) for x in v), "[u, v] integers"),
    "reward": (lambda v: _number(v) and math.isfinite(v), "a finite number"),
    "terminal": (lambda v: isinstance(v, bool), "true or false"),
    "model_version": (_integer, "an integer"),
    "epsilon": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "explored": (lambda v: isinstance(v, bool), "true or false"),
    "predicted_q": (lambda v: _number(v) and math.isfinite(v), "a finite number"),
    "failure_reason": (_integer, "an integer"),
    "stamp": (lambda v: _number(v) and math.isfinite(v), "a finite number"),
}


def metadata_problem(meta) -> str | None:
    """Why a record's metadata cannot be an Experience's (None if it can, images aside)."""
    if not isinstance(meta, dict):
        return f"metadata is a JSON {type(meta).__name__}, not an object"
    names = {f.name for f in fields(Experience)} - set(_IMAGE_FIELDS)
    required = {f.name for f in fields(Experience) if f.default is MISSING and f.default_factory is MISSING}
    missing = sorted((required - set(_IMAGE_FIELDS)) - set(meta))
    unknown = sorted(str(k) for k in set(meta) - names)
    problems = [f"missing {missing}"] if missing else []
    if unknown:
        problems.append(f"unknown fields {unknown[:5]}")
    for key, (check, requirement) in _META_CHECKS.items():
        if key in meta and not check(meta[key]):
            problems.append(f"{key!r} must be {requirement}, got {meta[key]!r:.60}")
    if not problems and not 0 <= meta["rotation_index"] < meta["num_rotations"]:
        problems.append(f"rotation_index {meta['rotation_index']} is not in [0, {meta['num_rotations']})")
    return "; ".join(problems) or None


def _placeholder(reason: str, original_id=None) -> dict:
    """What the store holds in memory for a quarantined index: no id, an unknown (NaN) reward."""
    return {"id": None, "reward": math.nan, "quarantined": reason, "original_id": original_id}


class ReplayStore:
    """Append-only experience store in a directory. One writer at a time (an flock guards it); any number of
    `read_only=True` readers. Metadata of every record is held in memory, images are read on demand.
    `max_pixels`: the largest heightmap read back; a larger record is quarantined when read (None: no cap).
    """

    def __init__(self, directory, read_only: bool = False, max_pixels: int | None = None):
        if max_pixels is not None and not (isinstance(max_pixels, int) and max_pixels >= 1):
            raise ValueError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")
        self.directory = Path(directory)
        self.read_only = read_only
        self.max_pixels = max_pixels
        self.duplicates = 0          # appends of an id already stored, since this store was opened
        self.removed_partial = 0     # crash leftovers (temp files) deleted when opening
        self._lock_fd = None
        self._open_directory()
        self.quarantined: dict[int, str] = {}  # index -> why (see the module docstring)
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
        earlier = {}  # quarantined by an earlier run: index -> reason
        if (self.directory / QUARANTINE_DIR).is_dir():
            for path in (self.directory / QUARANTINE_DIR).iterdir():
                if match := _RECORD.match(path.name):
                    reason_file = path.with_name(f"{match.group(1)}.reason.txt")
                    try:
                        reason = reason_file.read_text(encoding="utf-8").strip().splitlines()[0]
                    except (OSError, UnicodeDecodeError, IndexError):
                        reason = "quarantined earlier"
                    earlier[int(match.group(1))] = reason
        both = sorted(set(indices) & set(earlier))
        if both:
            raise ValueError(f"replay store {self.directory}: records {both[:10]} are both in the store and in "
                             f"{QUARANTINE_DIR}/: move one copy away by hand")
        indices = sorted(indices + list(earlier))
        if indices != list(range(len(indices))):
            missing = sorted(set(range(indices[-1] + 1)) - set(indices))
            raise ValueError(f"replay store {self.directory} is missing records {missing[:10]}: it was edited by "
                             "hand or damaged")
        for index in indices:
            if index in earlier:
                self.quarantined[index] = earlier[index]
                self._metadata.append(_placeholder(earlier[index]))
                continue
            path = self._record_path(index)
            try:
                with np.load(path, allow_pickle=False) as data:
                    meta = json.loads(str(data["meta"]))
                problem = metadata_problem(meta)
            except OSError as e:  # the disk or permissions, not the record: nothing to quarantine
                raise ValueError(f"replay record {path} cannot be read ({e}): check the disk and the "
                                 "folder's permissions") from e
            except Exception as e:  # zipfile/json/key errors: the file itself is damaged
                problem = f"unreadable: {type(e).__name__}: {e}"
            if problem is None and meta["id"] in self._index_of_id:
                problem = f"id {meta['id']!r} is already stored as record #{self._index_of_id[meta['id']]}"
            if problem is not None:
                self._metadata.append(_placeholder(problem))
                self._quarantine(index, problem)
                continue
            self._index_of_id[meta["id"]] = index
            self._metadata.append(meta)

    def _quarantine(self, index: int, reason: str) -> Path | None:
        """Move record `index` aside (kept, never deleted) and make its index a hole; returns where it went."""
        self.quarantined[index] = reason
        original_id = self._metadata[index].get("id") if index < len(self._metadata) else None
        self._index_of_id.pop(original_id, None)
        self._metadata[index] = _placeholder(reason, original_id)
        moved_to = None
        if not self.read_only:
            folder = self.directory / QUARANTINE_DIR
            folder.mkdir(exist_ok=True)
            source, moved_to = self._record_path(index), folder / self._record_path(index).name
            (folder / f"{index:08d}.reason.txt").write_text(
                f"{reason}\nquarantined {time.strftime('%Y-%m-%d %H:%M:%S')} from {source}\n", encoding="utf-8")
            os.replace(source, moved_to)
            fsync_directory(self.directory)
        _log.warning("replay store %s: record #%d quarantined (%s)%s", self.directory, index, reason,
                     f"; moved to {moved_to}" if moved_to else " (read-only: left in place)")
        return moved_to

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
        """The experience at `index`; CorruptRecordError (after quarantining it) if it cannot be read back."""
        index = self._check_index(index)
        if index in self.quarantined:
            moved = self.directory / QUARANTINE_DIR / self._record_path(index).name
            raise CorruptRecordError(index, self.quarantined[index], moved if moved.exists() else None)
        meta = dict(self._metadata[index])
        try:
            with np.load(self._record_path(index), allow_pickle=False) as data:
                arrays = {name: data[name] for name in _IMAGE_FIELDS if name in data.files}
            meta["pixel"] = tuple(meta["pixel"])
            experience = Experience(**meta, **arrays)
        except (ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            reason = f"unreadable: {type(e).__name__}: {e}"  # the file's bytes, not the disk (OSError propagates)
            raise CorruptRecordError(index, reason, self._quarantine(index, reason)) from e
        height, width = experience.depth_hm.shape
        if self.max_pixels is not None and exceeds_pixel_cap(height, width, self.max_pixels):
            reason = (f"heightmap {width}x{height} is larger than this store's cap of {self.max_pixels} pixels "
                      "(the learner's max_heightmap_pixels)")
            raise CorruptRecordError(index, reason, self._quarantine(index, reason))
        return experience

    def metadata(self, index: int) -> dict:
        """An experience's fields without its images, from memory."""
        return dict(self._metadata[self._check_index(index)])

    def index_of(self, experience_id: str) -> int | None:
        return self._index_of_id.get(experience_id)

    @property
    def ids(self) -> list[str]:
        """Ids of the readable records (quarantined ones have none)."""
        return [m["id"] for m in self._metadata if m.get("id") is not None]

    @property
    def rewards(self) -> np.ndarray:
        """Reward per index; NaN at quarantined indices (unknown: VPGReplaySampler never draws them)."""
        return np.array([m["reward"] for m in self._metadata], dtype=np.float64)


class VPGReplaySampler:
    """VPG's prioritised experience replay (main.py, "experience replay"): after each training step, replay one
    past experience whose reward differs from the current one, chosen among those by surprise
    |predicted - label|: candidates sorted by ascending surprise, position round(x * (n - 1)) with
    x ~ np.random.power(2), so the most surprising are the likeliest (p(x) = 2x).

    The sampler keeps reward and surprise per store index; add each experience after appending it to the store
    and update its surprise after replaying it (VPG stores the new prediction). state_dict() is JSON-ready and
    holds the RNG state, so a resumed run draws the same samples. A reward of NaN marks an index that must never
    be drawn (a quarantined record: `ReplayStore.rewards` gives NaN there; `retire(index)` does it afterwards).
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
        if not ((math.isfinite(reward) or math.isnan(reward)) and math.isfinite(surprise)):
            raise ValueError(f"reward must be finite (or NaN: never draw this index) and surprise finite, got "
                             f"{reward}, {surprise}")
        self._rewards.append(float(reward))
        self._surprise.append(float(surprise))

    def retire(self, index: int) -> None:
        """Never draw `index` again (its record was quarantined)."""
        if not 0 <= index < len(self._rewards):
            raise IndexError(f"sampler index {index} out of range for {len(self._rewards)} experiences")
        self._rewards[index] = math.nan

    def drawable(self) -> np.ndarray:
        """Indices that may be drawn (not retired)."""
        return np.flatnonzero(~np.isnan(np.asarray(self._rewards, dtype=float)))

    def retired(self) -> list[int]:
        return [i for i, r in enumerate(self._rewards) if math.isnan(r)]

    def update_surprise(self, index: int, value: float) -> None:
        if not 0 <= index < len(self._surprise):
            raise IndexError(f"sampler index {index} out of range for {len(self._surprise)} experiences")
        if not math.isfinite(value):
            raise ValueError(f"surprise must be finite, got {value}")
        self._surprise[index] = float(value)

    def sample(self, current_reward: float, exclude: int | None = None) -> int | None:
        """Index of a past experience with a reward different from `current_reward`; None if there is none."""
        rewards = np.asarray(self._rewards)
        candidates = np.flatnonzero(~np.isclose(rewards, current_reward, rtol=0.0, atol=1e-6) & ~np.isnan(rewards))
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
