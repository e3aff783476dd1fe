"""learner_node in-process: an update that breaks the network (NaN weights) is undone by going back to the newest
checkpoint, the experience is left out, the others are trained again, and no non-finite model is ever saved."""
import time
import uuid

import numpy as np
import pytest
import torch

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_interfaces.msg import GraspExperience  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from grasp_core import checkpoint  # noqa: E402
from grasp_core.action_space import ActionSpaceConfig  # noqa: E402
from grasp_core.dqn import DQNLearner  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402
from grasp_learning.learner_node import LearnerNode  # noqa: E402
from grasp_ros.conversions import heightmap_to_msg  # noqa: E402

WS = VPG_SIM_WORKSPACE.with_resolution(0.007)
POISON_ATTEMPT = 5


def experience(attempt):
    rng = np.random.default_rng(attempt)
    color = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    depth = rng.uniform(0, 0.05, (64, 64)).astype(np.float32)
    return GraspExperience(id=str(uuid.uuid4()), source="/t", attempt=attempt,
                           heightmap=heightmap_to_msg(color, depth, WS),
                           rotation_index=attempt % 4, num_rotations=4, pixel_x=5, pixel_y=6,
                           reward=float(attempt % 2), terminal=True)


def test_a_diverging_update_is_undone_from_the_last_checkpoint(tmp_path, monkeypatch):
    original = DQNLearner.update

    def update(self, exp):
        stats = original(self, exp)
        if exp.attempt == POISON_ATTEMPT:
            with torch.no_grad():
                next(self.qnet.parameters()).fill_(float("nan"))  # what a divergence leaves behind
        return stats
    monkeypatch.setattr(DQNLearner, "update", update)

    context = rclpy.Context()
    rclpy.init(context=context)
    node = None
    try:
        node = LearnerNode(context=context, parameter_overrides=[
            Parameter("profile", value="tiny"), Parameter("replay_dir", value=str(tmp_path / "replay")),
            Parameter("checkpoint_dir", value=str(tmp_path / "ck")), Parameter("learning", value="seed"),
            Parameter("learning_overrides", value="publish_every=3 dqn.replay_steps=0 actions.object_mask=true "
                                                  "actions.edge_margin_m=0.012")])
        for attempt in range(8):
            node._on_experience(experience(attempt))  # what the subscription does
        # `trained` counts an experience when its update starts: wait for the updates too (a loaded machine).
        deadline = time.monotonic() + 180
        while not (node.trained >= 8 and node.learner.step >= 7) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert node.trained == 8 and node._skip == {POISON_ATTEMPT}
        assert node._weights_finite()
        # Back to v1 (3 updates) and #3, #4, #6, #7 trained again without #5: 3 + 4 = 7 updates.
        assert node.learner.step == 7
        node.shutdown()
        for entry in node.catalog.entries():
            state, record = checkpoint.load_model(entry.model_path)
            assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()), entry
            # every version, the one saved after the revert too, records the preset's action space (issue 23)
            assert checkpoint.served_action_space(record) == (
                ActionSpaceConfig(object_mask=True, edge_margin_m=0.012), checkpoint.ACTION_SPACE_RECORDED)
        assert node.catalog.latest().updates == 7
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
