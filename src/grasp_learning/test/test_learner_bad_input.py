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
