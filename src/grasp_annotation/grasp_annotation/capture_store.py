"""Adding captured heightmaps to a key-point dataset (ROS-free; the capture node calls it).

A new sample has no points yet ("unannotated"); the annotation tool adds them. The dataset is written with
`grasp_core.dataset.save_dataset` (every file atomically, dataset.json last), so a capture interrupted at any
moment leaves the dataset as it was before it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from grasp_core.dataset import INDEX_FILE, DatasetError, KeypointSample, load_dataset, save_dataset
from grasp_core.workspace import WorkspaceLimits


def next_sample_id(ids: list[str]) -> str:
    """Six-digit ids in capture order: one more than the largest numeric id so far."""
    numbers = [int(i) for i in ids if i.isdigit()]
    return f"{(max(numbers) + 1) if numbers else 0:06d}"


def check_capture_target(path) -> None:
    """Refuse, before any picture is taken, a folder that is neither empty, missing, nor a readable dataset."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DatasetError(f"{path} is a file, not a dataset folder")
    if (path / INDEX_FILE).exists():
        load_dataset(path)  # raises a DatasetError naming what is wrong
    elif path.exists() and any(path.iterdir()):
        raise DatasetError(f"{path} is not empty and holds no {INDEX_FILE}: not a grasp-keypoints dataset; "
                           "capture into a new folder")


def append_capture(path, color: np.ndarray, depth: np.ndarray, workspace: WorkspaceLimits,
                   camera: dict | None = None) -> str:
    """Add one unannotated heightmap to the dataset at `path` (created if missing); return its sample id.

    The workspace must be the dataset's (heightmaps from two workspaces do not mix in one dataset). `camera`
    replaces the stored camera notes when given, else they are kept.
    """
    path = Path(path)
    if (path / INDEX_FILE).exists():
        dataset = load_dataset(path)
        if dataset.workspace != workspace:
            raise DatasetError(f"the heightmap's workspace {workspace} differs from the dataset's "
                               f"{dataset.workspace} in {path}: capture into a new folder")
        samples, stored_camera = list(dataset.samples), dataset.camera
    else:
        samples, stored_camera = [], None
    sample_id = next_sample_id([s.id for s in samples])
    samples.append(KeypointSample(sample_id, np.asarray(color, dtype=np.uint8), np.asarray(depth, dtype=np.float32),
                                  np.zeros((0, 2)), np.zeros(0)))
    save_dataset(path, samples, workspace, camera=camera if camera is not None else stored_camera)
    return sample_id
