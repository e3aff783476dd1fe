"""Where greedy grasps are lost: localisation, angle, or clutter, measured in the simulator.

For each of `scenes` fresh scenes (world seed `seed + k`) the greedy grasp of a Q network is executed and
classified:
- `off_object`: nothing stands > 1 cm at the grasp pixel (localisation);
- `far`: on an object but more than `far_mm` from the nearest key point (localisation, the object's edge);
- `angle`: near a key point, failed, and another jaw angle at the same pixel succeeds in the same scene
  (rebuilt from its seed);
- `clutter`: near a key point, failed at every one of the `angles` tried (neighbours, or an ungraspable pose);
- `success`.

    python -m grasp_experiments.diagnosis --checkpoint runs/diag/qs_e8.safetensors --scenes 25 --out x.json

During learning the same categories come from a run's own attempt log (`--runs`), per window of attempts:
`success`, `off_object`, `far`, and `near` (near a key point and failed: angle or clutter, which the log alone
cannot tell apart).

    python -m grasp_experiments.diagnosis --runs runs/exp4/results/runs/ours/objects_10/seed_* --window 50
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

CATEGORIES = ("success", "off_object", "far", "angle", "clutter")
ON_OBJECT_HEIGHT_M = 0.01


def diagnose(qnet, inference, num_objects: int = 10, scenes: int = 25, seed: int = 1000, far_mm: float = 15.0,
             angles: int = 8, progress: bool = True, actions=None) -> dict:
    """Greedy grasps of `qnet` on fresh scenes, classified as in the module docstring; `actions`
    (grasp_core.action_space.ActionSpaceConfig) is the action space they are chosen in (default: anywhere)."""
    from tqdm import tqdm

    from grasp_core.action_space import ActionSpaceConfig, choose_grasp
    from grasp_core.sim import GraspWorld, SimConfig
    from grasp_core.workspace import VPG_SIM_WORKSPACE

    profile_resolution = None
    rows = []
    world = None
    try:
        for k in tqdm(range(scenes), desc="diagnosis", disable=not progress, dynamic_ncols=True):
            if world is None:
                workspace = VPG_SIM_WORKSPACE.with_resolution(_resolution_of(qnet, inference))
                world = GraspWorld(SimConfig(num_objects=num_objects, seed=seed, auto_reset=False,
                                             workspace=workspace))
                profile_resolution = workspace.resolution
            world.reset(seed=seed + k)
            color, depth = world.heightmap()
            q = qnet.predict(color, depth, inference)
            action = choose_grasp(q, depth, profile_resolution, actions or ActionSpaceConfig(), 0.0,
                                  np.random.default_rng(0))
            points = world.ground_truth_keypoints()[0]
            distance_mm = float(np.min(np.hypot(points[:, 0] - action.u, points[:, 1] - action.v))) \
                * profile_resolution * 1000.0 if len(points) else math.inf
            on_object = bool(depth[action.v, action.u] > ON_OBJECT_HEIGHT_M)
            x, y, _ = world.workspace.pixel_to_point(action.u, action.v)
            result = world.execute_grasp(x, y, qnet.angle(action.rotation))
            row = {"scene": k, "u": action.u, "v": action.v, "rotation": action.rotation, "q": round(action.q, 4),
                   "on_object": on_object, "keypoint_mm": round(distance_mm, 1),
                   "success": bool(result.grasp_success), "failure_reason": int(result.failure_reason)}
            if result.grasp_success:
                row["category"] = "success"
            elif not on_object:
                row["category"] = "off_object"
            elif distance_mm > far_mm:
                row["category"] = "far"
            else:
                other = []
                for j in range(1, angles):
                    world.reset(seed=seed + k)
                    angle = qnet.angle(action.rotation) + j * math.pi / angles
                    other.append(bool(world.execute_grasp(x, y, angle).grasp_success))
                row["other_angles_succeeded"] = int(sum(other))
                row["category"] = "angle" if any(other) else "clutter"
            rows.append(row)
    finally:
        if world is not None:
            world.close()
    counts = {c: sum(r["category"] == c for r in rows) for c in CATEGORIES}
    distances = np.array([r["keypoint_mm"] for r in rows])
    return {"scenes": scenes, "objects": num_objects, "counts": counts,
            "success_rate": counts["success"] / max(1, len(rows)),
            "on_object": int(sum(r["on_object"] for r in rows)),
            "keypoint_mm_median": round(float(np.median(distances)), 1),
            "keypoint_mm_p90": round(float(np.percentile(distances, 90)), 1), "rows": rows}


def window_breakdown(attempts: list[dict], window: int = 50, far_mm: float = 15.0) -> list[dict]:
    """Per window of `window` attempts of a learning run's log: how many succeeded, and where the others failed."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    rows = []
    for start in range(0, len(attempts), window):
        counts = dict.fromkeys(("success", "off_object", "far", "near"), 0)
        for a in attempts[start:start + window]:
            if a["success"]:
                counts["success"] += 1
            elif not a["on_object"]:
                counts["off_object"] += 1
            elif a.get("keypoint_mm") is not None and a["keypoint_mm"] > far_mm:
                counts["far"] += 1
            else:
                counts["near"] += 1
        rows.append({"first": start + 1, "last": min(start + window, len(attempts)), **counts})
    return rows


def _resolution_of(qnet, inference) -> float:
    from grasp_core.profiles import PROFILES

    for profile in PROFILES.values():
        if profile.trunk == qnet.fcn.trunk_name:
            return profile.resolution
    raise ValueError(f"no profile uses the {qnet.fcn.trunk_name} trunk")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grasp-diagnosis", description=__doc__.split("\n")[0],
                                     allow_abbrev=False)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="Q_s or DQN checkpoint (.safetensors): greedy grasps on fresh scenes")
    source.add_argument("--runs", nargs="+", help="learning run folders (with attempts.jsonl): their failures per "
                                                  "window, summed over the runs")
    parser.add_argument("--window", type=int, default=50, help="attempts per window (--runs)")
    parser.add_argument("--objects", type=int, default=10, help="objects per scene")
    parser.add_argument("--scenes", type=int, default=25, help="fresh scenes, one greedy grasp each")
    parser.add_argument("--seed", type=int, default=1000, help="world seed of the first scene")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--learning", default="seed",
                        help="learning preset whose action space the grasps are chosen in (grasp_core.learning: "
                             "'seed' = anywhere, 'default' = jaw-symmetric Q inside object footprints)")
    parser.add_argument("--out", help="write the result here as JSON")
    args = parser.parse_args(argv)
    if args.runs:
        return _print_run_breakdown(args.runs, args.window, args.out)
    import torch

    from grasp_core.checkpoint import load_q_network
    from grasp_core.learning import learning_config
    from grasp_core.profiles import get_profile

    torch.set_num_threads(args.threads)
    try:
        actions = learning_config(args.learning).actions
    except ValueError as e:
        print(f"grasp-diagnosis: error: {e}", file=sys.stderr)
        return 2
    try:
        qnet, record = load_q_network(args.checkpoint)
    except (OSError, ValueError) as e:
        print(f"grasp-diagnosis: error: {e}", file=sys.stderr)
        return 2
    inference = get_profile(record["profile"]).inference if record.get("profile") else None
    from grasp_core.rotation import InferenceOptions
    result = diagnose(qnet, inference or InferenceOptions(), args.objects, args.scenes, args.seed,
                      actions=actions)
    result["learning"] = args.learning
    summary = {k: v for k, v in result.items() if k != "rows"}
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


def _print_run_breakdown(run_dirs: list[str], window: int, out: str | None) -> int:
    from grasp_core.attempts import log_paths, read_attempts

    totals: list[dict] = []
    for run_dir in run_dirs:
        path = log_paths(run_dir)[0]
        if not path.is_file():
            print(f"grasp-diagnosis: error: {path} does not exist (not a learning run folder)", file=sys.stderr)
            return 2
        attempts = read_attempts(run_dir)
        for k, row in enumerate(window_breakdown(attempts, window)):
            if k == len(totals):
                totals.append(dict(row))
            else:
                for key in ("success", "off_object", "far", "near"):
                    totals[k][key] += row[key]
    print(f"{len(run_dirs)} run(s), attempts per window summed over them")
    print("attempts   success  off_object  far  near (angle or clutter)")
    for row in totals:
        print(f"{row['first']:>4}-{row['last']:<5} {row['success']:>7}  {row['off_object']:>10}  {row['far']:>3}  "
              f"{row['near']:>4}")
    if out:
        Path(out).write_text(json.dumps({"runs": run_dirs, "window": window, "windows": totals}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
