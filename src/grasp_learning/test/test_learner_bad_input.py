"""learner_node in-process: corrupt replay records are quarantined and never blamed on good experiences (issue 11,
defects 6 and 7), and no model that is not finite is ever saved or announced (defect 3, the learner's part)."""
import json
import time

import numpy as np
import pytest
import torch

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from rclpy.parameter import Parameter  # noqa: E402

from grasp_core import checkpoint  # noqa: E402
from grasp_core.dqn import DQNLearner  # noqa: E402
from grasp_core.model_check import check_model  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.replay import Experience, ReplayStore  # noqa: E402
from grasp_learning.learner_node import LearnerNode  # noqa: E402
from grasp_ros.params import ParameterError  # noqa: E402

N = 10
CORRUPT = 3


def experience(i: int, reward: float) -> Experience:
    rng = np.random.default_rng(i)
    depth = np.zeros((64, 64), np.float32)
    depth[10 + i:20 + i, 30:40] = 0.05
    return Experience(id=f"exp-{i}", source="/t", attempt=i, color_hm=rng.integers(0, 255, (64, 64, 3), np.uint8),
                      depth_hm=depth, rotation_index=i % 4, num_rotations=4, pixel=(35, 15 + i), reward=reward,
                      terminal=True)


def replay_with(directory, damage=None):
    """N stored experiences; only #CORRUPT succeeded, so every other update must draw it for prioritised replay."""
    with ReplayStore(directory) as store:
        for i in range(N):
            store.append(experience(i, 1.0 if i == CORRUPT else 0.0))
    if damage is not None:
        damage(directory / f"{CORRUPT:08d}.npz")
    return directory


def flip_image_bytes(path):
    raw = bytearray(path.read_bytes())
    at = raw.index(b"color_hm.npy") + 200
    raw[at:at + 64] = bytes(255 - b for b in raw[at:at + 64])
    path.write_bytes(bytes(raw))


def edit_metadata(change):
    def damage(path):
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays["meta"]))
        arrays["meta"] = np.array(json.dumps(change(meta)))
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)
    return damage


@pytest.fixture
def learner(tmp_path):
    made = []

    def make(replay_dir, prioritized_replay: bool = True, **params):
        """The seed's learner (one VPG prioritised-replay step per update, or none), a model every 3 updates."""
        context = rclpy.Context()
        rclpy.init(context=context)
        learning = "publish_every=3" + ("" if prioritized_replay else " dqn.replay_steps=0")
        overrides = [Parameter("profile", value="tiny"), Parameter("replay_dir", value=str(replay_dir)),
                     Parameter("checkpoint_dir", value=str(tmp_path / "ck")), Parameter("learning", value="seed"),
                     Parameter("learning_overrides", value=learning), Parameter("torch_threads", value=1)]
        overrides += [Parameter(k, value=v) for k, v in params.items()]
        made.append([None, context])
        node = LearnerNode(context=context, parameter_overrides=overrides)
        made[-1][0] = node
        return node
    yield make
    for node, context in made:
        if node is not None:
            node.shutdown(save=False)
            node.destroy_node()
        rclpy.try_shutdown(context=context)


def wait_trained(node, trained: int, steps: int, timeout: float = 180.0) -> None:
    """Until the trainer has walked the store and made `steps` updates in all (a loaded machine: generous)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.trained >= trained and node.learner.step >= steps:
            time.sleep(0.3)
            if node.trained >= trained and node.learner.step >= steps:
                return
        time.sleep(0.05)
    pytest.fail(f"trained {node.trained}/{trained}, {node.learner.step}/{steps} updates, skipped {node._skip}")


@pytest.mark.parametrize("damage", [flip_image_bytes], ids=["corrupt images"])
def test_a_corrupt_record_drawn_for_replay_is_quarantined_not_blamed_on_the_good_one(learner, tmp_path, damage):
    replay = replay_with(tmp_path / "replay", damage)
    node = learner(replay, prioritized_replay=True)
    wait_trained(node, N, N - 1)
    # Was: each good experience whose update drew #3 was the one left out (4 of them in the probe).
    assert node._skip == {CORRUPT}
    assert node.learner.step == N - 1  # every good experience trained, once, after the one reload
    assert list(node.store.quarantined) == [CORRUPT]
    assert (replay / "quarantine" / f"{CORRUPT:08d}.npz").is_file() and not (replay / f"{CORRUPT:08d}.npz").exists()
    assert node.learner.sampler.retired() == [CORRUPT]


@pytest.mark.parametrize("change", [lambda m: {k: v for k, v in m.items() if k != "id"},
                                    lambda m: {k: v for k, v in m.items() if k != "reward"},
                                    lambda m: [m]], ids=["no id", "no reward", "a list"])
def test_replay_metadata_of_the_wrong_shape_is_quarantined_at_start_up(learner, tmp_path, change):
    replay = replay_with(tmp_path / "replay", edit_metadata(change))
    node = learner(replay, prioritized_replay=True)  # was: a raw KeyError / TypeError traceback, exit 1
    assert list(node.store.quarantined) == [CORRUPT]
    wait_trained(node, N, N - 1)
    assert node._skip == set() and node.learner.step == N - 1
    assert (replay / "quarantine" / f"{CORRUPT:08d}.reason.txt").is_file()


def _save_pretrained(path, poison):
    torch.manual_seed(0)
    qnet = get_profile("tiny").build_q_network()
    with torch.no_grad():
        poison(qnet.fcn)
    return checkpoint.save_model(path, qnet.fcn, num_rotations=4, zoom=1, back_rotation="bilinear", profile="tiny",
                                 stage="pretrain")


def _nan_weight(fcn):
    next(fcn.parameters()).view(-1)[0] = float("nan")


def _negative_bn_variance(fcn):  # every tensor finite, but every Q value NaN
    next(m for m in fcn.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_var.fill_(-1.0)


@pytest.mark.parametrize("poison", [_nan_weight, _negative_bn_variance], ids=["NaN weight", "negative BN variance"])
def test_a_pretrained_model_that_is_not_finite_is_refused_at_start_up(learner, tmp_path, poison):
    pretrained = _save_pretrained(tmp_path / "q_s.safetensors", poison)
    with pytest.raises(ParameterError, match="cannot be served.*NaN or inf"):
        learner(tmp_path / "replay", pretrained_checkpoint=str(pretrained))
    assert not list((tmp_path / "ck").glob("*.safetensors"))  # nothing saved, nothing announced


POISON_ATTEMPT = 4


def test_an_update_that_leaves_finite_weights_but_nan_q_is_undone(learner, tmp_path, monkeypatch):
    original = DQNLearner.update

    def update(self, exp):
        stats = original(self, exp)
        if exp.attempt == POISON_ATTEMPT:
            _negative_bn_variance(self.qnet.fcn)  # finite tensors: the old divergence check let this through
        return stats
    monkeypatch.setattr(DQNLearner, "update", update)
    with ReplayStore(tmp_path / "replay") as store:
        for i in range(8):
            store.append(experience(i, float(i % 2)))
    node = learner(tmp_path / "replay", prioritized_replay=False)
    wait_trained(node, 8, 7)
    assert node._skip == {POISON_ATTEMPT}
    node.shutdown()
    entries = node.catalog.entries()
    assert entries and entries[-1].updates == 7
    for entry in entries:  # no saved (hence no announced) model gives NaN
        qnet, _ = checkpoint.load_q_network(entry.model_path)
        check_model(qnet.eval(), what=str(entry.model_path))


# ------------------------------------------------------------------------------------------------ issue 23
CAP_SIDE, BIG_SIDE = 64, 96  # a cap of 64 x 64 pixels (the tiny profile's heightmap) and a record over it


def large_experience(i: int, reward: float, side: int = BIG_SIDE) -> Experience:
    depth = np.zeros((side, side), np.float32)
    depth[10:20, 30:40] = 0.05
    return Experience(id=f"big-{i}", source="/t", attempt=i, color_hm=np.zeros((side, side, 3), np.uint8),
                      depth_hm=depth, rotation_index=0, num_rotations=4, pixel=(35, 15), reward=reward, terminal=True)


def test_a_stored_heightmap_larger_than_the_cap_is_quarantined_not_trained(learner, tmp_path):
    """Issue 23, 2.5: a 2048 x 2048 experience was stored and trained (16.6 s per update, 4.5 GB), and stayed in
    replay to be drawn again. Here a 96 x 96 record over a 64 x 64 cap, drawn for prioritised replay (it is the
    one success) by the updates before its own."""
    replay = tmp_path / "replay"
    with ReplayStore(replay) as store:
        for i in range(N):
            store.append(large_experience(i, 1.0) if i == CORRUPT else experience(i, 0.0))
    node = learner(replay, prioritized_replay=True, max_heightmap_pixels=CAP_SIDE * CAP_SIDE)
    wait_trained(node, N, N - 1)
    assert node._skip == {CORRUPT}
    assert node.learner.step == N - 1  # every other experience trained once
    assert list(node.store.quarantined) == [CORRUPT]
    reason = (replay / "quarantine" / f"{CORRUPT:08d}.reason.txt").read_text()
    assert f"{BIG_SIDE}x{BIG_SIDE}" in reason and f"{CAP_SIDE * CAP_SIDE} pixels" in reason, reason
    assert node.learner.sampler.retired() == [CORRUPT]


def experience_msg(attempt: int, source: str = "/robot1", side: int = CAP_SIDE, run: int = 0):
    from grasp_interfaces.msg import GraspExperience

    from grasp_core.workspace import VPG_SIM_WORKSPACE
    from grasp_ros.conversions import heightmap_to_msg
    workspace = VPG_SIM_WORKSPACE.with_resolution(0.448 / side)
    depth = np.zeros(workspace.shape, np.float32)
    depth[10:20, 30:40] = 0.05
    heightmap = heightmap_to_msg(np.zeros(workspace.shape + (3,), np.uint8), depth, workspace)
    heightmap.header.frame_id = "world"
    return GraspExperience(id=f"{source}-{run}-{attempt}-{side}", source=source, attempt=attempt, heightmap=heightmap,
                           rotation_index=0, num_rotations=4, pixel_x=35, pixel_y=15, reward=0.0, terminal=True)


def test_an_experience_larger_than_the_cap_is_refused_before_it_is_decoded(learner, tmp_path):
    node = learner(tmp_path / "replay", prioritized_replay=False, max_heightmap_pixels=CAP_SIDE * CAP_SIDE)
    node._on_experience(experience_msg(1, side=BIG_SIDE))
    assert len(node.store) == 0 and node._rejected == 1
    node._on_experience(experience_msg(2, side=CAP_SIDE))  # at the cap: stored
    assert len(node.store) == 1 and node._rejected == 1
    with pytest.raises(ParameterError, match="max_heightmap_pixels"):
        learner(tmp_path / "replay2", max_heightmap_pixels=0)


class RecordingLogger:
    """Keeps every message (rclpy's loggers refuse one call site for several severities, so none is forwarded)."""

    def __init__(self):
        self.messages = []

    def __getattr__(self, level):
        return lambda message, **kwargs: self.messages.append((level, message))


def test_experiences_lost_on_the_way_are_detected_from_gaps_in_attempt_numbers(learner, tmp_path):
    """Issue 23, 2.6: 1100 experiences sent in 0.07 s, more than the topic's queue: attempts 10-109 were lost with
    no log on either side. An executor numbers its attempts 1, 2, 3, ...: a gap per source is a lost experience."""
    node = learner(tmp_path / "replay", prioritized_replay=False)
    logs = RecordingLogger()
    node.get_logger = lambda: logs
    for attempt in (1, 2, 3, 7):  # 4-6 lost
        node._on_experience(experience_msg(attempt))
    node._on_experience(experience_msg(1, source="/robot2"))  # another executor's own numbering
    node._on_experience(experience_msg(8))
    assert node.lost_experiences == 3
    lost = [m for level, m in logs.messages if "lost" in m]
    assert len(lost) == 1 and "/robot1" in lost[0] and "attempts 4-6" in lost[0] and logs.messages, logs.messages
    assert ("error", lost[0]) in logs.messages
    bad = experience_msg(9)
    bad.heightmap.depth.data = b"\0" * 8  # refused, but it arrived: not counted as lost
    node._on_experience(bad)
    node._on_experience(experience_msg(10))
    node._on_experience(experience_msg(10))  # a duplicate is not a gap either
    node._on_experience(experience_msg(1, run=1))  # the executor restarted: its numbering begins again
    node._on_experience(experience_msg(2, run=1))
    assert node.lost_experiences == 3
    assert any("restarted" in m for _, m in logs.messages)
    stored = len(node.store)
    node.shutdown(save=False)
    node.destroy_node()
    # A restarted learner knows each source's last stored attempt: what was sent while it was down is missed.
    again = learner(tmp_path / "replay", prioritized_replay=False)
    assert len(again.store) == stored
    logs = RecordingLogger()
    again.get_logger = lambda: logs
    again._on_experience(experience_msg(5, run=1))
    again._on_experience(experience_msg(2, source="/robot2", run=1))
    assert again.lost_experiences == 2  # /robot1 attempts 3-4
    assert any("attempts 3-4" in m for _, m in logs.messages), logs.messages
