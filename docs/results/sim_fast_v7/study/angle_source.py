"""Where should the jaw angle come from? Trained models' Q split into the head's term and the jaw geometry's term
(Q is linear in both), each model greedy on the same fresh scenes three ways:
- `full`: Q as the model has it (the head's term differs between angles, as in docs/learning.md 1.7);
- `pooled`: the head's term averaged over all rotations at each pixel (no angle from it), plus the geometry's term;
- `full_pixel_geometry_angle`: the pixel of `full`, the angle that the geometry's term alone prefers there.

    angle_source.py OUT.json MODEL.safetensors...
"""
import json
import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from grasp_core.action_space import choose_grasp, symmetric_q  # noqa: E402
from grasp_core.checkpoint import load_q_network  # noqa: E402
from grasp_core.learning import learning_config  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.sim import GraspWorld, SimConfig  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402
from q_terms import head_and_geometry_terms  # noqa: E402  (this folder)

SCENES = range(7000, 7040)


def main():
    out, paths = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    profile = get_profile("fast")
    actions = learning_config("default").actions  # the runs' action space
    world = GraspWorld(SimConfig(num_objects=10, seed=0, auto_reset=False,
                                 workspace=VPG_SIM_WORKSPACE.with_resolution(profile.resolution)))
    rng = np.random.default_rng(0)
    rows = []
    for path in paths:
        qnet, _ = load_q_network(path)
        qnet.eval()
        successes = {"full": [], "pooled": [], "full_pixel_geometry_angle": []}
        angle_spread = {"head": [], "geometry": []}
        for seed in SCENES:
            world.reset(seed=seed)
            color, depth = world.heightmap()
            q_head, q_geometry = head_and_geometry_terms(qnet, color, depth, profile.inference)
            q_full = q_head + q_geometry
            pooled = q_head.mean(axis=0, keepdims=True) + q_geometry
            for name, q in (("full", q_full), ("pooled", pooled)):
                a = choose_grasp(q, depth, profile.resolution, actions, 0.0, rng)
                world.reset(seed=seed)
                x, y, _ = world.workspace.pixel_to_point(a.u, a.v)
                successes[name].append(bool(world.execute_grasp(x, y, qnet.angle(a.rotation)).grasp_success))
                if name == "full":
                    u, v = a.u, a.v
            geometry_angles = symmetric_q(q_geometry)[:, v, u]
            half = symmetric_q(q_head)[:, v, u]
            angle_spread["head"].append(float(half.std()))
            angle_spread["geometry"].append(float(geometry_angles.std()))
            world.reset(seed=seed)
            x, y, _ = world.workspace.pixel_to_point(u, v)
            rotation = int(np.argmax(geometry_angles))
            successes["full_pixel_geometry_angle"].append(
                bool(world.execute_grasp(x, y, qnet.angle(rotation)).grasp_success))
        row = {"model": path, **{k: float(np.mean(s)) for k, s in successes.items()},
               "angle_std_at_pixel": {k: round(float(np.mean(s)), 3) for k, s in angle_spread.items()}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    world.close()
    summary = {k: [float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))]
               for k in ("full", "pooled", "full_pixel_geometry_angle")}
    print("mean, std over models:", summary)
    with open(out, "w") as f:
        json.dump({"scenes": [SCENES.start, SCENES.stop], "summary": summary, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
