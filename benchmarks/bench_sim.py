"""Throughput of the simulated world as the learning loop uses it: grasp attempts per minute, render + heightmap
included (goal >= 300 / min on 2 CPU cores).

Each step renders the RGB-D frame, builds the heightmap, picks a random occupied pixel (or any pixel with
--policy uniform) and a random one of 16 jaw angles (an exploring policy), and executes the grasp with z from the
depth heightmap; the world resets itself when empty or stuck, as in training.

    MUJOCO_GL=egl PYTHONPATH=src/grasp_core python benchmarks/bench_sim.py --attempts 300 --objects 10
Prints attempts per minute and writes benchmarks/results/sim.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "grasp_core"))

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from grasp_core.sim import GraspWorld, SimConfig  # noqa: E402


def run(attempts: int, num_objects: int, seed: int, robot: str, policy: str = "occupied") -> dict:
    rng = np.random.default_rng(seed)
    build_start = time.perf_counter()
    world = GraspWorld(SimConfig(robot=robot, num_objects=num_objects, seed=seed))
    build_s = time.perf_counter() - build_start
    timers = {"render": 0.0, "heightmap": 0.0, "grasp": 0.0}
    successes = resets = 0
    ws = world.workspace
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        for _ in tqdm(range(attempts), desc="grasp attempts"):
            t0 = time.perf_counter()
            frame = world.render()
            t1 = time.perf_counter()
            _, depth_hm = world.heightmap()
            t2 = time.perf_counter()
            occupied = np.argwhere(depth_hm > 0.01)
            if policy == "occupied" and len(occupied):
                v, u = occupied[rng.integers(len(occupied))]
            else:
                v, u = rng.integers(0, depth_hm.shape[0]), rng.integers(0, depth_hm.shape[1])
            x, y = ws.x_min + u * ws.resolution, ws.y_min + v * ws.resolution
            angle = int(rng.integers(16)) * 2 * math.pi / 16
            result = world.execute_grasp(x, y, angle)
            t3 = time.perf_counter()
            timers["render"] += t1 - t0
            timers["heightmap"] += t2 - t1
            timers["grasp"] += t3 - t2
            successes += int(result.grasp_success)
            resets += int(result.scene_reset)
            assert frame.depth_mm.dtype == np.uint16
    finally:
        world.close()
    wall = time.perf_counter() - start
    return {"robot": robot, "num_objects": num_objects, "attempts": attempts, "seed": seed,
            "attempts_per_minute": round(60.0 * attempts / wall, 1), "goal_per_minute": 300,
            "wall_s": round(wall, 2), "world_build_s": round(build_s, 3),
            "ms_per_attempt": {k: round(1000 * v / attempts, 2) for k, v in timers.items()},
            "policy": f"random {policy} pixel, random angle",
            "random_policy_success_rate": round(successes / attempts, 3), "scene_resets": resets,
            "timestep_s": world.model.opt.timestep, "mujoco": mujoco.__version__,
            "mujoco_gl": os.environ.get("MUJOCO_GL"), "cpu_count": os.cpu_count(),
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # shared machine
            "machine": platform.machine()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=300, help="simulated grasp attempts to time")
    parser.add_argument("--objects", type=int, default=10, help="objects per scene")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the world")
    parser.add_argument("--robot", default="ur5", choices=["ur5", "ur3"], help="simulated arm")
    parser.add_argument("--policy", default="occupied", choices=["occupied", "uniform"],
                        help="random pixels where the depth heightmap shows an object, or anywhere")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "sim.json"),
                        help="JSON file for the results")
    args = parser.parse_args(argv)
    summary = run(args.attempts, args.objects, args.seed, args.robot, args.policy)
    print(json.dumps(summary, indent=2))
    print(f"{summary['attempts_per_minute']:.0f} grasp attempts per minute including render + heightmap "
          f"(goal 300)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
