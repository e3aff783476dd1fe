"""Greedy success of Q_s under action masks (study for issue 10)."""

import os
import sys
import json

os.environ.setdefault("MUJOCO_GL", "egl")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import cv2  # noqa: E402
from grasp_core.checkpoint import load_q_network  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.exploration import select_action  # noqa: E402
from grasp_core.sim import GraspWorld, SimConfig  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402

torch.set_num_threads(1)
ckpt, scenes, seed0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
qnet, rec = load_q_network(ckpt)
prof = get_profile(rec["profile"])
ws = VPG_SIM_WORKSPACE.with_resolution(prof.resolution)
world = GraspWorld(SimConfig(num_objects=10, seed=seed0, auto_reset=False, workspace=ws))


def masks(depth):
    m = depth > 0.01
    out = {"none": None, "h1cm": m}
    dist = cv2.distanceTransform(np.pad(m, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    for k in (3,):
        out[f"erode{k}"] = cv2.erode(m.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)) > 0
    for k in (3.5, 4, 4.5, 5):
        out[f"dist{k}"] = dist >= min(k, dist.max())
    return out


res = {}
for k in range(scenes):
    world.reset(seed=seed0 + k)
    color, depth = world.heightmap()
    q = qnet.predict(color, depth, prof.inference)
    R = q.shape[0]
    qsym = 0.5 * (q + np.roll(q, R // 2, axis=0))
    for qname, qq in (("sym", qsym),):
        for mname, m in masks(depth).items():
            if m is not None and not m.any():
                m = depth > 0.01
            a = select_action(qq, 0.0, np.random.default_rng(0), valid_mask=m)
            world.reset(seed=seed0 + k)
            x, y, _ = world.workspace.pixel_to_point(a.u, a.v)
            r = world.execute_grasp(x, y, qnet.angle(a.rotation))
            res.setdefault(f"{qname}/{mname}", []).append(bool(r.grasp_success))
    print(k, {n: sum(v) for n, v in res.items()}, flush=True)
print(json.dumps({n: sum(v) / len(v) for n, v in res.items()}, indent=1))
