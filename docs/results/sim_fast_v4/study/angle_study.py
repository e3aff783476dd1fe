"""Where the angle is lost: at each greedy grasp pixel of a model, every one of the 8 jaw angles on the same fresh
scene, with the object's width along the closing direction read off the depth heightmap (the footprint run through
the pixel). Prints how often the model's own angle, the best angle and an average angle succeed, and success by
width. Usage: angle_study.py SCENES SEED OUT.json MODEL.safetensors"""

import json
import math
import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from grasp_core.action_space import ON_OBJECT_HEIGHT_M, choose_grasp  # noqa: E402
from grasp_core.checkpoint import load_q_network  # noqa: E402
from grasp_core.learning import learning_config  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.sim import GraspWorld, SimConfig  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402


def run_width(depth, ws, x, y, angle, step=0.002, limit=0.2):
    """Metres of continuous footprint (depth > 1 cm) through (x, y) along (cos angle, sin angle)."""
    total = 0.0
    for sign in (1, -1):
        d = step
        while d < limit:
            u, v = ws.point_to_pixel(x + sign * d * math.cos(angle), y + sign * d * math.sin(angle))
            if not (0 <= u < depth.shape[1] and 0 <= v < depth.shape[0]) or depth[v, u] <= ON_OBJECT_HEIGHT_M:
                break
            d += step
        total += d
    return total


torch.set_num_threads(1)
scenes, seed0, out, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
actions = learning_config("default").actions
prof = get_profile("fast")
ws = VPG_SIM_WORKSPACE.with_resolution(prof.resolution)
world = GraspWorld(SimConfig(num_objects=10, seed=seed0, auto_reset=False, workspace=ws))
net = load_q_network(path)[0].eval()
rows = []
for k in range(scenes):
    world.reset(seed=seed0 + k)
    color, depth = world.heightmap()
    q = net.predict(color, depth, prof.inference)
    a = choose_grasp(q, depth, ws.resolution, actions, 0.0, np.random.default_rng(0))
    x, y, _ = ws.pixel_to_point(a.u, a.v)
    own = net.angle(a.rotation) % math.pi
    sym = (q[:8] + q[8:]) / 2
    angles = []
    for j in range(8):
        angle = j * math.pi / 8
        world.reset(seed=seed0 + k)
        ok = bool(world.execute_grasp(x, y, angle).grasp_success)
        angles.append({"angle": round(angle, 4), "success": ok, "q": round(float(sym[j % 8, a.v, a.u]), 3),
                       "width_closing_mm": round(1000 * run_width(depth, ws, x, y, angle), 1),
                       "width_across_mm": round(1000 * run_width(depth, ws, x, y, angle + math.pi / 2), 1)})
    own_j = int(round(own / (math.pi / 8))) % 8
    rows.append({"scene": k, "u": a.u, "v": a.v, "own": own_j, "angles": angles})
    print(k, own_j, "".join("x" if r["success"] else "." for r in angles), flush=True)
world.close()
own = np.array([r["angles"][r["own"]]["success"] for r in rows])
best = np.array([any(x["success"] for x in r["angles"]) for r in rows])
mean = np.array([np.mean([x["success"] for x in r["angles"]]) for r in rows])
# q-rank of the best: how well Q orders the angles at this pixel
summary = {"model": path, "scenes": scenes, "own_angle": float(own.mean()), "best_angle": float(best.mean()),
           "mean_angle": float(mean.mean())}
w = np.array([x["width_closing_mm"] for r in rows for x in r["angles"]])
s = np.array([x["success"] for r in rows for x in r["angles"]])
for lo, hi in ((0, 40), (40, 60), (60, 80), (80, 100), (100, 1000)):
    m = (w >= lo) & (w < hi)
    summary[f"success_width_{lo}_{hi}mm"] = [int(m.sum()), round(float(s[m].mean()), 3) if m.any() else None]
print(json.dumps(summary, indent=1))
with open(out, "w") as f:
    json.dump({"summary": summary, "rows": rows}, f, indent=1)
