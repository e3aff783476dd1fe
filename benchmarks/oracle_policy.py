"""Scripted oracle on the simulated world: grasps chosen from the objects' true poses.

Checks the simulator, not a learner: with perfect knowledge of where everything is, the grasp primitive must
clear 10-object scenes with a high success rate (goal >= 85 %). For every object in the workspace and 16 jaw
angles the oracle measures the object's width across the jaw and how much free room the fingers have where
they come down, then grasps the best (object, angle) at the object's footprint centre and top height.

    MUJOCO_GL=egl PYTHONPATH=src/grasp_core python benchmarks/oracle_policy.py --scenes 10 --objects 10
Prints the success rate and writes benchmarks/results/oracle.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "grasp_core"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from grasp_core.sim import GraspWorld, SimConfig  # noqa: E402

NUM_ANGLES = 16


def footprint(points_xyz: np.ndarray) -> np.ndarray:
    """Convex hull (K, 2) of the object's points seen from above, world metres."""
    return cv2.convexHull(points_xyz[:, :2].astype(np.float32)).reshape(-1, 2).astype(np.float64)


def finger_zones(centre: np.ndarray, angle: float, half_gap: float, thickness: float, width: float) -> np.ndarray:
    """Sample points (M, 2) covering the two regions where the open fingers come down."""
    axis = np.array([math.cos(angle), math.sin(angle)])
    across = np.array([-axis[1], axis[0]])
    along = np.linspace(half_gap, half_gap + thickness, 3)
    side = np.linspace(-width / 2, width / 2, 5)
    pts = [centre + s * a * axis + c * across for s in (-1, 1) for a in along for c in side]
    return np.array(pts)


def choose_grasp(world: GraspWorld, failures: dict | None = None) -> tuple | None:
    """(x, y, angle, z, key) of the most promising grasp (key = (object, angle index)), or None if none is left.

    failures: {(object name, angle index): count} of earlier failed tries, so a grasp that failed is not
    repeated blindly (a wedge lying on its slope slips out across the slope, but not along its edge)."""
    failures = failures if failures is not None else {}
    states = world.object_states()
    if not states:
        return None
    gripper = world.config.gripper
    hulls = {s.name: footprint(s.world_points()) for s in states}
    tops = {s.name: float(s.world_points()[:, 2].max()) for s in states}
    best, best_score, best_key = None, -np.inf, None
    for s in states:
        hull = hulls[s.name]
        m = cv2.moments(hull.astype(np.float32))
        centre = np.array([m["m10"] / m["m00"], m["m01"] / m["m00"]]) if m["m00"] > 1e-12 else hull.mean(axis=0)
        # Something higher lying over the centre: take that one first.
        covered = any(tops[o.name] > tops[s.name] and
                      cv2.pointPolygonTest(hulls[o.name].astype(np.float32), tuple(map(float, centre)), False) >= 0
                      for o in states if o.name != s.name)
        for k in range(NUM_ANGLES // 2):
            angle = k * math.pi / (NUM_ANGLES // 2)
            axis = np.array([math.cos(angle), math.sin(angle)])
            proj = (hull - centre) @ axis
            width = proj.max() - proj.min()
            if width > gripper.max_opening - 0.02:
                continue
            zones = finger_zones(centre, angle, gripper.max_opening / 2, gripper.finger_thickness,
                                 gripper.finger_width)
            clearance = 0.03
            for o in states:
                if o.name == s.name:
                    continue
                poly = hulls[o.name].astype(np.float32)
                for p in zones:  # signed distance: > 0 inside the other object's footprint
                    clearance = min(clearance, -cv2.pointPolygonTest(poly, (float(p[0]), float(p[1])), True))
            score = clearance - 0.5 * width - (1.0 if covered else 0.0) + 0.1 * tops[s.name] \
                - 0.1 * failures.get((s.name, k), 0)
            if score > best_score:
                best_score, best = score, (float(centre[0]), float(centre[1]), angle, tops[s.name])
                best_key = (s.name, k)
    if best is None:  # everything too wide: grasp the first object across its x axis anyway
        s = states[0]
        best, best_key = (float(s.position[0]), float(s.position[1]), 0.0, tops[s.name]), (s.name, 0)
    return best + (best_key,)


def run(num_scenes: int, num_objects: int, seed: int, robot: str, object_set: str,
        max_attempts_factor: float = 2.0) -> dict:
    world = GraspWorld(SimConfig(robot=robot, num_objects=num_objects, object_set=object_set, seed=seed,
                                 auto_reset=False))
    attempts = successes = cleared = removed = pushed_out = 0
    reasons: dict[str, int] = {}
    start = time.perf_counter()
    try:
        for scene in tqdm(range(num_scenes), desc=f"oracle {num_objects} objects"):
            world.reset(seed=seed * 1000 + scene)
            failures: dict = {}
            for _ in range(int(max_attempts_factor * num_objects)):
                grasp = choose_grasp(world, failures)
                if grasp is None:
                    break
                x, y, angle, z, key = grasp
                if not world.workspace.contains(x, y):
                    x = min(max(x, world.workspace.x_min), world.workspace.x_max - 1e-6)
                    y = min(max(y, world.workspace.y_min), world.workspace.y_max - 1e-6)
                in_scene = len(world.object_states(only_in_workspace=False))
                result = world.execute_grasp(x, y, angle, z=z)
                removed += in_scene - len(world.object_states(only_in_workspace=False))
                attempts += 1
                successes += int(result.grasp_success)
                if not result.grasp_success:
                    failures[key] = failures.get(key, 0) + 1
                reasons[result.failure_reason.name] = reasons.get(result.failure_reason.name, 0) + 1
            cleared += int(not world.objects_in_workspace())
            pushed_out += len(world.object_states(only_in_workspace=False)) - len(world.objects_in_workspace())
    finally:
        world.close()
    wall = time.perf_counter() - start
    return {"robot": robot, "object_set": object_set, "num_objects": num_objects, "scenes": num_scenes,
            "seed": seed, "attempts": attempts, "successes": successes,
            "grasp_success_rate": round(successes / max(attempts, 1), 4), "scenes_cleared": cleared,
            "objects_removed_by_grasps": removed, "objects_outside_workspace_at_end": pushed_out,
            "failure_reasons": reasons, "wall_s": round(wall, 2),
            "attempts_per_minute": round(60 * attempts / wall, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=10, help="scenes to clear")
    parser.add_argument("--objects", type=int, default=10, help="objects per scene")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the world")
    parser.add_argument("--robot", default="ur5", choices=["ur5", "ur3"], help="simulated arm")
    parser.add_argument("--object-set", default="train", choices=["train", "novel"],
                        help="primitive training shapes or the novel set")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "oracle.json"),
                        help="JSON file for the results")
    args = parser.parse_args(argv)
    summary = run(args.scenes, args.objects, args.seed, args.robot, args.object_set)
    print(json.dumps(summary, indent=2))
    print(f"oracle grasp success: {summary['grasp_success_rate']:.1%} over {summary['attempts']} attempts "
          f"({summary['scenes_cleared']}/{summary['scenes']} scenes cleared)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
