"""Per-rotation-index Q offsets of trained models (docs/learning.md 1.7's signature), with and without the jaw
geometry's term: on the object pixels of 10 fresh 10-object scenes, the mean Q of each jaw angle (rotations i and
i + 8 averaged) minus the mean over angles; reported as the mean |offset| in logits, per model.

    rotation_offsets.py OUT.json MODEL.safetensors...
"""
import json
import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from grasp_core.checkpoint import load_q_network  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.sim import GraspWorld, SimConfig  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402


def offsets(qnet, scenes, inference):
    per_angle = []
    for color, depth in scenes:
        q = qnet.predict(color, depth, inference)
        half = q.shape[0] // 2
        q = (q[:half] + q[half:]) / 2
        on_object = depth > 0.01
        per_angle.append(q[:, on_object].mean(axis=1))
    mean = np.mean(per_angle, axis=0)
    return float(np.abs(mean - mean.mean()).mean())


def main():
    out, paths = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(2)
    profile = get_profile("fast")
    world = GraspWorld(SimConfig(num_objects=10, seed=0, auto_reset=False,
                                 workspace=VPG_SIM_WORKSPACE.with_resolution(profile.resolution)))
    scenes = []
    for seed in range(9000, 9010):
        world.reset(seed=seed)
        scenes.append(world.heightmap())
    world.close()
    rows = []
    for path in paths:
        qnet, record = load_q_network(path)
        qnet.eval()
        row = {"model": path, "mean_abs_offset": offsets(qnet, scenes, profile.inference)}
        if qnet.fcn.geometry_head is not None:
            with torch.no_grad():
                qnet.fcn.geometry_head.weight.zero_()
            row["without_geometry_term"] = offsets(qnet, scenes, profile.inference)
        rows.append(row)
        print(row, flush=True)
    with open(out, "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
