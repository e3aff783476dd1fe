#!/usr/bin/env python3
"""How honest the simulated world's physics is: exploding contacts, throws, settling, objects left outside.

For each object library, scenes of `--objects` objects from world seeds 9000, 9001, ... are dropped and settled;
from each settled scene, `--grasps` grasps are run at random pixels on an object (depth above 1 cm) at random
angles, each from the same freshly rebuilt scene. Per grasp it records GraspWorld.grasp_physics (peak object
speed, peak jaw opening, farthest displacement, NaN, objects up in the air but not between the fingers) and the
outcome; per scene the settling (simulated seconds, still or not) and objects that came to rest outside the
workspace. Intervals are 95 % bootstrap intervals resampled by scene.

Prints a table and writes it as JSON:
    scripts/in_env.sh python benchmarks/world_physics.py --scenes 150 --out benchmarks/results/world_physics.json
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from grasp_core.sim import GraspWorld, SimConfig
from grasp_core.sim.objects import OBJECT_LIBRARIES

ON_OBJECT_M = 0.01


def bootstrap_ci(per_scene: list[list[float]], rng: np.random.Generator, n: int = 2000) -> tuple[float, float]:
    """95 % interval of the pooled mean, resampling scenes."""
    scenes = [np.asarray(s, float) for s in per_scene if len(s)]
    if not scenes:
        return (float("nan"), float("nan"))
    means = []
    for _ in range(n):
        pick = rng.integers(0, len(scenes), len(scenes))
        pooled = np.concatenate([scenes[k] for k in pick])
        means.append(pooled.mean())
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def probe(library: str, scenes: int, grasps: int, num_objects: int, first_seed: int, exact_depth: bool,
          physics: dict) -> dict:
    rng = np.random.default_rng(0)
    config = SimConfig(num_objects=num_objects, seed=first_seed, object_library=library, auto_reset=False)
    config = replace(config, physics=replace(config.physics, **physics))
    if exact_depth:
        config = replace(config, camera=replace(config.camera, depth_noise=None))
    world = GraspWorld(config)
    ws = world.workspace
    rows, settle_rows = [], []
    grasp_seconds, reset_seconds = [], []
    try:
        for k in tqdm(range(scenes), desc=f"{library}: scenes", unit="scene"):
            seed = first_seed + k
            for g in range(grasps):
                started = time.perf_counter()
                world.reset(seed=seed)
                reset_seconds.append(time.perf_counter() - started)
                if g == 0:
                    settle_rows.append({"scene": seed, "seconds": world.settling.seconds, "still": world.settling.still,
                                        "outside": num_objects - len(world.objects_in_workspace())})
                _, depth = world.heightmap()
                vs, us = np.nonzero(depth > ON_OBJECT_M)
                if not len(us):
                    continue
                pick = rng.integers(len(us))
                x, y, _ = ws.pixel_to_point(int(us[pick]), int(vs[pick]))
                angle = float(rng.uniform(0, np.pi))
                started = time.perf_counter()
                result = world.execute_grasp(float(x), float(y), angle)
                grasp_seconds.append(time.perf_counter() - started)
                phys = world.grasp_physics
                thrown_success = (not result.grasp_success and phys.lifted_not_held > 0
                                  and result.jaw_opening > world.config.gripper.closed_threshold)
                rows.append({"scene": seed, "grasp": [float(x), float(y), angle], "success": result.grasp_success,
                             "reason": result.failure_reason.name,
                             "exploded": phys.exploded(), "max_speed": phys.max_object_speed,
                             "max_jaw": phys.max_jaw_opening, "max_displacement": phys.max_displacement,
                             "lifted_not_held": phys.lifted_not_held, "thrown_success": thrown_success,
                             "refinements": phys.refinements})
    finally:
        world.close()
    by_scene = {}
    for r in rows:
        by_scene.setdefault(r["scene"], []).append(r)
    per_scene = lambda key: [[float(bool(r[key])) for r in rs] for rs in by_scene.values()]  # noqa: E731
    return {
        "library": library, "physics": physics, "scenes": scenes, "grasps": len(rows), "objects": num_objects,
        "exact_depth": exact_depth,
        "success": float(np.mean([r["success"] for r in rows])),
        "success_ci95": bootstrap_ci(per_scene("success"), rng),
        "exploded": float(np.mean([bool(r["exploded"]) for r in rows])),
        "exploded_ci95": bootstrap_ci(per_scene("exploded"), rng),
        "refined": int(sum(r["refinements"] > 0 for r in rows)),
        "exploded_examples": [(r["scene"], r["grasp"], r["exploded"]) for r in rows if r["exploded"]][:20],
        "lifted_not_held": int(sum(r["lifted_not_held"] > 0 for r in rows)),
        "thrown_would_have_counted": int(sum(r["thrown_success"] for r in rows)),
        "settle_capped": float(np.mean([not s["still"] for s in settle_rows])),
        "settle_seconds_p50_p95": [float(np.percentile([s["seconds"] for s in settle_rows], q)) for q in (50, 95)],
        "scenes_with_objects_outside": int(sum(s["outside"] > 0 for s in settle_rows)),
        "objects_outside": int(sum(s["outside"] for s in settle_rows)),
        "grasp_seconds_mean_p95": [float(np.mean(grasp_seconds)), float(np.percentile(grasp_seconds, 95))],
        "reset_seconds_mean": float(np.mean(reset_seconds)),
        "reasons": {k: sum(r["reason"] == k for r in rows) for k in sorted({r["reason"] for r in rows})},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--libraries", nargs="+", default=list(OBJECT_LIBRARIES), choices=OBJECT_LIBRARIES,
                        help="object libraries to probe")
    parser.add_argument("--scenes", type=int, default=150, help="scenes per library (world seeds from --first-seed)")
    parser.add_argument("--grasps", type=int, default=4, help="grasps per scene, each from the same settled scene")
    parser.add_argument("--objects", type=int, default=10, help="objects per scene")
    parser.add_argument("--first-seed", type=int, default=9000, help="world seed of the first scene")
    parser.add_argument("--exact-depth", action="store_true", help="the camera without its D435 noise model")
    parser.add_argument("--physics", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="PhysicsParams overrides, e.g. noslip_iterations=0 'refine_steps=[1]'")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/world_physics.json"),
                        help="JSON file for the results")
    args = parser.parse_args()
    physics = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.physics)}
    physics = {k: tuple(v) if isinstance(v, list) else v for k, v in physics.items()}
    results = [probe(lib, args.scenes, args.grasps, args.objects, args.first_seed, args.exact_depth, physics)
               for lib in args.libraries]
    print(f"{'library':15s} {'grasps':>6s} {'success':>16s} {'exploded':>18s} {'throws':>6s} "
          f"{'settle cap':>10s} {'outside':>7s} {'grasp s':>12s}")
    for r in results:
        print(f"{r['library']:15s} {r['grasps']:6d} {r['success']:.3f} ({r['success_ci95'][0]:.2f}-"
              f"{r['success_ci95'][1]:.2f}) {r['exploded']:.4f} ({r['exploded_ci95'][0]:.3f}-"
              f"{r['exploded_ci95'][1]:.3f}) {r['thrown_would_have_counted']:6d} {r['settle_capped']:10.3f} "
              f"{r['objects_outside']:7d} {r['grasp_seconds_mean_p95'][0]:.2f}/{r['grasp_seconds_mean_p95'][1]:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": "benchmarks/world_physics.py " + " ".join(os.sys.argv[1:]),
              "load_average": os.getloadavg(), "results": results}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
