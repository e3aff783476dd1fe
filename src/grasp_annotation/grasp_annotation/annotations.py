"""An annotation session over a `grasp-keypoints` v1 dataset: edit key points, undo, autosave after each change.

The dataset is read (and fully validated) once with `grasp_core.dataset.load_dataset`. Edits change only the
points and sigmas, so each autosave rewrites only `dataset.json` (temp file, fsync, rename: a crash or a
SIGKILL leaves the previous or the new file, never half of one), in exactly the layout `save_dataset`
writes. Images are never rewritten, so an autosave takes about a millisecond even for a large dataset.
"""
from __future__ import annotations

import json
import numbers
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grasp_core.dataset import INDEX_FILE, DatasetError, KeypointDataset, KeypointSample, load_dataset
from grasp_core.fileio import atomic_write
from grasp_core.labels import estimate_sigma

# Sigma limits (pixels) the tool accepts; the label of a sigma below half a pixel is a single dot.
MIN_SIGMA = 0.5
# A click on the empty table gets this sigma (the person is told, and can adjust it).
DEFAULT_SIGMA = 8.0
# Bounds on what a page (any page: the server only listens on 127.0.0.1, but a browser tab can send anything) can
# make the session hold: undo steps kept (the oldest are dropped), the length of a gesture id (the page's are
# ~20 characters), and key points per image (a heightmap holds 1-30 objects).
MAX_UNDO = 1000
MAX_GESTURE_CHARS = 64
MAX_POINTS_PER_SAMPLE = 500


def _number(value, name: str) -> float:
    """A JSON number as a float: true/false, strings and null are refused (float(True) would be 1.0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r:.40}")
    return float(value)


def _gesture(gesture) -> str | None:
    if gesture is None:
        return None
    if not isinstance(gesture, str) or len(gesture) > MAX_GESTURE_CHARS:
        raise ValueError(f"gesture must be a string of at most {MAX_GESTURE_CHARS} characters or null, got "
                         f"{type(gesture).__name__} of length {len(gesture) if isinstance(gesture, str) else '-'}")
    return gesture


@dataclass
class EditResult:
    """What an edit did: the sample it touched, and a note for the person (empty when all went as asked)."""

    sample: int | None
    message: str = ""


def write_annotations(path, samples: list[KeypointSample]) -> None:
    """Rewrite the points and sigmas in `<path>/dataset.json` (atomically); the image files stay as they are.

    The samples must be the dataset's own, in its order: anything else is refused, never merged.
    """
    index_path = Path(path) / INDEX_FILE
    index = json.loads(index_path.read_text(encoding="utf-8"))
    entries = index.get("samples", [])
    if [e.get("id") for e in entries] != [s.id for s in samples]:
        raise DatasetError(f"{index_path} changed on disk (its samples are not the ones being annotated); "
                           "restart the annotation tool")
    for entry, sample in zip(entries, samples):
        entry["points"] = sample.points.tolist()
        entry["sigmas"] = sample.sigmas.tolist()
    data = (json.dumps(index, indent=1) + "\n").encode("utf-8")
    atomic_write(index_path, data)


class AnnotationSession:
    """Key-point edits on one dataset, thread-safe, with an undo history and a save after every change."""

    def __init__(self, path, height_threshold: float = 0.005, decimals: int = 2):
        self.path = Path(path)
        self.dataset: KeypointDataset = load_dataset(self.path)
        if len(self.dataset) == 0:
            raise DatasetError(f"{self.path} holds no samples: capture some first")
        self.height_threshold = float(height_threshold)
        self.decimals = int(decimals)
        self.revision = 0
        self.saved_at = (self.path / INDEX_FILE).stat().st_mtime
        self._undo: list[tuple[int, np.ndarray, np.ndarray, str | None]] = []
        self._lock = threading.Lock()

    # --- reading ---------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.dataset)

    def sample(self, index: int) -> KeypointSample:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(self):
            raise ValueError(f"sample index must be an integer in [0, {len(self)}), got {index!r}")
        return self.dataset.samples[int(index)]

    def state(self) -> dict:
        """Everything the page shows besides the images (plain JSON types)."""
        with self._lock:
            return {"dataset": str(self.path), "revision": self.revision, "saved_at": self.saved_at,
                    "can_undo": bool(self._undo),
                    "shape": list(self.dataset.workspace.shape),
                    "samples": [{"id": s.id, "points": s.points.tolist(), "sigmas": s.sigmas.tolist()}
                                for s in self.dataset.samples]}

    # --- editing ---------------------------------------------------------------------------------------------
    def _point(self, sample: KeypointSample, u, v) -> tuple[float, float]:
        h, w = sample.depth.shape
        if any(isinstance(c, bool) or not isinstance(c, numbers.Real) for c in (u, v)):
            raise ValueError(f"point coordinates must be numbers, got u={u!r:.40}, v={v!r:.40}")
        u, v = float(u), float(v)
        if not (np.isfinite(u) and np.isfinite(v)):
            raise ValueError(f"point coordinates must be finite, got u={u}, v={v}")
        # A click on the outer half of a border pixel lands on that pixel; further out is a mistake.
        if not (-1.0 < u < w and -1.0 < v < h):
            raise ValueError(f"point (u={u:g}, v={v:g}) is outside the {w}x{h} heightmap")
        return (round(min(max(u, 0.0), w - 1.0), self.decimals), round(min(max(v, 0.0), h - 1.0), self.decimals))

    def _sigma(self, sample: KeypointSample, sigma) -> float:
        sigma = _number(sigma, "sigma")
        limit = float(max(sample.depth.shape))
        if not np.isfinite(sigma) or not MIN_SIGMA <= sigma <= limit:
            raise ValueError(f"sigma must be between {MIN_SIGMA} and {limit:g} pixels, got {sigma}")
        return round(sigma, self.decimals)

    def _point_index(self, sample: KeypointSample, point) -> int:
        if isinstance(point, bool) or not isinstance(point, (int, np.integer)) or not 0 <= point < len(sample.points):
            raise ValueError(f"sample {sample.id} has {len(sample.points)} points; no point #{point!r}")
        return int(point)

    def _commit(self, index: int, sample: KeypointSample, points: np.ndarray, sigmas: np.ndarray,
                gesture: str | None) -> None:
        """Record undo, apply, save. A repeated non-empty `gesture` (one drag, one scroll) is one undo step."""
        gesture = _gesture(gesture)
        if len(points) > MAX_POINTS_PER_SAMPLE:
            raise ValueError(f"sample {sample.id} already has {len(sample.points)} key points, the most one image "
                             f"may hold is {MAX_POINTS_PER_SAMPLE}")
        new = KeypointSample(sample.id, sample.color, sample.depth, points, sigmas)  # validates
        if not (gesture and self._undo and self._undo[-1][0] == index and self._undo[-1][3] == gesture):
            self._undo.append((index, sample.points.copy(), sample.sigmas.copy(), gesture))
            del self._undo[:-MAX_UNDO]  # bounded: the oldest steps go first
        self.dataset.samples[index] = new
        self._save_locked()

    def estimate(self, index: int, u, v) -> tuple[float, str]:
        """Sigma for a click at (u, v) from the depth heightmap, and a note when there is no object there."""
        sample = self.sample(index)
        u, v = self._point(sample, u, v)
        try:
            return round(estimate_sigma(sample.depth, (u, v), self.height_threshold), self.decimals), ""
        except ValueError:
            return DEFAULT_SIGMA, (f"no object under ({u:g}, {v:g}) in the depth heightmap: sigma set to "
                                   f"{DEFAULT_SIGMA:g} px, scroll over the point to adjust it")

    def add(self, index: int, u, v, sigma=None) -> EditResult:
        """Add a key point; its sigma is estimated from the depth heightmap unless given."""
        sample = self.sample(index)
        u, v = self._point(sample, u, v)
        message = ""
        if sigma is None:
            sigma, message = self.estimate(index, u, v)
        sigma = self._sigma(sample, sigma)
        with self._lock:
            sample = self.dataset.samples[index]
            self._commit(index, sample, np.vstack([sample.points, [[u, v]]]), np.append(sample.sigmas, sigma), None)
        return EditResult(index, message)

    def move(self, index: int, point: int, u, v, gesture: str | None = None) -> EditResult:
        with self._lock:
            sample = self.sample(index)
            point = self._point_index(sample, point)
            points = sample.points.copy()
            points[point] = self._point(sample, u, v)
            self._commit(index, sample, points, sample.sigmas.copy(), gesture)
        return EditResult(index)

    def set_sigma(self, index: int, point: int, sigma, gesture: str | None = None) -> EditResult:
        with self._lock:
            sample = self.sample(index)
            point = self._point_index(sample, point)
            sigmas = sample.sigmas.copy()
            sigmas[point] = self._sigma(sample, sigma)
            self._commit(index, sample, sample.points.copy(), sigmas, gesture)
        return EditResult(index)

    def delete(self, index: int, point: int) -> EditResult:
        with self._lock:
            sample = self.sample(index)
            point = self._point_index(sample, point)
            keep = np.arange(len(sample.points)) != point
            self._commit(index, sample, sample.points[keep], sample.sigmas[keep], None)
        return EditResult(index)

    def undo(self) -> EditResult:
        """Revert the last change (on whichever sample it was); an empty history is an error the page shows."""
        with self._lock:
            if not self._undo:
                raise ValueError("nothing to undo")
            index, points, sigmas, _ = self._undo.pop()
            sample = self.dataset.samples[index]
            self.dataset.samples[index] = KeypointSample(sample.id, sample.color, sample.depth, points, sigmas)
            self._save_locked()
        return EditResult(index)

    def save(self) -> None:
        with self._lock:
            self._save_locked()

    def _save_locked(self) -> None:
        write_annotations(self.path, self.dataset.samples)
        self.revision += 1
        self.saved_at = time.time()
