"""The learning loop: one definition of how a robot learns to grasp, shared by the node graph and the harness.

    state s -> Q maps of the *published* model -> grasp (exploration, failed grasps excluded) -> execute
      -> reward, next state, episode rule (terminal / reset) -> DQN update(s) -> every `publish_every`
      updates a new model version is published (the one the next grasps are chosen with)

`LearningConfig` holds every setting of it (DQN, exploration, episode rule, publication); `PRESETS` names
them: `seed` is the seed paper's method exactly (the ablation baseline), `default` what this repository uses.
`LearningLoop` runs it in-process against any world with `heightmap()`, `execute_grasp(x, y, angle)` and
`reset()` (the MuJoCo GraspWorld); the node graph splits the same pieces over its nodes: executor_node
(AttemptRules, epsilon), affordance_node (choose_grasp on the published model) and
learner_node (DQNLearner, PublicationSchedule).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from grasp_core.action_space import ON_OBJECT_HEIGHT_M, ActionSpaceConfig, choose_grasp
from grasp_core.attempts import AttemptRecord
from grasp_core.dqn import DQNConfig, DQNLearner, UpdateStats
from grasp_core.episode import EpisodeConfig, EpisodeDecision, EpisodeTracker, scene_changed
from grasp_core.exploration import ExplorationConfig, FailedGraspMemory, epsilon_at
from grasp_core.replay import Experience
from grasp_core.rotation import RotatingQNetwork


SECTIONS = ("dqn", "exploration", "episode", "actions")  # LearningConfig's sub-configs (override prefixes)


@dataclass
class LearningConfig:
    name: str = "default"
    dqn: DQNConfig = field(default_factory=DQNConfig)
    exploration: ExplorationConfig = field(default_factory=ExplorationConfig)
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)
    actions: ActionSpaceConfig = field(default_factory=ActionSpaceConfig)
    publish_every: int = 1  # learner updates per published model version

    def __post_init__(self) -> None:
        if isinstance(self.dqn, dict):
            self.dqn = DQNConfig(**self.dqn)
        if isinstance(self.exploration, dict):
            self.exploration = ExplorationConfig(**self.exploration)
        if isinstance(self.episode, dict):
            self.episode = EpisodeConfig(**self.episode)
        if isinstance(self.actions, dict):
            self.actions = ActionSpaceConfig(**self.actions)
        if not isinstance(self.publish_every, int) or self.publish_every < 1:
            raise ValueError(f"publish_every must be an integer >= 1, got {self.publish_every!r}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS: dict[str, LearningConfig] = {
    # The seed paper (III-C/D) on VPG's trainer: SGD 1e-4, gamma 0.9, one step on the new experience plus one
    # prioritised replay step, BatchNorm in train mode, uniform epsilon-greedy 0.5 -> 0.001; the node graph
    # published a model every 10 updates.
    "seed": LearningConfig(name="seed", publish_every=10),
    # What docs/learning.md measured best: grasps chosen by the jaw-symmetric Q among pixels well inside an
    # object's footprint; a contextual bandit (gamma 0) on the success probability (bce) that trains the head on
    # cached trunk features, both jaw orientations of each grasp, and the jaw geometry scored too, as the only
    # term that differs between jaw angles (the head's is pooled over them: grasp_core.rotation); exploration
    # drawn from the map at a low temperature; failed grasps on an unchanged scene excluded; a new model after
    # every update.
    "default": LearningConfig(
        name="default",
        dqn=DQNConfig(gamma=0.0, optimizer="adam", lr=3e-4, weight_decay=0.0, grad_clip=1.0, bn_mode="frozen",
                      batch_size=16, replay_steps=1, replay_sampler="uniform", loss="bce", trainable="head",
                      train_opposite_rotation=True, jaw_geometry=True, geometry_lr=0.1,
                      angle_source="jaw_geometry"),
        exploration=ExplorationConfig(mode="affordance", temperature=0.03, exclude_failed=True, give_up_after=3),
        actions=ActionSpaceConfig(object_mask=True, edge_margin_m=0.016, symmetric_q=True),
        publish_every=1),
}


def _convert(text: str, current):
    if isinstance(current, bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        return float(text)
    return text


def learning_config(preset: str = "default", overrides: dict[str, str] | list[str] | None = None,
                    **dqn_overrides) -> LearningConfig:
    """A preset with `section.field=value` overrides (e.g. ["dqn.gamma=0.9", "exploration.mode=uniform",
    "publish_every=10"]); keyword arguments override DQN fields (seed, inference)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown learning preset {preset!r}; choose one of {sorted(PRESETS)}")
    config = copy.deepcopy(PRESETS[preset])
    items = overrides.items() if isinstance(overrides, dict) else \
        [tuple(o.split("=", 1)) if "=" in o else (o, None) for o in (overrides or [])]
    changes: dict[str, dict] = {"": {}, **{section: {} for section in SECTIONS}}
    for key, value in items:
        if value is None:
            raise ValueError(f"override {key!r} is not of the form section.field=value")
        section, _, name = key.rpartition(".")
        if section not in changes:
            raise ValueError(f"override {key!r}: the section must be one of {', '.join(SECTIONS)}")
        target = config if not section else getattr(config, section)
        known = {f.name for f in dataclasses.fields(target)}
        if name not in known or name in ("inference", "name", *SECTIONS):
            raise ValueError(f"override {key!r}: {type(target).__name__} has no settable field {name!r}; "
                             f"fields: {sorted(known)}")
        try:
            changes[section][name] = _convert(value, getattr(target, name))
        except ValueError as e:
            raise ValueError(f"override {key}={value}: {e}") from None
    for section in SECTIONS:  # one replace per section: fields are checked together
        if changes[section]:
            setattr(config, section, dataclasses.replace(getattr(config, section), **changes[section]))
    if changes[""]:
        config = dataclasses.replace(config, **changes[""])
    if dqn_overrides:
        config.dqn = dataclasses.replace(config.dqn, **dqn_overrides)
    return config


def parse_overrides(text: str) -> list[str]:
    """'dqn.gamma=0.9 exploration.mode=uniform' (spaces or commas between) -> ['dqn.gamma=0.9', ...]."""
    return [item for item in text.replace(",", " ").split() if item]


class PublicationSchedule:
    """When the learner hands a new model version to the actors: every `publish_every` updates."""

    def __init__(self, publish_every: int):
        if publish_every < 1:
            raise ValueError(f"publish_every must be >= 1, got {publish_every}")
        self.publish_every = int(publish_every)
        self.since_last = 0

    def due_after_next(self) -> bool:
        """True when the next after_update() will publish (lets the learner skip a check the publication repeats)."""
        return self.since_last + 1 >= self.publish_every

    def after_update(self) -> bool:
        """Count one update; True when a version is due now."""
        self.since_last += 1
        if self.since_last >= self.publish_every:
            self.since_last = 0
            return True
        return False


class AttemptRules:
    """What every loop decides after an attempt, in one place: the episode rule (terminal / reset) and the
    failed grasps excluded from the next choices. The harness's LearningLoop and the graph's executor_node both
    hold one, so they take the same decisions on the same outcomes."""

    def __init__(self, config: LearningConfig, num_rotations: int, resolution: float):
        self.config, self.resolution = config, float(resolution)
        self.episode = EpisodeTracker(config.episode)
        self.memory = FailedGraspMemory(num_rotations, config.exploration.exclude_radius_m / resolution,
                                        config.exploration.give_up_after)

    def excluded(self, height: int, width: int) -> np.ndarray | None:
        """(R, H, W) actions not to choose now (None: nothing excluded, or exclusion is off)."""
        return self.memory.excluded(height, width) if self.config.exploration.exclude_failed else None

    def after_attempt(self, rotation: int, u: int, v: int, success: bool, objects_remaining: int | None,
                      depth_before: np.ndarray, next_depth: np.ndarray | None) -> EpisodeDecision:
        decision = self.episode.after_attempt(success, objects_remaining, next_depth, self.resolution)
        changed = decision.terminal or next_depth is None or \
            scene_changed(depth_before, next_depth, self.resolution, self.config.episode)
        self.memory.record(rotation, u, v, success, changed)
        if decision.reset:
            self.memory.clear()
        return decision

    def scene_was_reset(self) -> None:
        self.episode.scene_was_reset()
        self.memory.clear()


class LearningLoop:
    """The loop of the module docstring, in-process: `world` executes grasps, `learner` learns.

    `explore_mask(color, depth)` optionally limits exploring grasps to a (H, W) mask (the MoG baseline).
    """

    def __init__(self, learner: DQNLearner, config: LearningConfig, world, workspace, seed: int,
                 explore_mask: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None, source: str = "loop"):
        self.learner, self.config, self.world, self.workspace = learner, config, world, workspace
        self.qnet: RotatingQNetwork = learner.qnet
        self.acting = copy.deepcopy(self.qnet)  # the published model
        self.version = 0
        self.publication = PublicationSchedule(config.publish_every)
        self.rules = AttemptRules(config, self.qnet.num_rotations, workspace.resolution)
        self.rng = np.random.default_rng(seed)
        self.explore_mask = explore_mask
        self.source = source
        self.attempts = 0
        self._state = self.world.heightmap()

    def _keypoint_distance_mm(self, u: int, v: int) -> float | None:
        """Ground truth for the diagnosis, where the world knows it (grasp_core.sim.GraspWorld)."""
        keypoints = getattr(self.world, "ground_truth_keypoints", None)
        if keypoints is None:
            return None
        points = keypoints()[0]
        if not len(points):
            return None
        return float(np.min(np.hypot(points[:, 0] - u, points[:, 1] - v))) * self.workspace.resolution * 1000.0

    def _publish(self) -> None:
        self.acting.load_state_dict(self.qnet.state_dict())
        self.version += 1

    def step(self) -> AttemptRecord:
        t0 = time.perf_counter()
        cfg = self.config.exploration
        color, depth = self._state
        q = self.acting.predict(color, depth, self.learner.config.inference)
        epsilon = epsilon_at(cfg, self.attempts)
        excluded = self.rules.excluded(*depth.shape)
        excluded_count = len(self.rules.memory.failed) if excluded is not None else 0
        roi = None
        if self.explore_mask is not None:  # MoG: exploring grasps only inside the regions of interest
            roi = self.explore_mask(color, depth)
        action = choose_grasp(q, depth, self.workspace.resolution, self.config.actions, epsilon, self.rng, cfg.mode,
                              cfg.temperature, excluded, cfg.epsilon_start, roi)
        roi_pixels = None if roi is None else int(np.asarray(roi).sum())  # 0: nothing detected (logged)
        x, y, _ = self.workspace.pixel_to_point(action.u, action.v)
        angle = self.qnet.angle(action.rotation)
        on_object = bool(depth[action.v, action.u] > ON_OBJECT_HEIGHT_M)
        keypoint_mm = self._keypoint_distance_mm(action.u, action.v)
        result = self.world.execute_grasp(x, y, angle)
        next_color, next_depth = self.world.heightmap()
        success = bool(result.grasp_success)
        if result.scene_reset:  # the world reset itself (physics blow-up): the old scene is gone
            decision_terminal, reset, why = True, False, "the world reset the scene"
            self.rules.scene_was_reset()
        else:
            decision = self.rules.after_attempt(action.rotation, action.u, action.v, success,
                                                result.objects_remaining, depth, next_depth)
            decision_terminal, reset, why = decision.terminal, decision.reset, decision.why
        experience = Experience(
            id=f"{self.attempts:06d}", source=self.source, attempt=self.attempts, color_hm=color, depth_hm=depth,
            rotation_index=action.rotation, num_rotations=self.qnet.num_rotations, pixel=(action.u, action.v),
            reward=float(success), terminal=decision_terminal,
            next_color_hm=None if decision_terminal else next_color,
            next_depth_hm=None if decision_terminal else next_depth,
            model_version=self.version, epsilon=epsilon, explored=action.explored, predicted_q=action.q,
            failure_reason=int(result.failure_reason))
        stats: UpdateStats = self.learner.update(experience)
        if self.publication.after_update() and not stats.diverged:
            self._publish()
        if reset:
            self.world.reset()
            next_color, next_depth = self.world.heightmap()
        self._state = (next_color, next_depth)
        record = AttemptRecord(
            step=self.attempts, success=int(success), reward=float(success), explored=action.explored,
            epsilon=round(epsilon, 6), rotation=action.rotation, u=action.u, v=action.v, angle=round(angle, 6),
            predicted_q=round(action.q, 6), target=round(stats.target, 6), loss=_rounded(stats.loss),
            grad_norm=_rounded(stats.grad_norm), replayed=stats.replayed_index, diverged=stats.diverged,
            failure_reason=int(result.failure_reason), grasped_object=result.grasped_object,
            objects_remaining=int(result.objects_remaining), scene_reset=bool(reset or result.scene_reset),
            reset_why=why, excluded=excluded_count, on_object=on_object,
            keypoint_mm=None if keypoint_mm is None else round(keypoint_mm, 1),
            model_version=experience.model_version, roi_pixels=roi_pixels,
            seconds=round(time.perf_counter() - t0, 4), source=self.source, terminal=decision_terminal)
        self.attempts += 1
        return record


def _rounded(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None
