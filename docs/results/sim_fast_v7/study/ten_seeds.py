"""Ours, vanilla and MoG at 10 objects over 10 seeds (run_all.sh's seeds 0-4 and run_more_seeds.sh's 5-9): G over
attempts 1-100 and 101-200, and ours minus each other method seed by seed. A seed seeds the world, so every method
starts from the same first scene; later scenes drift apart with the policy's choices, so the pairing is loose.

    cd docs/results/sim_fast_v7/study
    ../../../../scripts/in_env.sh python ten_seeds.py ../../../../runs/exp13/results > ten_seeds.json
"""
import json
import sys
from pathlib import Path

import numpy as np

from grasp_core.attempts import read_attempts
from grasp_core.metrics import mean_ci95

METHODS = ("ours", "vanilla", "mog")
WINDOWS = {"G@100": (0, 100), "G@200": (100, 200), "all_250": (0, 250)}


def runs(results: Path, method: str) -> dict[int, list[dict]]:
    out = {}
    for done in sorted((results / "runs" / method / "objects_10").glob("seed_*/done.json")):
        rows = read_attempts(done.parent)
        if len(rows) < 250:
            raise SystemExit(f"{done.parent} has {len(rows)} attempts, expected 250")
        out[int(done.parent.name.split("_")[1])] = rows
    return out


def window(rows: list[dict], name: str) -> float:
    lo, hi = WINDOWS[name]
    return float(np.mean([r["success"] for r in rows[lo:hi]]))


def summary(values: list[float]) -> dict:
    v = np.asarray(values)
    _, lower, upper = mean_ci95(v[:, None])
    return {"mean": round(float(v.mean()), 4), "std": round(float(v.std(ddof=1)), 4), "n": len(v),
            "ci95": [round(float(lower[0]), 4), round(float(upper[0]), 4)]}


def main() -> None:
    results = Path(sys.argv[1])
    per_method = {m: runs(results, m) for m in METHODS}
    seeds = sorted(set.intersection(*(set(r) for r in per_method.values())))
    report = {"seeds": seeds, "methods": {}, "ours_minus": {}}
    for m in METHODS:
        report["methods"][m] = {}
        for name in WINDOWS:
            values = [window(per_method[m][s], name) for s in seeds]
            report["methods"][m][name] = {**summary(values), "per_seed": [round(x, 3) for x in values]}
        greedy_101_200 = [r for s in seeds for r in per_method[m][s][100:200] if not r["explored"]]
        report["methods"][m]["greedy_failures_101_200"] = [sum(1 - r["success"] for r in greedy_101_200),
                                                          len(greedy_101_200)]
    for other in METHODS[1:]:
        report["ours_minus"][other] = {}
        for name in ("G@100", "G@200"):
            diffs = [window(per_method["ours"][s], name) - window(per_method[other][s], name) for s in seeds]
            report["ours_minus"][other][name] = {**summary(diffs), "ours_higher_in": sum(d > 0 for d in diffs),
                                                 "ties": sum(d == 0 for d in diffs)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
