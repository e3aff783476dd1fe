"""Does the head's scale crowd out the jaw geometry in choosing the pixel? Trained models (angle_source
"jaw_geometry") greedy on the same fresh scenes with Q = scale * (head's pooled term) + geometry term, for a few
scales (1 = the model as trained). Q is linear in both terms, so they are taken apart by zeroing the geometry head.

    head_scale.py OUT.json MODEL.safetensors...
"""
import json
import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from grasp_core.action_space import choose_grasp  # noqa: E402
from grasp_core.checkpoint import load_q_network  # noqa: E402
from grasp_core.learning import learning_config  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.sim import GraspWorld, SimConfig  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402
from q_terms import head_and_geometry_terms  # noqa: E402  (this folder)

SCENES = range(7000, 7040)
SCALES = (1.0, 0.5, 0.25, 0.1, 0.0)


def main():
    out, paths = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    profile = get_profile("fast")
    actions = learning_config("default").actions
    world = GraspWorld(SimConfig(num_objects=10, seed=0, auto_reset=False,
                                 workspace=VPG_SIM_WORKSPACE.with_resolution(profile.resolution)))
    rng = np.random.default_rng(0)
    rows = []
    for path in paths:
        qnet, _ = load_q_network(path)
        qnet.eval()
        successes = {scale: [] for scale in SCALES}
        for seed in SCENES:
            world.reset(seed=seed)
            color, depth = world.heightmap()
            q_head, q_geometry = head_and_geometry_terms(qnet, color, depth, profile.inference)
            for scale in SCALES:
                a = choose_grasp(scale * q_head + q_geometry, depth, profile.resolution, actions, 0.0, rng)
                world.reset(seed=seed)
                x, y, _ = world.workspace.pixel_to_point(a.u, a.v)
                successes[scale].append(bool(world.execute_grasp(x, y, qnet.angle(a.rotation)).grasp_success))
        row = {"model": path, **{str(k): float(np.mean(s)) for k, s in successes.items()}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    world.close()
    summary = {str(k): [float(np.mean([r[str(k)] for r in rows])), float(np.std([r[str(k)] for r in rows]))]
               for k in SCALES}
    print("mean, std over models:", summary)
    with open(out, "w") as f:
        json.dump({"scenes": [SCENES.start, SCENES.stop], "summary": summary, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
