"""Greedy first-grasp success of several models on the same fresh 10-object scenes (default action space)."""

import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from grasp_core.checkpoint import load_q_network  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.action_space import choose_grasp  # noqa: E402
from grasp_core.learning import learning_config  # noqa: E402
from grasp_core.sim import GraspWorld, SimConfig  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402

torch.set_num_threads(1)
scenes, seed0, paths = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
actions = learning_config("default").actions
prof = get_profile("fast")
ws = VPG_SIM_WORKSPACE.with_resolution(prof.resolution)
world = GraspWorld(SimConfig(num_objects=10, seed=seed0, auto_reset=False, workspace=ws))
nets = [load_q_network(p)[0].eval() for p in paths]
wins = np.zeros((len(paths), scenes), bool)
for k in range(scenes):
    world.reset(seed=seed0 + k)
    color, depth = world.heightmap()
    for i, net in enumerate(nets):
        a = choose_grasp(
            net.predict(color, depth, prof.inference),
            depth,
            ws.resolution,
            actions,
            0.0,
            np.random.default_rng(0),
        )
        world.reset(seed=seed0 + k)
        x, y, _ = ws.pixel_to_point(a.u, a.v)
        wins[i, k] = world.execute_grasp(x, y, net.angle(a.rotation)).grasp_success
for p, w in zip(paths, wins):
    print(f"{w.mean():.3f} {p}")
