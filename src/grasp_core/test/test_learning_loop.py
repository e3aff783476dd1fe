"""The shared learning loop (grasp_core.learning) on the synthetic blob world: learning raises the greedy
success over the warm start, a diverging update never reaches a published model, presets and overrides."""
import os
import sys

import numpy as np
import pytest
import torch

from grasp_core.dqn import DQNLearner
from grasp_core.exploration import select_action
from grasp_core.learning import PRESETS, LearningLoop, PublicationSchedule, learning_config, parse_overrides
from grasp_core.pretrain import PretrainConfig, prepare_images, pretrain
from grasp_core.profiles import get_profile
from grasp_core.replay import ReplayStore
from grasp_core.grasp_failure import GraspFailure
from grasp_core.sim.grasp_result import GraspResult
from grasp_core.workspace import WorkspaceLimits

sys.path.insert(0, os.path.dirname(__file__))
from blob_world import BlobWorld  # noqa: E402

torch.set_num_threads(1)
TINY = get_profile("tiny")
SIZE = 32
WORKSPACE = WorkspaceLimits(0.0, SIZE * 0.007, 0.0, SIZE * 0.007, 0.0, 0.3, 0.007)


class BlobSim:
    """BlobWorld behind the world interface LearningLoop drives (heightmap / execute_grasp / reset)."""

    def __init__(self, seed: int):
        self.world = BlobWorld(size=SIZE, seed=seed, max_failures=10 ** 6)

    def heightmap(self):
        return self.world.heightmaps()

    def execute_grasp(self, x, y, angle):
        u, v = WORKSPACE.point_to_pixel(x, y)
        success = self.world.grasp(int(u), int(v))
        return GraspResult(True, success, GraspFailure.NONE if success else GraspFailure.NOTHING_GRASPED,
                           "blob" if success else "", 0.0, len(self.world.blobs), "")

    def reset(self):
        self.world.reset()


def _greedy_success(qnet, seeds=range(500, 540)) -> float:
    hits = []
    for seed in seeds:
        world = BlobWorld(size=SIZE, seed=seed)
        color, depth = world.heightmaps()
        a = select_action(qnet.predict(color, depth), 0.0, np.random.default_rng(0))
        hits.append(world.grasp(a.u, a.v))
    return float(np.mean(hits))


def _weak_warm_start(seed: int):
    """A Q_s pretrained for a moment on blob key points: it knows roughly where blobs are."""
    torch.manual_seed(seed)
    world, samples = BlobWorld(size=SIZE, seed=1000 + seed), []
    for i in range(12):
        world.reset()
        samples.append(world.keypoint_sample(f"{i}"))
    qnet = TINY.build_q_network()
    pretrain(qnet, prepare_images(samples), PretrainConfig(profile="tiny", epochs=2, lr=1e-3, seed=seed),
             progress=False)
    return qnet


def test_learning_raises_greedy_success_over_the_warm_start(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # about learning, not durability
    gains = []
    for seed in (0, 1):
        qnet = _weak_warm_start(seed)
        before = _greedy_success(qnet)
        config = learning_config("default", ["exploration.epsilon_decay_steps=150", "dqn.lr=0.001"],
                                 seed=seed)  # the default's loop: head on cached features, pooled over angles
        learner = DQNLearner(qnet, config.dqn, ReplayStore(tmp_path / f"replay_{seed}"), profile="tiny")
        loop = LearningLoop(learner, config, BlobSim(seed), WORKSPACE, seed=seed)
        records = [loop.step() for _ in range(150)]
        after = _greedy_success(loop.acting)
        gains.append(after - before)
        assert not any(r.diverged for r in records)
        first, last = np.mean([r.success for r in records[:50]]), np.mean([r.success for r in records[-50:]])
        assert last >= first - 0.05, (first, last)  # not worn down (the first 50 can be near the ceiling already)
    assert min(gains) >= 0.0 and np.mean(gains) >= 0.1, gains  # greedy grasps on 40 fresh scenes, after - before


def test_a_diverging_update_never_reaches_a_published_model(tmp_path):
    qnet = _weak_warm_start(0)
    config = learning_config("seed", ["dqn.lr=1e30", "publish_every=1"], seed=0)  # SGD at 1e30: inf weights
    learner = DQNLearner(qnet, config.dqn, ReplayStore(tmp_path / "replay"), profile="tiny")
    loop = LearningLoop(learner, config, BlobSim(3), WORKSPACE, seed=0)
    records = [loop.step() for _ in range(6)]
    assert any(r.diverged for r in records)
    assert loop.version == sum(not r.diverged for r in records)  # a diverged update published nothing
    for name, tensor in list(loop.acting.state_dict().items()) + list(learner.qnet.state_dict().items()):
        if tensor.is_floating_point():
            assert torch.isfinite(tensor).all(), name  # undone: the learner's weights stay finite too
    color, depth = BlobSim(4).heightmap()
    assert np.isfinite(loop.acting.predict(color, depth)).all()


def test_presets_overrides_and_publication_schedule():
    seed = PRESETS["seed"]
    assert (seed.dqn.gamma, seed.dqn.optimizer, seed.dqn.lr, seed.dqn.bn_mode, seed.dqn.batch_size,
            seed.dqn.replay_steps, seed.exploration.mode, seed.exploration.exclude_failed) == \
        (0.9, "sgd", 1e-4, "train", 1, 1, "uniform", False)
    config = learning_config("default", parse_overrides("dqn.gamma=0.5, dqn.loss=smooth_l1 exploration.mode=uniform "
                                                        "publish_every=3"))
    assert (config.dqn.gamma, config.exploration.mode, config.publish_every) == (0.5, "uniform", 3)
    assert PRESETS["default"].dqn.gamma != 0.5  # the preset itself is untouched
    for bad, match in ((["dqn.gama=0.5"], "no settable field"), (["dqn.gamma"], "section.field=value"),
                       (["net.lr=1"], "section must be"), (["dqn.batch_size=two"], "batch_size=two"),
                       (["dqn.gamma=2"], "gamma"), (["dqn.gamma=0.9"], "bce")):
        with pytest.raises(ValueError, match=match):
            learning_config("default", bad)
    with pytest.raises(ValueError, match="unknown learning preset"):
        learning_config("fastest")
    schedule = PublicationSchedule(3)
    due, published = [], []
    for _ in range(7):
        due.append(schedule.due_after_next())
        published.append(schedule.after_update())
    assert published == [False, False, True, False, False, True, False]
    assert due == published  # the learner skips its own Q check exactly when the publication repeats it


class ScriptedWorld:
    """A world whose grasps follow a script of (success, objects_remaining, scene changes) outcomes."""

    def __init__(self, script):
        self.script, self.calls, self.resets = list(script), [], 0
        self.depth = np.zeros((SIZE, SIZE), np.float32)
        self.depth[10:20, 10:20] = 0.05

    def heightmap(self):
        return np.zeros((SIZE, SIZE, 3), np.uint8), self.depth.copy()

    def execute_grasp(self, x, y, angle):
        success, remaining, moves = self.script[len(self.calls)]
        self.calls.append(WORKSPACE.point_to_pixel(x, y))
        if moves:
            self.depth = np.roll(self.depth, 3, axis=1)
        return GraspResult(True, success, GraspFailure.NONE if success else GraspFailure.NOTHING_GRASPED, "", 0.0,
                           remaining, "")

    def reset(self):
        self.resets += 1


def test_the_harness_loop_takes_the_executor_nodes_decisions(tmp_path):
    """The scenario of grasp_execution's test_executor_runs_grasp_cycles_against_the_sim, in the harness: the
    same AttemptRules give the same terminal / reset / exclusion decisions (both hold grasp_core's rules)."""
    config = learning_config("default", ["episode.reset_after_failures=2", "dqn.lr=1e-12",
                                         "exploration.epsilon_start=0", "exploration.epsilon_end=0",
                                         "exploration.epsilon_schedule=constant"])
    learner = DQNLearner(TINY.build_q_network(), config.dqn, ReplayStore(tmp_path / "replay"), profile="tiny")
    world = ScriptedWorld([(False, 3, False), (False, 3, False), (True, 2, True), (True, 0, True),
                           (False, 5, True), (False, 5, False)])
    loop = LearningLoop(learner, config, world, WORKSPACE, seed=0)
    records = [loop.step() for _ in range(6)]
    # Two misses on an unchanged scene: the second choice excluded the first; then terminal + reset.
    assert [r.excluded for r in records] == [0, 1, 0, 0, 0, 0]
    assert world.calls[1] != world.calls[0]
    assert [(r.scene_reset, r.reset_why) for r in records[:2]] == [(False, ""), (True, "2 failed grasps in a row")]
    # A success whose grasp emptied the workspace is terminal and resets; a miss that moved things is forgotten.
    assert (records[3].scene_reset, records[3].reset_why) == (True, "the workspace is empty")
    assert records[5].excluded == 0 and records[5].reset_why == "2 failed grasps in a row" and world.resets == 3
