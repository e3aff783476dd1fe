"""Free annotation from the simulator: one key point per object and a covering sigma, like a person's click.

Each object is labelled by grasp_core.sim.footprint (the footprint point deepest inside the object, sigma the
radius of the disc with the footprint's area). A `click_noise_px` adds the Gaussian scatter of a person's clicks.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from grasp_core.dataset import KeypointSample, save_dataset
from grasp_core.sim.footprint import footprint_keypoint
from grasp_core.sim.world import GraspWorld, check_num_objects, world_config

__all__ = ["footprint_keypoint", "make_keypoint_dataset"]  # footprint_keypoint: importable from here as before


def make_keypoint_dataset(out_dir, num_images: int = 50, num_objects=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
                          seed: int = 0, click_noise_px: float = 0.0, object_set: str = "train",
                          robot: str = "ur5", show_progress: bool = True, object_library: str = "random_objects",
                          exact_depth: bool = False) -> Path:
    """Render `num_images` random scenes and write them with their key points as a `grasp-keypoints` v1 dataset.

    num_objects: objects per image, an int or a sequence to draw from uniformly. Returns the dataset folder.
    """
    if isinstance(num_images, bool) or not isinstance(num_images, (int, np.integer)) or num_images < 1:
        raise ValueError(f"num_images must be a positive integer, got {num_images!r}")
    counts = [num_objects] if isinstance(num_objects, (int, np.integer)) else list(num_objects)
    if not counts:
        raise ValueError("num_objects must be an integer or a non-empty sequence of integers")
    counts = [check_num_objects(n) for n in counts]
    if not math.isfinite(click_noise_px) or click_noise_px < 0:
        raise ValueError(f"click_noise_px must be >= 0, got {click_noise_px!r}")

    rng = np.random.default_rng(seed)
    world = GraspWorld(world_config(object_library, exact_depth, robot=robot, num_objects=counts[0],
                                    object_set=object_set, seed=seed))
    samples = []
    try:
        for i in tqdm(range(num_images), desc="sim key-point images", disable=None if show_progress else True):
            world.reset(num_objects=int(rng.choice(counts)))
            color_hm, depth_hm = world.heightmap()
            points, sigmas, _ = world.ground_truth_keypoints()
            if click_noise_px > 0:
                h, w = world.workspace.shape
                points = points + rng.normal(0.0, click_noise_px, size=points.shape)
                points = np.clip(points, 0.0, np.array([w, h]) - 1e-3)  # a click stays on the image
            samples.append(KeypointSample(id=f"{i:06d}", color=color_hm, depth=depth_hm,
                                          points=points.astype(np.float32), sigmas=sigmas.astype(np.float32)))
        frame = world.render()
        camera = {"source": f"grasp_core.sim ({robot}, {object_library} {object_set} objects, "
                            f"{'exact' if exact_depth else 'D435-like'} depth, seed {seed})",
                  "intrinsics": frame.intrinsics.as_camera_info(), "pose": frame.pose.tolist(),
                  "click_noise_px": float(click_noise_px)}
        save_dataset(out_dir, samples, world.workspace, camera=camera)
    finally:
        world.close()
    return Path(out_dir)
