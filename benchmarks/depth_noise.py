#!/usr/bin/env python3
"""What the simulated D435 (grasp_core.sim.depth_noise, the camera's default) does to heightmaps.

For each world seed 9000, 9001, ... a settled scene of `--objects` objects is rendered by the world's default
(noisy) camera and by an exact-depth camera; both become heightmaps (grasp_core.heightmap). Reported: the absolute
height error of the noisy heightmap on object tops and on the table (cells at least 2 cells inside the exact
heightmap's objects, > 1 cm, or table, < 2 mm), the share of depth holes in the image and of unobserved heightmap
cells, cells on object tops that read below 5 mm (false gaps; split into filled holes and observed cells), and
whether a second noisy frame of the same still scene counts as a scene change (grasp_core.episode.scene_changed).

    scripts/in_env.sh python benchmarks/depth_noise.py --library random_objects --scenes 20 \
        --out benchmarks/results/depth_noise_random_objects.json
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from grasp_core.episode import EpisodeConfig, scene_changed  # noqa: E402
from grasp_core.heightmap import depth_image_from_16uc1, fill_unobserved, project_heightmap  # noqa: E402
from grasp_core.sim import GraspWorld, SimConfig  # noqa: E402
from grasp_core.sim.camera import RgbdCamera  # noqa: E402

INSET = np.ones((5, 5), np.uint8)  # "at least 2 cells inside"


def measure_scene(world: GraspWorld) -> dict:
    ws = world.workspace

    def project(frame):
        return project_heightmap(frame.color, depth_image_from_16uc1(frame.depth_mm), frame.intrinsics.K,
                                 frame.pose, ws)

    with RgbdCamera(world.model, world.config.camera.exact_depth()) as exact:
        _, exact_hm, exact_observed = project(exact.render(world.data))
    start = time.perf_counter()
    frame = world.render()
    render_s = time.perf_counter() - start
    color, raw, observed = project(frame)
    _, noisy_hm = fill_unobserved(color, raw, observed)
    tops = cv2.erode((exact_observed & (exact_hm > 0.01)).astype(np.uint8), INSET).astype(bool)
    table = cv2.erode((exact_observed & (exact_hm < 0.002)).astype(np.uint8), INSET).astype(bool)
    error = np.abs(noisy_hm - exact_hm)
    low = tops & (noisy_hm < 0.005)
    second = fill_unobserved(*project(world._camera.render(world.data)))[1]
    return {"tops_error_m": error[tops], "table_error_m": error[table],
            "image_hole_fraction": float(np.mean(frame.depth_mm == 0)),
            "unobserved_fraction": float(1 - observed.mean()),
            "unobserved_fraction_exact": float(1 - exact_observed.mean()),
            "false_gaps_filled": int(np.sum(low & ~observed)), "false_gaps_observed": int(np.sum(low & observed)),
            "still_scene_changed": bool(scene_changed(noisy_hm, second, ws.resolution, EpisodeConfig())),
            "render_s": render_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--library", default=SimConfig.object_library, help="object library of the scenes")
    parser.add_argument("--objects", type=int, default=10, help="objects per scene")
    parser.add_argument("--scenes", type=int, default=20, help="scenes (world seeds 9000, 9001, ...)")
    parser.add_argument("--out", type=Path, default=None, help="write the summary here as JSON")
    args = parser.parse_args()

    scenes = []
    for seed in range(9000, 9000 + args.scenes):
        with GraspWorld(SimConfig(num_objects=args.objects, seed=seed, object_library=args.library)) as world:
            scenes.append(measure_scene(world))

    def summary(key):
        values = 1000 * np.concatenate([s[key] for s in scenes])
        return {"cells": int(values.size), "mean_mm": round(float(values.mean()), 2),
                "p95_mm": round(float(np.percentile(values, 95)), 2),
                "p99_mm": round(float(np.percentile(values, 99)), 2)}

    def spread(key):
        values = np.array([s[key] for s in scenes])
        return {"mean": round(float(values.mean()), 5), "min": round(float(values.min()), 5),
                "max": round(float(values.max()), 5)}

    result = {"library": args.library, "objects": args.objects, "scenes": args.scenes, "seeds": "9000+",
              "object_tops": summary("tops_error_m"), "table": summary("table_error_m"),
              "image_hole_fraction": spread("image_hole_fraction"),
              "unobserved_fraction": spread("unobserved_fraction"),
              "unobserved_fraction_exact_depth": spread("unobserved_fraction_exact"),
              "false_gaps_filled": sum(s["false_gaps_filled"] for s in scenes),
              "false_gaps_observed": sum(s["false_gaps_observed"] for s in scenes),
              "still_scenes_counted_as_changed": sum(s["still_scene_changed"] for s in scenes),
              "noisy_render_ms_median": round(1000 * float(np.median([s["render_s"] for s in scenes])), 1)}
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
