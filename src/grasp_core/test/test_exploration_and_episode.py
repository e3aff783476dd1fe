"""Exploration modes, failed-grasp exclusion and the episode rule (grasp_core.exploration, grasp_core.episode)."""
import numpy as np
import pytest

from grasp_core.episode import EpisodeConfig, EpisodeTracker, is_empty, scene_changed
from grasp_core.exploration import ExplorationConfig, FailedGraspMemory, select_action


def _maps():
    q = np.zeros((4, 20, 20), np.float32)
    q[:, 5:8, 5:8] = 1.0  # a graspable blob, every angle
    q[1, 6, 6] = 1.5  # its best angle
    return q


def test_affordance_exploration_draws_pixels_from_the_map_and_any_rotation():
    rng = np.random.default_rng(0)
    draws = [select_action(_maps(), 1.0, rng, mode="affordance", temperature=0.1) for _ in range(300)]
    on_blob = np.mean([5 <= d.v < 8 and 5 <= d.u < 8 for d in draws])
    assert on_blob > 0.9  # exp(1 / 0.1) against exp(0): the blob's 9 pixels outweigh the 391 others
    assert {d.rotation for d in draws} == {0, 1, 2, 3} and all(d.explored for d in draws)
    uniform = [select_action(_maps(), 1.0, rng, mode="uniform") for _ in range(300)]
    assert np.mean([5 <= d.v < 8 and 5 <= d.u < 8 for d in uniform]) < 0.1  # the seed: anywhere


def test_boltzmann_anneals_with_epsilon_and_is_greedy_at_zero():
    rng = np.random.default_rng(1)
    greedy = select_action(_maps(), 0.0, rng, mode="boltzmann")
    assert (greedy.rotation, greedy.v, greedy.u, greedy.explored) == (1, 6, 6, False)
    hot = [select_action(_maps(), 0.5, rng, mode="boltzmann", temperature=1.0) for _ in range(200)]
    cold = [select_action(_maps(), 0.005, rng, mode="boltzmann", temperature=1.0) for _ in range(200)]
    assert np.mean([d.explored for d in hot]) > np.mean([d.explored for d in cold]) + 0.5


def test_failed_grasps_are_excluded_until_the_scene_changes():
    memory = FailedGraspMemory(num_rotations=4, radius_px=1.5)
    q = _maps()
    rng = np.random.default_rng(0)
    first = select_action(q, 0.0, rng, excluded=memory.excluded(20, 20))
    memory.record(first.rotation, first.u, first.v, success=False, scene_changed=False)
    excluded = memory.excluded(20, 20)
    assert excluded[1, 6, 6] and excluded[3, 6, 6]  # the same physical grasp: rotation i and i + R/2
    assert not excluded[0, 6, 6] and not excluded[1, 12, 12]
    second = select_action(q, 0.0, rng, excluded=excluded)
    assert (second.rotation, second.u, second.v) != (first.rotation, first.u, first.v)
    memory.record(second.rotation, second.u, second.v, success=False, scene_changed=True)
    assert memory.excluded(20, 20) is None  # the scene moved: the old failures may work now
    # A greedy policy never proposes the same failed grasp twice on an unchanged scene.
    seen = set()
    for _ in range(30):
        a = select_action(q, 0.0, rng, excluded=memory.excluded(20, 20))
        assert (a.rotation % 2, a.u, a.v) not in seen
        seen.add((a.rotation % 2, a.u, a.v))
        memory.record(a.rotation, a.u, a.v, success=False, scene_changed=False)
    with pytest.raises(ValueError, match="no action is left"):
        select_action(q, 0.0, rng, excluded=np.ones((4, 20, 20), bool))


def test_episode_rule():
    config = EpisodeConfig(reset_after_failures=3)
    tracker = EpisodeTracker(config)
    full = np.zeros((50, 50), np.float32)
    full[10:20, 10:20] = 0.05
    empty = np.zeros((50, 50), np.float32)
    res = 0.004
    assert not is_empty(full, res, config) and is_empty(empty, res, config)
    assert tracker.after_attempt(False, 5, full, res) == tracker.after_attempt(False, 5, full, res)
    decision = tracker.after_attempt(False, 5, full, res)
    assert decision.terminal and decision.reset and "3 failed grasps in a row" in decision.why
    assert tracker.consecutive_failures == 0
    assert not tracker.after_attempt(True, 4, full, res).terminal
    decision = tracker.after_attempt(True, None, empty, res)
    assert decision.terminal and decision.reset and "empty" in decision.why
    assert tracker.after_attempt(True, 0, None, res).reset  # the backend's count wins
    decision = tracker.after_attempt(False, 3, None, res)
    assert decision.terminal and not decision.reset  # no next state: terminal, same scene
    moved = full.copy()
    moved[10:20, 10:20] = 0.0
    assert scene_changed(full, moved, res, config) and not scene_changed(full, full + 0.001, res, config)
    with pytest.raises(ValueError, match="reset_after_failures"):
        EpisodeConfig(reset_after_failures=-1)


def test_exploration_config_is_validated():
    with pytest.raises(ValueError, match="exploration mode"):
        ExplorationConfig(mode="greedy")
    with pytest.raises(ValueError, match="temperature"):
        ExplorationConfig(temperature=0.0)
    with pytest.raises(ValueError, match="epsilon_end <= epsilon_start"):
        ExplorationConfig(epsilon_start=0.1, epsilon_end=0.2)


def test_a_spot_that_failed_three_times_in_a_row_is_given_up_at_every_angle():
    """An object the jaw cannot hold moves a little at every try, so each failure 'changes' the scene; seen in a
    demo: 8 failures in a row on one object at different angles. After give_up_after failures within twice the
    radius of each other, every orientation there is excluded, across scene changes, until a success."""
    memory = FailedGraspMemory(num_rotations=16, radius_px=3.0, give_up_after=3)
    for k, (u, v) in enumerate([(40, 70), (42, 71), (39, 74)]):
        memory.record(rotation=k, u=u, v=v, success=False, scene_changed=True)
    excluded = memory.excluded(112, 112)
    assert excluded is not None and excluded[:, 74, 39].all() and not excluded[:, 74, 60].any()
    memory.record(rotation=0, u=90, v=20, success=False, scene_changed=True)  # elsewhere: still given up here
    assert memory.excluded(112, 112)[:, 74, 39].all()
    memory.record(rotation=0, u=90, v=20, success=True, scene_changed=True)
    assert memory.excluded(112, 112) is None
    never = FailedGraspMemory(num_rotations=16, radius_px=3.0)  # give_up_after 0: the seed's and older presets
    for k in range(5):
        never.record(rotation=k, u=40, v=70, success=False, scene_changed=True)
    assert never.excluded(112, 112) is None


def test_failures_far_apart_do_not_add_up():
    memory = FailedGraspMemory(num_rotations=16, radius_px=3.0, give_up_after=3)
    for u in (10, 40, 70):
        memory.record(rotation=0, u=u, v=50, success=False, scene_changed=True)
    assert memory.given_up == [] and memory.excluded(112, 112) is None
