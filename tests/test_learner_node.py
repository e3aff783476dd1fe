"""learner_node as its own process over DDS: warm start and version 0, storing before counting, duplicates,
bad experiences, checkpoints announced every N updates, and a SIGKILL mid-run that loses no experience and
trains the experiences stored after the last checkpoint when it restarts. Tiny profile.
"""
import os
import sys
import uuid

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
import torch  # noqa: E402
from grasp_interfaces.msg import GraspExperience, ModelVersion  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from grasp_bringup.process_graph import NodeSpec  # noqa: E402
from grasp_core import checkpoint  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.replay import ReplayStore  # noqa: E402
from grasp_ros.qos import EXPERIENCE_QOS, MODEL_QOS  # noqa: E402
from grasp_learning.learner_monitor import UPDATE_QOS, UPDATE_TOPIC  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from graph_helpers import (RosClient, graph_in_test_domain, heightmap_msg, log_text,  # noqa: E402
                           start_and_wait, wait_until)

pytestmark = pytest.mark.ros
CHECKPOINT_EVERY = 4


def experience(index: int, rotations: int = 4, terminal: bool | None = None) -> GraspExperience:
    terminal = index % 2 == 0 if terminal is None else terminal
    msg = GraspExperience(id=str(uuid.uuid4()), source="/test", attempt=index, heightmap=heightmap_msg(seed=index),
                          rotation_index=index % rotations, num_rotations=rotations, pixel_x=10 + index,
                          pixel_y=20, reward=float(index % 3 == 0), terminal=terminal, epsilon=0.5)
    if not terminal:
        msg.next_heightmap = heightmap_msg(seed=index + 100)
    return msg


def learner_spec(tmp, pretrained):
    return NodeSpec("grasp_learning", "learner_node", label="learner", params={
        "profile": "tiny", "replay_dir": str(tmp / "replay"), "checkpoint_dir": str(tmp / "checkpoints"),
        "learning": "seed", "learning_overrides": f"publish_every={CHECKPOINT_EVERY}",
        "pretrained_checkpoint": str(pretrained), "torch_threads": 1, "tensorboard_image_every": 4})


def test_learner_stores_trains_checkpoints_and_survives_sigkill(tmp_path):
    torch.manual_seed(0)
    qnet = get_profile("tiny").build_q_network()
    pretrained = checkpoint.save_model(tmp_path / "q_s.safetensors", qnet.fcn, num_rotations=4, zoom=1,
                                       back_rotation="bilinear", profile="tiny", stage="pretrain")
    versions = []
    with graph_in_test_domain(tmp_path / "logs") as graph:
        client = RosClient("learner_test_client")
        try:
            node = client.node
            node.create_subscription(ModelVersion, "/grasp/model", versions.append, MODEL_QOS)
            updates = []
            node.create_subscription(Float64MultiArray, UPDATE_TOPIC, updates.append, UPDATE_QOS)
            pub = node.create_publisher(GraspExperience, "/grasp/experience", EXPERIENCE_QOS)
            start_and_wait(graph, learner_spec(tmp_path, pretrained), "learner ready")
            log = lambda: log_text(graph, "learner")  # noqa: E731
            assert f"warm start from {pretrained}" in log()
            wait_until(lambda: versions and versions[-1].version == 0, 20.0, what="version 0")
            assert os.path.isfile(versions[0].path) and versions[0].trunk == "small_cnn"
            wait_until(lambda: pub.get_subscription_count() > 0, 20.0, what="the learner's subscription")

            # 1. Six experiences: stored, trained, and a checkpoint after every 4 updates.
            published = [experience(i) for i in range(6)]
            for msg in published:
                pub.publish(msg)
            wait_until(lambda: "update 6 on experience #5" in log(), 60.0, what="6 updates")
            wait_until(lambda: any(v.version == 1 for v in versions), 20.0, what="version 1")
            v1 = next(v for v in versions if v.version == 1)
            assert (v1.updates, v1.experiences) == (CHECKPOINT_EVERY, CHECKPOINT_EVERY)
            # Every update is announced for live views: [step, loss, td_error, q_predicted, q_target].
            wait_until(lambda: len(updates) >= 6, 20.0, what="6 update messages")
            assert [int(u.data[0]) for u in updates[:6]] == [1, 2, 3, 4, 5, 6]
            assert updates[0].layout.dim[0].label == "step,loss,td_error,q_predicted,q_target"
            assert updates[0].data[2] == pytest.approx(updates[0].data[4] - updates[0].data[3])

            # 2. A re-sent id is detected and not trained again; a bad experience is dropped, not stored.
            pub.publish(published[0])
            bad = experience(50, rotations=16)
            pub.publish(bad)
            wait_until(lambda: f"{published[0].id} from /test is already stored as #0: duplicate" in log(), 20.0,
                       what="the duplicate warning")
            wait_until(lambda: "dropped an experience from /test (attempt 50)" in log(), 20.0, what="the drop")

            # 3. Nine more (15 in all: the last checkpoint covers 12), then SIGKILL once they are stored.
            more = [experience(i) for i in range(6, 15)]
            for msg in more:
                pub.publish(msg)
                published.append(msg)
            wait_until(lambda: "stored experience #14" in log(), 60.0, what="15 stored experiences")
            graph.kill("learner")
            with ReplayStore(tmp_path / "replay", read_only=True) as store:
                stored_ids = store.ids
            assert sorted(stored_ids) == sorted(m.id for m in published)  # 0 lost, nothing extra
            assert bad.id not in stored_ids

            # 4. Restart: resume from the newest checkpoint (not the pretrained one) and train what came after.
            versions.clear()
            restarted = start_and_wait(graph, learner_spec(tmp_path, pretrained), "learner ready")
            text = log()
            assert "resuming from" in text and "not used: resuming wins" in text
            resumed = int(text.split("experiences trained); the replay holds 15, so ")[1].split(" ")[0])
            # From v3 (12 updates) unless the kill came before its save (then v2 or v1).
            assert resumed in (15 - 12, 15 - 8, 15 - 4), resumed
            wait_until(lambda: "update 15 on experience #14" in log(), 60.0, what="the backlog to be trained")
            assert "update 16 " not in log()  # nothing trained twice
            wait_until(lambda: versions, 20.0, what="the resumed version's announcement")
            pub.publish(published[3])
            wait_until(lambda: f"{published[3].id} from /test is already stored as #3: duplicate" in log(), 20.0,
                       what="a duplicate after the restart")
            graph.stop()
            with ReplayStore(tmp_path / "replay", read_only=True) as store:
                assert len(store) == 15
            # A clean stop saves the updates done since the last checkpoint.
            final = restarted.log_path.read_text()
            assert "checkpoint version" in final.split("update 15 on experience #14")[-1]
            # TensorBoard in the run's folder (beside checkpoints/): curves of both runs and affordance images.
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
            events.Reload()
            tags = events.Tags()
            assert {"loss/update", "td_error/update", "q/predicted", "q/target", "G/window", "epsilon/experience",
                    "q/map_max"} <= set(tags["scalars"])
            assert "affordance/best_rotation" in tags["images"]
            assert max(e.step for e in events.Scalars("loss/update")) == 15
            assert len(events.Images("affordance/best_rotation")) >= 3  # updates 4, 8, 12 (and 4, 8, 12 again)
        finally:
            client.close()
