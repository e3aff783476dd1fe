"""Pilot: the harness loop (10 objects) with overrides, then the final model greedy on 40 fresh scenes."""

import os
import sys
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")
import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
from grasp_core.dqn import DQNLearner, warm_start  # noqa: E402
from grasp_core.learning import LearningLoop, learning_config  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.replay import ReplayStore  # noqa: E402
from grasp_core.sim import GraspWorld, SimConfig  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402
from grasp_core.checkpoint import save_model  # noqa: E402

name, seed, steps, overrides = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
prof = get_profile("fast")
torch.manual_seed(seed)
qnet = prof.build_q_network()
warm_start(qnet, "runs/exp/results/pretrained/fast/qs_kl.safetensors")
cfg = learning_config(
    "default", [f"exploration.epsilon_decay_steps={steps}"] + overrides, seed=seed, inference=prof.inference
)
ws = VPG_SIM_WORKSPACE.with_resolution(prof.resolution)
world = GraspWorld(SimConfig(num_objects=10, seed=seed, auto_reset=False, workspace=ws))
learner = DQNLearner(qnet, cfg.dqn, ReplayStore(tempfile.mkdtemp()), profile="fast")
loop = LearningLoop(learner, cfg, world, ws, seed=seed)
s = []
for i in range(steps):
    s.append(loop.step().success)
    if (i + 1) % 50 == 0:
        print(name, i + 1, np.mean(s[-50:]), flush=True)
out = f"runs/study/pilot_{name}.safetensors"
save_model(
    out,
    qnet.fcn,
    num_rotations=16,
    zoom=prof.zoom,
    back_rotation=prof.back_rotation,
    pad=prof.pad,
    profile="fast",
)
print("G", np.mean(s), out, flush=True)
