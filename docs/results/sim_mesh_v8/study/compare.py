"""Issue 22's numbers from the raw runs of run_all.sh and run_phase2.sh (random_objects, D435-like depth): per
experiment folder, method and object count, G over attempt windows per seed (mean, std, 95 % interval), and ours
minus vanilla seed by seed. A seed seeds the world, so ours and vanilla start from the same first scene.

    scripts/in_env.sh python docs/results/sim_mesh_v8/study/compare.py runs/exp22 \
        > docs/results/sim_mesh_v8/study/compare.json
"""
import json
import sys
from pathlib import Path

import numpy as np

from grasp_core.attempts import read_attempts
from grasp_core.metrics import mean_ci95

WINDOWS = {"G@50": (0, 50), "G@100": (0, 100), "G@200": (100, 200), "G@300": (200, 300), "G@500": (400, 500)}


def summary(values: list[float]) -> dict:
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return {"mean": round(float(v.mean()), 4), "n": len(v), "per_seed": [round(float(x), 3) for x in v]}
    _, lower, upper = mean_ci95(v[:, None])
    return {"mean": round(float(v.mean()), 4), "std": round(float(v.std(ddof=1)), 4), "n": len(v),
            "ci95": [round(float(lower[0]), 4), round(float(upper[0]), 4)], "per_seed": [round(float(x), 3) for x in v]}


def finished_runs(folder: Path) -> dict[tuple[str, int], dict[int, list[dict]]]:
    cells: dict[tuple[str, int], dict[int, list[dict]]] = {}
    for done in sorted(folder.glob("runs/*/objects_*/seed_*/done.json")):
        method, objects, seed = done.parts[-4], int(done.parts[-3].split("_")[1]), int(done.parts[-2].split("_")[1])
        cells.setdefault((method, objects), {})[seed] = read_attempts(done.parent)
    return cells


def main() -> None:
    root = Path(sys.argv[1])
    report = {}
    for folder in sorted(p for p in root.iterdir() if (p / "runs").is_dir()):
        cells = finished_runs(folder)
        out = report[folder.name] = {"cells": {}, "ours_minus_vanilla": {}}
        for (method, objects), seeds in sorted(cells.items()):
            steps = min(len(rows) for rows in seeds.values())
            entry = out["cells"][f"{method}/{objects}"] = {"seeds": sorted(seeds), "attempts": steps}
            for name, (lo, hi) in WINDOWS.items():
                if hi <= steps:
                    entry[name] = summary([np.mean([r["success"] for r in seeds[s][lo:hi]]) for s in sorted(seeds)])
            entry["all"] = summary([np.mean([r["success"] for r in seeds[s]]) for s in sorted(seeds)])
        for (method, objects), seeds in sorted(cells.items()):
            if method != "ours" or ("vanilla", objects) not in cells:
                continue
            other = cells[("vanilla", objects)]
            common = sorted(set(seeds) & set(other))
            steps = min(len(r) for r in [*(seeds[s] for s in common), *(other[s] for s in common)])
            diff = {}
            for name, (lo, hi) in WINDOWS.items():
                if hi <= steps:
                    d = [np.mean([r["success"] for r in seeds[s][lo:hi]]) - np.mean([r["success"] for r in
                                                                                      other[s][lo:hi]])
                         for s in common]
                    diff[name] = {**summary(d), "ours_higher_in": int(sum(x > 0 for x in d))}
            out["ours_minus_vanilla"][str(objects)] = diff
    json.dump(report, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
