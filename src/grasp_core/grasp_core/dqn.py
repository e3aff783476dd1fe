"""DQN grasp learning over R rotations (seed III-C/D, VPG's trainer), readable top to bottom like CleanRL.

One update on a grasp experience (s, a = (rotation i, pixel (u, v)), r, s', terminal):
  1. target y = r                                if terminal (reset) or the grasp failed (VPG: a failed grasp
                                                  changes nothing, so its future reward is 0; without this
                                                  rule max Q(s') over 16 x H x W actions inflates every
                                                  failure's target and Q drifts up towards 1 / (1 - gamma))
             = r + gamma * max_{i', u', v'} Q(s')  otherwise (all rotations of s', eval mode, no gradient);
  2. forward s under rotation i only (and i + R/2 if `train_opposite_rotation`: the jaw is symmetric, VPG),
     smooth L1 between Q[i, v, u] and y on that one pixel, one SGD step;
  3. store the experience and its surprise |Q[i, v, u] - y| (the TD error before the step) in the replay;
  4. prioritised replay (VPG): draw one past experience whose reward differs from r, with a power law over
     surprise (`VPGReplaySampler`), recompute its target with the current network, take one SGD step on it and
     update its surprise.
Differences from VPG, on purpose: the replayed target is recomputed (VPG reuses the stored label), surprise is
measured at the executed action (VPG: |max Q(s) - label|), and inference runs BatchNorm in eval mode (running
statistics) so a Q map does not depend on how the rotations are batched.

Exploration (`select_action`): with probability epsilon a random rotation and a random valid pixel, else the
argmax over (rotation, v, u). The seed decays epsilon from 0.5 to 0.001 "in run time" without a formula; the
default here is exponential, eps(t) = max(end, start * (end / start) ** (t / decay_steps)) with decay_steps =
1000 (the seed trains 1000 steps): 0.5 at 0, 0.14 at 200, 0.022 at 500, 0.001 from 1000 on. `vpg` gives
max(0.5 * 0.9998 ** t, 0.1); `linear` and `constant` are there for experiments.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from grasp_core import checkpoint
from grasp_core.networks import TwoStreamFCN, heightmaps_to_tensors
from grasp_core.replay import Experience, ReplayStore, VPGReplaySampler
from grasp_core.rotation import InferenceOptions, RotatingQNetwork

EPSILON_SCHEDULES = ("exponential", "vpg", "linear", "constant")


@dataclass
class DQNConfig:
    gamma: float = 0.9  # seed (VPG default 0.5)
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 2e-5
    epsilon_schedule: str = "exponential"
    epsilon_start: float = 0.5
    epsilon_end: float = 0.001
    epsilon_decay_steps: int = 1000  # exponential / linear: steps to reach epsilon_end
    vpg_epsilon_decay: float = 0.9998  # vpg: max(start * decay ** t, floor)
    vpg_epsilon_floor: float = 0.1
    train_opposite_rotation: bool = False  # VPG also trains rotation i + R/2
    prioritized_replay: bool = True
    smooth_l1_beta: float = 1.0  # torch SmoothL1Loss default (Huber delta 1)
    bn_mode: str = "train"  # "train": batch statistics in updates; "frozen": BatchNorm always in eval mode
    bootstrap_failures: bool = False  # VPG: False, a failed grasp's target is its reward (no future term)
    # With rewards in {0, 1} the true Q lies in [0, 1 / (1 - gamma)]. Without a target network (VPG has none) the
    # max over 16 x H x W actions of an overestimating network feeds on itself (Q ~1e6 was seen in the node
    # graph); clipping the bootstrap term to that range keeps every target a possible Q value.
    clip_bootstrap: bool = True
    seed: int = 0
    inference: InferenceOptions = field(default_factory=InferenceOptions)

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.epsilon_schedule not in EPSILON_SCHEDULES:
            raise ValueError(f"unknown epsilon schedule {self.epsilon_schedule!r}; choose one of {EPSILON_SCHEDULES}")
        if not (0.0 <= self.epsilon_end <= self.epsilon_start <= 1.0):
            raise ValueError(f"need 0 <= epsilon_end <= epsilon_start <= 1, got {self.epsilon_end}, "
                             f"{self.epsilon_start}")
        if self.epsilon_decay_steps < 1:
            raise ValueError(f"epsilon_decay_steps must be >= 1, got {self.epsilon_decay_steps}")
        if self.bn_mode not in ("train", "frozen"):
            raise ValueError(f"bn_mode must be 'train' or 'frozen', got {self.bn_mode!r}")
        if self.lr <= 0:
            raise ValueError(f"learning rate must be > 0, got {self.lr}")
        if isinstance(self.inference, dict):
            self.inference = InferenceOptions(**self.inference)

    def as_dict(self) -> dict:
        return asdict(self)


def epsilon_at(config: DQNConfig, step: int) -> float:
    """Exploration probability after `step` updates (see the module docstring for the schedules)."""
    start, end = config.epsilon_start, config.epsilon_end
    if config.epsilon_schedule == "constant":
        return start
    if config.epsilon_schedule == "vpg":
        return max(start * config.vpg_epsilon_decay ** step, config.vpg_epsilon_floor)
    fraction = min(step / config.epsilon_decay_steps, 1.0)
    if config.epsilon_schedule == "linear":
        return start + (end - start) * fraction
    if end == 0.0:
        raise ValueError("the exponential schedule needs epsilon_end > 0")
    return max(end, start * (end / start) ** fraction)


@dataclass(frozen=True)
class Action:
    rotation: int
    u: int  # column
    v: int  # row
    q: float  # Q[rotation, v, u]
    explored: bool  # chosen at random (epsilon) rather than greedily


def select_action(q_maps, epsilon: float, rng: np.random.Generator, valid_mask: np.ndarray | None = None) -> Action:
    """Epsilon-greedy over Q maps (R, H, W); `valid_mask` (H, W) bool limits both the argmax and exploration."""
    q = np.asarray(q_maps.detach().cpu() if isinstance(q_maps, torch.Tensor) else q_maps, dtype=np.float64)
    if q.ndim != 3:
        raise ValueError(f"Q maps must be (R, H, W), got shape {q.shape}")
    if not np.all(np.isfinite(q)):
        raise ValueError("Q maps contain NaN or inf")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    rotations, height, width = q.shape
    mask = np.ones((height, width), bool) if valid_mask is None else np.asarray(valid_mask, bool)
    if mask.shape != (height, width):
        raise ValueError(f"valid mask must be (H, W) = {(height, width)}, got {mask.shape}")
    if not mask.any():
        raise ValueError("valid mask has no valid pixel")
    if rng.random() < epsilon:
        rotation = int(rng.integers(rotations))
        pixels = np.flatnonzero(mask)
        v, u = divmod(int(pixels[rng.integers(len(pixels))]), width)
        return Action(rotation, int(u), int(v), float(q[rotation, v, u]), True)
    masked = np.where(mask[None], q, -np.inf)
    rotation, v, u = np.unravel_index(int(np.argmax(masked)), q.shape)
    return Action(int(rotation), int(u), int(v), float(q[rotation, v, u]), False)


def td_target(reward: float, next_q_maps, terminal: bool, gamma: float, q_max: float | None = None) -> float:
    """r if terminal else r + gamma * max Q(s') (over every rotation and pixel), max Q(s') clipped to [0, q_max]."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if not math.isfinite(reward):
        raise ValueError(f"reward must be finite, got {reward}")
    if terminal:
        return float(reward)
    if next_q_maps is None:
        raise ValueError("a non-terminal transition needs the next state's Q maps")
    best = float(next_q_maps.max()) if isinstance(next_q_maps, torch.Tensor) else float(np.max(next_q_maps))
    if q_max is not None:
        best = min(max(best, 0.0), q_max)
    return float(reward) + gamma * best


def warm_start(qnet: RotatingQNetwork, source: str | os.PathLike | TwoStreamFCN) -> dict:
    """Copy a pretrained Q_s (checkpoint path or FCN) into the rotating network's trunks and head.

    Refuses a different trunk, different tensor shapes, or a checkpoint pretrained at another zoom (the trunk
    would see objects at another scale). Returns the checkpoint metadata ({} for an FCN).
    """
    if isinstance(source, TwoStreamFCN):
        if source.trunk_name != qnet.fcn.trunk_name:
            raise ValueError(f"cannot warm-start {qnet.fcn.trunk_name} trunks from a {source.trunk_name} Q_s")
        state = source.state_dict()
        checkpoint.check_compatible(qnet.fcn, state, "the pretrained Q_s")
        qnet.fcn.load_state_dict({k: v.clone() for k, v in state.items()})
        return {}
    _, record = checkpoint.load_model(source)
    if record["trunk"] != qnet.fcn.trunk_name:
        raise ValueError(f"cannot warm-start {qnet.fcn.trunk_name} trunks from {source}, a {record['trunk']} Q_s")
    if record.get("zoom", qnet.zoom) != qnet.zoom:
        raise ValueError(f"{source} was pretrained at zoom {record['zoom']}, the Q network uses zoom {qnet.zoom}")
    return checkpoint.load_weights_into(qnet.fcn, source)


@dataclass(frozen=True)
class UpdateStats:
    step: int  # updates done, this one included
    loss: float
    target: float
    predicted: float  # Q[i, v, u] before the step
    replay_index: int  # where the experience sits in the replay store (-1 without one)
    replayed_index: int | None = None  # the prioritised-replay sample trained on, if any
    replayed_loss: float | None = None


class DQNLearner:
    """Holds the Q network, its SGD optimiser, the step counter, the RNGs and the prioritised replay."""

    def __init__(self, qnet: RotatingQNetwork, config: DQNConfig | None = None, replay: ReplayStore | None = None,
                 profile: str | None = None):
        self.qnet = qnet
        self.config = config or DQNConfig()
        if self.config.prioritized_replay and replay is None:
            raise ValueError("prioritised replay needs a ReplayStore (or set prioritized_replay=False)")
        if self.config.train_opposite_rotation and qnet.num_rotations % 2:
            raise ValueError(f"train_opposite_rotation needs an even number of rotations, got {qnet.num_rotations}")
        self.replay = replay
        self.profile = profile
        self.optimizer = torch.optim.SGD(qnet.parameters(), lr=self.config.lr, momentum=self.config.momentum,
                                         weight_decay=self.config.weight_decay)
        self.sampler = VPGReplaySampler(seed=self.config.seed)
        self.rng = np.random.default_rng(self.config.seed)  # exploration draws of `act`
        self.step = 0
        if replay is not None:  # a store that already holds experiences: register them with unknown surprise
            for index, reward in enumerate(replay.rewards):
                self.sampler.add(index, float(reward), 0.0)

    # -- acting ----------------------------------------------------------------------------------------------
    @property
    def epsilon(self) -> float:
        return epsilon_at(self.config, self.step)

    def q_maps(self, color_hm: np.ndarray, depth_hm: np.ndarray) -> np.ndarray:
        """Q maps float32 (R, H, W) of one state (eval mode, no gradient)."""
        return self.qnet.predict(color_hm, depth_hm, self.config.inference)

    def act(self, color_hm: np.ndarray, depth_hm: np.ndarray, valid_mask: np.ndarray | None = None) -> Action:
        return select_action(self.q_maps(color_hm, depth_hm), self.epsilon, self.rng, valid_mask)

    # -- learning --------------------------------------------------------------------------------------------
    def _ends_here(self, experience: Experience) -> bool:
        """No future term: a reset (terminal) or, as in VPG, a failed grasp."""
        return experience.terminal or (experience.reward <= 0 and not self.config.bootstrap_failures)

    @property
    def _q_max(self) -> float | None:
        gamma = self.config.gamma
        return 1.0 / (1.0 - gamma) if self.config.clip_bootstrap and gamma < 1.0 else None

    def target(self, experience: Experience) -> float:
        if self._ends_here(experience):
            return td_target(experience.reward, None, True, self.config.gamma)
        next_q = self.q_maps(experience.next_color_hm, experience.next_depth_hm)
        return td_target(experience.reward, next_q, False, self.config.gamma, self._q_max)

    def _gradient_step(self, experience: Experience, target: float) -> tuple[float, float]:
        """One SGD step on Q[i, v, u] (and its opposite rotation); returns (loss, Q[i, v, u] before the step)."""
        if experience.num_rotations != self.qnet.num_rotations:
            raise ValueError(f"experience {experience.id} has {experience.num_rotations} rotations, the network "
                             f"{self.qnet.num_rotations}")
        rotations = [experience.rotation_index]
        if self.config.train_opposite_rotation:
            rotations.append((experience.rotation_index + self.qnet.num_rotations // 2) % self.qnet.num_rotations)
        color, depth = heightmaps_to_tensors(experience.color_hm, experience.depth_hm)
        device = next(self.qnet.parameters()).device
        self.qnet.train(self.config.bn_mode == "train")
        q = self.qnet(color.to(device), depth.to(device), rotations)
        u, v = experience.pixel
        predicted = q[:, v, u]
        loss = F.smooth_l1_loss(predicted, torch.full_like(predicted, target), reduction="sum",
                                beta=self.config.smooth_l1_beta)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.qnet.eval()
        return float(loss.detach()), float(predicted[0].detach())

    def update(self, experience: Experience, next_q_maps: np.ndarray | None = None) -> UpdateStats:
        """Train on one new experience, store it, then replay one past experience (see the module docstring).

        `next_q_maps`: Q(s') if the caller already computed it to pick the next action (saves a forward pass).
        """
        if next_q_maps is not None and not self._ends_here(experience):
            target = td_target(experience.reward, next_q_maps, False, self.config.gamma, self._q_max)
        else:
            target = self.target(experience)
        loss, predicted = self._gradient_step(experience, target)
        surprise = abs(predicted - target)
        index = -1
        if self.replay is not None:
            index = self.replay.append(experience)  # an id stored before returns its old index
            if index < len(self.sampler):
                self.sampler.update_surprise(index, surprise)
            else:
                self.sampler.add(index, experience.reward, surprise)
        replayed, replayed_loss = None, None
        if self.config.prioritized_replay:
            replayed = self.sampler.sample(experience.reward, exclude=index)
            if replayed is not None:
                past = self.replay[replayed]
                past_target = self.target(past)
                replayed_loss, past_predicted = self._gradient_step(past, past_target)
                self.sampler.update_surprise(replayed, abs(past_predicted - past_target))
        self.step += 1
        return UpdateStats(self.step, loss, target, predicted, index, replayed, replayed_loss)

    # -- checkpoints -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"step": self.step, "epsilon": self.epsilon, "optimizer": self.optimizer.state_dict(),
                "sampler": self.sampler.state_dict(), "rng": self.rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(), "replay_length": len(self.replay) if self.replay else 0,
                "config": self.config.as_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.replay is not None and len(self.replay) < state["replay_length"]:
            raise ValueError(f"the replay store holds {len(self.replay)} experiences but the saved learner had "
                             f"seen {state['replay_length']}: wrong or damaged replay directory")
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        if self.replay is not None:  # experiences appended after the save: register them
            for index in range(len(self.sampler), len(self.replay)):
                self.sampler.add(index, float(self.replay.metadata(index)["reward"]), 0.0)
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])

    def save(self, path: str | os.PathLike, version: int | None = None) -> Path:
        """Weights + metadata at `path` (.safetensors), training state beside it (`x.state.safetensors`)."""
        path = checkpoint.save_model(path, self.qnet.fcn, num_rotations=self.qnet.num_rotations, zoom=self.qnet.zoom,
                                     back_rotation=self.qnet.back_rotation, profile=self.profile, stage="dqn",
                                     version=self.step if version is None else version, step=self.step,
                                     config=self.config.as_dict())
        checkpoint.save_training_state(checkpoint.training_state_path(path), self.state_dict())
        return path

    def load(self, path: str | os.PathLike) -> dict:
        """Resume from `save(path)`: weights, optimiser, step, epsilon, replay sampler and RNGs."""
        _, record = checkpoint.load_model(path)
        if record["num_rotations"] != self.qnet.num_rotations or record.get("zoom", 1) != self.qnet.zoom:
            raise checkpoint.CheckpointError(
                f"{path} is for {record['num_rotations']} rotations at zoom {record.get('zoom')}, this network "
                f"has {self.qnet.num_rotations} at zoom {self.qnet.zoom}")
        checkpoint.load_weights_into(self.qnet.fcn, path)
        if self.config.inference.channels_last:  # as the saved learner's weights were after its first q_maps
            self.qnet.to(memory_format=torch.channels_last)
        self.load_state_dict(checkpoint.load_training_state(checkpoint.training_state_path(path)))
        return record
