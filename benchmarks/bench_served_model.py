"""What the speed table's untrained network leaves out: RotatingQNetwork.predict (the fast profile's options, 16
rotations) of a model as the default learning preset serves it (jaw-geometry maps scored, the head pooled over the
angles) against the profile's plain untrained network, alternated in one process (A B A B ...) so that the
machine's drift cancels in the per-pair ratio. The benchmarks of benchmarks/speed_table.py time the plain network.

    PYTHONPATH=src/grasp_core python benchmarks/bench_served_model.py --model RUN/model.safetensors [--pairs 20]
Prints the numbers and writes benchmarks/results/served_model.json.
"""
import argparse
import json
import os

import numpy as np
import torch
from bench_jaw_geometry import time_alternated  # benchmarks/ is on sys.path when this runs as a script

from grasp_core.checkpoint import load_q_network
from grasp_core.profiles import get_profile


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--model", required=True, help="a trained fast-profile model (e.g. a harness run's)")
    parser.add_argument("--pairs", type=int, default=20, help="timed (served, plain) pairs")
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads")
    parser.add_argument("--out", default="benchmarks/results/served_model.json", help="JSON file to write")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile("fast")
    served, _ = load_q_network(args.model)
    served.eval()
    if served.fcn.jaw_geometry is None:
        raise SystemExit(f"{args.model} scores no jaw geometry: give a model trained with the default preset")
    plain = profile.build_q_network().eval()
    rng = np.random.default_rng(0)
    color = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    depth = (rng.random((112, 112)) * 0.05).astype(np.float32)
    load_before = os.getloadavg()
    times, ratios = time_alternated({"served": served, "plain": plain}, color, depth, profile.inference, args.pairs)
    result = {"model": args.model, "angle_source": served.angle_source, "threads": args.threads,
              "pairs": args.pairs, "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "median_s": {k: float(np.median(v)) for k, v in times.items()},
              "ratio_median": float(np.median(ratios)), "ratio_min_max": [float(ratios.min()), float(ratios.max())]}
    print(json.dumps(result, indent=1))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
