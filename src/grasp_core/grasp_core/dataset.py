"""Key-point datasets for pretraining (format `grasp-keypoints`, version 1; see docs/design.md).

A plain folder: `dataset.json` (workspace, optional camera notes, and per sample its image files, clicked
key points [[u, v], ...] in heightmap pixels and sigmas in pixels) plus `images/<id>_color.png` (RGB) and
`images/<id>_depth.npy` (float32 metres above z_min). Every file is written to a temporary name, flushed to
disk and renamed, and dataset.json goes last, so a crash mid-save leaves the previous dataset readable.
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from grasp_core.fileio import atomic_write
from grasp_core.workspace import WorkspaceLimits

FORMAT = "grasp-keypoints"
VERSION = 1
INDEX_FILE = "dataset.json"
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


class DatasetError(ValueError):
    """The folder is not a readable grasp-keypoints v1 dataset, or a sample does not fit it."""


@dataclass(eq=False)
class KeypointSample:
    """One annotated heightmap: colour uint8 (H, W, 3) RGB, depth float32 (H, W), points (N, 2) [u, v], sigmas (N,)."""

    id: str
    color: np.ndarray
    depth: np.ndarray
    points: np.ndarray
    sigmas: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _SAFE_ID.match(self.id):
            raise DatasetError(f"sample id {self.id!r} must be a plain file-name stem (letters, digits, _ . -)")
        self.color = np.asarray(self.color)
        self.depth = np.asarray(self.depth)
        if self.depth.dtype != np.float32 or self.depth.ndim != 2:
            raise DatasetError(f"sample {self.id}: depth must be float32 (H, W), got {self.depth.dtype} "
                               f"{self.depth.shape}")
        if self.color.dtype != np.uint8 or self.color.shape != self.depth.shape + (3,):
            raise DatasetError(f"sample {self.id}: color must be uint8 {self.depth.shape + (3,)} like the depth, "
                               f"got {self.color.dtype} {self.color.shape}")
        points = np.asarray(self.points, dtype=np.float64)
        self.points = points.reshape(0, 2) if points.size == 0 else points
        self.sigmas = np.asarray(self.sigmas, dtype=np.float64).reshape(-1)
        if self.points.ndim != 2 or self.points.shape[1] != 2 or len(self.points) != len(self.sigmas):
            raise DatasetError(f"sample {self.id}: need points (N, 2) and sigmas (N,), got {self.points.shape} "
                               f"and {self.sigmas.shape}")
        if not np.all(np.isfinite(self.sigmas)) or np.any(self.sigmas <= 0):
            raise DatasetError(f"sample {self.id}: sigmas must be finite and > 0 pixels, got {self.sigmas.tolist()}")
        h, w = self.depth.shape
        u, v = self.points[:, 0], self.points[:, 1]
        inside = np.isfinite(u) & np.isfinite(v) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        if not np.all(inside):
            raise DatasetError(f"sample {self.id}: key points {self.points[~inside].tolist()} lie outside the "
                               f"{w}x{h} heightmap (0 <= u < {w}, 0 <= v < {h})")


@dataclass(eq=False)
class KeypointDataset:
    samples: list[KeypointSample]
    workspace: WorkspaceLimits
    camera: dict | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> KeypointSample:
        return self.samples[index]


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"camera metadata value {value!r} ({type(value).__name__}) is not JSON-serialisable")


def _read_index(path: Path) -> dict:
    index_path = path / INDEX_FILE
    if not index_path.is_file():
        raise DatasetError(f"{path} is not a {FORMAT} dataset: {INDEX_FILE} is missing")
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{index_path} is corrupt (not valid JSON: {e})") from e
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        found = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise DatasetError(f"{index_path} is not a {FORMAT} dataset (format: {found!r})")
    if index.get("version") != VERSION:
        raise DatasetError(f"{index_path} is {FORMAT} version {index.get('version')!r}; this code reads version "
                           f"{VERSION} only")
    return index


def save_dataset(path, samples: list[KeypointSample], workspace: WorkspaceLimits, camera: dict | None = None) -> Path:
    """Write (or overwrite) a dataset folder; refuses a non-empty folder that is not a grasp-keypoints dataset."""
    path = Path(path)
    if path.exists() and any(path.iterdir()) and not (path / INDEX_FILE).exists():
        raise DatasetError(f"refusing to write a dataset into {path}: the folder is not empty and holds no "
                           f"{INDEX_FILE}")
    if (path / INDEX_FILE).exists():
        _read_index(path)  # never clobber a foreign file or another version
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"sample ids must be unique, got duplicates {sorted({i for i in ids if ids.count(i) > 1})}")
    for sample in samples:
        if sample.depth.shape != workspace.shape:
            raise DatasetError(f"sample {sample.id}: heightmap is {sample.depth.shape} but the workspace gives "
                               f"{workspace.shape}")
    camera_json = json.dumps(camera, default=_json_default) if camera is not None else None

    (path / "images").mkdir(parents=True, exist_ok=True)
    entries = []
    for sample in samples:
        color_file, depth_file = f"images/{sample.id}_color.png", f"images/{sample.id}_depth.npy"
        ok, png = cv2.imencode(".png", cv2.cvtColor(sample.color, cv2.COLOR_RGB2BGR))
        if not ok:
            raise DatasetError(f"sample {sample.id}: OpenCV could not encode the colour heightmap as PNG")
        atomic_write(path / color_file, png.tobytes())
        buffer = io.BytesIO()
        np.save(buffer, sample.depth, allow_pickle=False)
        atomic_write(path / depth_file, buffer.getvalue())
        entries.append({"id": sample.id, "color": color_file, "depth": depth_file,
                        "points": sample.points.tolist(), "sigmas": sample.sigmas.tolist()})
    index = {"format": FORMAT, "version": VERSION, "workspace": workspace.as_dict()}
    if camera_json is not None:
        index["camera"] = json.loads(camera_json)
    index["samples"] = entries
    atomic_write(path / INDEX_FILE, (json.dumps(index, indent=1) + "\n").encode("utf-8"))
    return path


def _sample_file(root: Path, relative, sample_id: str, key: str) -> Path:
    if not isinstance(relative, str):
        raise DatasetError(f"sample {sample_id}: '{key}' must be a file path, got {relative!r}")
    file = (root / relative).resolve()
    if root.resolve() not in file.parents:
        raise DatasetError(f"sample {sample_id}: '{key}' path {relative!r} leaves the dataset folder")
    if not file.is_file():
        raise DatasetError(f"sample {sample_id}: {key} file {relative} is missing")
    return file


def load_dataset(path) -> KeypointDataset:
    """Read a grasp-keypoints v1 folder; every problem is a DatasetError (a ValueError) naming the file."""
    path = Path(path)
    index = _read_index(path)
    try:
        workspace = WorkspaceLimits.from_dict(index["workspace"])
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{path / INDEX_FILE}: bad or missing workspace ({e})") from e
    camera = index.get("camera")
    if camera is not None and not isinstance(camera, dict):
        raise DatasetError(f"{path / INDEX_FILE}: 'camera' must be an object, got {type(camera).__name__}")
    entries = index.get("samples")
    if not isinstance(entries, list):
        raise DatasetError(f"{path / INDEX_FILE}: 'samples' must be a list")
    samples, seen = [], set()
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"id", "color", "depth", "points", "sigmas"} <= entry.keys():
            raise DatasetError(f"{path / INDEX_FILE}: sample #{n} needs id, color, depth, points and sigmas")
        sample_id = entry["id"]
        if sample_id in seen:
            raise DatasetError(f"{path / INDEX_FILE}: sample id {sample_id!r} appears twice")
        seen.add(sample_id)
        bgr = cv2.imread(str(_sample_file(path, entry["color"], sample_id, "color")), cv2.IMREAD_UNCHANGED)
        if bgr is None or bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            raise DatasetError(f"sample {sample_id}: {entry['color']} is not an 8-bit RGB PNG")
        try:
            depth = np.load(_sample_file(path, entry["depth"], sample_id, "depth"), allow_pickle=False)
        except ValueError as e:
            raise DatasetError(f"sample {sample_id}: {entry['depth']} is not a readable .npy array ({e})") from e
        try:
            sample = KeypointSample(sample_id, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), depth,
                                    np.asarray(entry["points"], dtype=np.float64),
                                    np.asarray(entry["sigmas"], dtype=np.float64))
        except (TypeError, ValueError) as e:
            raise DatasetError(f"{path}: {e}") from e
        if sample.depth.shape != workspace.shape:
            raise DatasetError(f"sample {sample_id}: heightmap is {sample.depth.shape} but the workspace gives "
                               f"{workspace.shape}")
        samples.append(sample)
    return KeypointDataset(samples, workspace, camera)
