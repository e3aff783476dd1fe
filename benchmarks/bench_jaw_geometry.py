"""What scoring the jaw geometry costs at inference: RotatingQNetwork.predict (the fast profile's options, 16
rotations) on a simulated 10-object heightmap, with and without the geometry maps, alternated in one process
(A B A B ...) so that the machine's drift cancels in the per-pair ratio. Prints and writes the numbers.

    python benchmarks/bench_jaw_geometry.py [--pairs 20] [--out benchmarks/results/jaw_geometry.json]
"""
import argparse
import copy
import json
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.sim import GraspWorld, SimConfig  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402


def time_alternated(networks: dict, color, depth, options, pairs: int) -> tuple[dict, np.ndarray]:
    """Seconds of `predict` for two networks {name: net}, alternated (A B A B ...) after one warm-up each, and the
    per-pair ratios first / second: the machine's drift cancels in a ratio of neighbours."""
    for net in networks.values():  # warm-up: onnxruntime sessions, caches
        net.predict(color, depth, options)
    seconds = {name: [] for name in networks}
    for _ in range(pairs):
        for name, net in networks.items():
            start = time.perf_counter()
            net.predict(color, depth, options)
            seconds[name].append(time.perf_counter() - start)
    first, second = seconds.values()
    return seconds, np.array(first) / np.array(second)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--pairs", type=int, default=20, help="timed (with, without) pairs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default="benchmarks/results/jaw_geometry.json", help="JSON file to write")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile("fast")
    plain = profile.build_q_network().eval()
    with_geometry = copy.deepcopy(plain)
    with_geometry.enable_jaw_geometry(profile.resolution)
    world = GraspWorld(SimConfig(num_objects=10, seed=0, auto_reset=False,
                                 workspace=VPG_SIM_WORKSPACE.with_resolution(profile.resolution)))
    color, depth = world.heightmap()
    world.close()
    seconds, ratios = time_alternated({"jaw_geometry": with_geometry, "plain": plain}, color, depth,
                                      profile.inference, args.pairs)
    result = {"profile": "fast", "threads": args.threads, "pairs": args.pairs, "load_average": os.getloadavg(),
              "median_s": {k: float(np.median(v)) for k, v in seconds.items()},
              "min_s": {k: float(np.min(v)) for k, v in seconds.items()},
              "ratio_median": float(np.median(ratios)), "ratio_min_max": [float(ratios.min()), float(ratios.max())]}
    print(json.dumps(result, indent=1))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
