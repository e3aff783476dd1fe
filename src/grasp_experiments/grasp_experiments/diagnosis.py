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

Over learning, with the angle and clutter told apart: the checkpoints a run kept (`grasp-experiments run
--checkpoint-every N`), each greedy on the same fresh scenes, in the run's own action space; mean success over the
runs, categories summed, and a plot.

    python -m grasp_experiments.diagnosis --checkpoints runs/exp5/ours/runs/ours/objects_10/seed_* --scenes 40 \
        --out greedy.json
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


def diagnose(qnet, inference, num_objects: int = 10, scenes: int = 25, seed: int = 1000, far_mm: float = 15.0,
             angles: int = 8, progress: bool = True, actions=None, object_library: str = "random_objects",
             exact_depth: bool = False) -> dict:
    """Greedy grasps of `qnet` on fresh scenes of the named world (grasp_core.sim.world_config), classified as in
    the module docstring; `actions` (grasp_core.action_space.ActionSpaceConfig) is the action space they are
    chosen in (default: anywhere)."""
    from tqdm import tqdm

    from grasp_core.action_space import ON_OBJECT_HEIGHT_M, ActionSpaceConfig, choose_grasp
    from grasp_core.sim import GraspWorld, world_config
    from grasp_core.workspace import VPG_SIM_WORKSPACE

    profile_resolution = None
    rows = []
    world = None
    try:
        for k in tqdm(range(scenes), desc="diagnosis", disable=not progress, dynamic_ncols=True):
            if world is None:
                workspace = VPG_SIM_WORKSPACE.with_resolution(_resolution_of(qnet, inference))
                world = GraspWorld(world_config(object_library, exact_depth, num_objects=num_objects, seed=seed,
                                                auto_reset=False, workspace=workspace))
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
    source.add_argument("--checkpoints", nargs="+", metavar="RUN",
                        help="learning run folders that kept checkpoints (--checkpoint-every): each checkpoint "
                             "greedy on the same fresh scenes, in the run's action space")
    parser.add_argument("--window", type=int, default=50, help="attempts per window (--runs)")
    parser.add_argument("--objects", type=int, default=10, help="objects per scene")
    parser.add_argument("--scenes", type=int, default=25, help="fresh scenes, one greedy grasp each")
    parser.add_argument("--seed", type=int, default=1000, help="world seed of the first scene")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--learning", default="seed",
                        help="learning preset whose action space the grasps are chosen in (grasp_core.learning: "
                             "'seed' = anywhere, 'default' = jaw-symmetric Q inside object footprints)")
    parser.add_argument("--object-library", default="random_objects", choices=["random_objects", "blocks"],
                        help="the world of --checkpoint's scenes (--checkpoints use each run's own)")
    parser.add_argument("--exact-depth", action="store_true", help="--checkpoint's scenes with exact depth")
    parser.add_argument("--out", help="write the result here as JSON")
    args = parser.parse_args(argv)
    if args.runs:
        return _print_run_breakdown(args.runs, args.window, args.out)
    import torch

    torch.set_num_threads(args.threads)
    if args.checkpoints:
        try:
            return _greedy_over_learning(args.checkpoints, args.objects, args.scenes, args.seed, args.out)
        except ValueError as e:
            print(f"grasp-diagnosis: error: {e}", file=sys.stderr)
            return 2

    from grasp_core.checkpoint import load_q_network
    from grasp_core.learning import learning_config
    from grasp_core.profiles import get_profile

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
                      actions=actions, object_library=args.object_library, exact_depth=args.exact_depth)
    result["learning"] = args.learning
    summary = {k: v for k, v in result.items() if k != "rows"}
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


def greedy_over_learning(run_dirs: list[str | Path], num_objects: int = 10, scenes: int = 40, seed: int = 1000
                         ) -> dict:
    """Every kept checkpoint of every run, greedy on the same `scenes` fresh scenes (diagnose), in the run's own
    action space: {"attempts": [...], "runs": {run: [result summary per checkpoint]}, "mean"/"std" success}."""
    from grasp_core.checkpoint import load_q_network
    from grasp_core.profiles import get_profile
    from grasp_core.rotation import InferenceOptions

    from grasp_experiments.runner import checkpoints_of, run_learning_settings

    per_run = {}
    for run_dir in run_dirs:
        kept = checkpoints_of(run_dir)
        if not kept:
            raise ValueError(f"{run_dir} kept no checkpoints: run it with --checkpoint-every N")
        actions = run_learning_settings(run_dir).actions
        spec = json.loads((Path(run_dir) / "spec.json").read_text())["spec"]
        # runs made before the object libraries were in the blocks world with exact depth
        world = {"object_library": spec.get("object_library", "blocks"), "exact_depth": spec.get("exact_depth", True)}
        per_run[str(run_dir)] = {}
        for attempts, path in kept.items():
            qnet, record = load_q_network(path)
            inference = get_profile(record["profile"]).inference if record.get("profile") else InferenceOptions()
            result = diagnose(qnet, inference, num_objects, scenes, seed, progress=False, actions=actions, **world)
            per_run[str(run_dir)][attempts] = {k: v for k, v in result.items() if k != "rows"}
            print(f"{run_dir} after {attempts} attempts: greedy success {result['success_rate']:.3f} "
                  f"{result['counts']}", flush=True)
    common = sorted(set.intersection(*(set(r) for r in per_run.values())))
    rates = np.array([[per_run[run][a]["success_rate"] for a in common] for run in per_run])
    counts = {a: {c: sum(per_run[run][a]["counts"][c] for run in per_run) for c in CATEGORIES} for a in common}
    return {"scenes": scenes, "objects": num_objects, "seed": seed, "attempts": common,
            "mean": rates.mean(0).round(4).tolist(), "std": rates.std(0).round(4).tolist(), "counts": counts,
            "runs": {run: {str(a): r for a, r in results.items()} for run, results in per_run.items()}}


def _greedy_over_learning(run_dirs: list[str], num_objects: int, scenes: int, seed: int, out: str | None) -> int:
    result = greedy_over_learning(run_dirs, num_objects, scenes, seed)
    print(f"{len(run_dirs)} run(s), {scenes} fresh scenes each, greedy; categories summed over the runs")
    print("attempts  success (mean +- std)  " + "  ".join(CATEGORIES))
    for k, attempts in enumerate(result["attempts"]):
        c = result["counts"][attempts]
        print(f"{attempts:>8}  {result['mean'][k]:.3f} +- {result['std'][k]:.3f}       "
              + "  ".join(f"{c[name]:>{len(name)}}" for name in CATEGORIES))
    if out:
        Path(out).write_text(json.dumps(result, indent=1) + "\n")
        _plot_greedy_over_learning(result, Path(out).with_suffix(".png"))
    return 0


def _plot_greedy_over_learning(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, mean, std = np.array(result["attempts"]), np.array(result["mean"]), np.array(result["std"])
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=120)
    for run in result["runs"].values():
        ax.plot(x, [run[str(a)]["success_rate"] for a in result["attempts"]], color="gray", lw=0.8, alpha=0.5)
    ax.plot(x, mean, "o-", color="tab:blue", lw=2, label=f"mean of {len(result['runs'])} runs (gray: each run)")
    ax.fill_between(x, mean - std, mean + std, color="tab:blue", alpha=0.15, label="+- 1 std")
    ax.set_xlabel("learning attempts before the checkpoint (0 = the warm start)")
    ax.set_ylabel(f"greedy success on {result['scenes']} fresh scenes")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


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
