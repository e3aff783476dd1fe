"""DQN grasp learning over R rotations (seed III-C/D, VPG's trainer), readable top to bottom like CleanRL.

One update after a grasp experience (s, a = (rotation i, pixel (u, v)), r, s', terminal):
  1. target y = r                                if terminal (reset) or the grasp failed (VPG: a failed grasp
                                                  changes nothing, so its future reward is 0)
             = r + gamma * max_{i', u', v'} Q(s')  otherwise (all rotations of s', eval mode, no gradient),
               max Q(s') clipped to the possible range [0, 1 / (1 - gamma)] (rewards are 0 or 1);
  2. store the experience in the replay;
  3. one gradient step on a batch: the new experience plus `batch_size - 1` replayed ones, each forwarded under
     its own rotation (and i + R/2 if `train_opposite_rotation`: the jaw is symmetric, VPG), loss between
     Q[i, v, u] and y on that one pixel (summed over its rotations, averaged over the batch);
  4. `replay_steps` more steps on batches of replayed experiences only.
Replayed experiences are drawn by `replay_sampler`: `vpg` (VPG's prioritised replay: a past experience whose
reward differs from the current one, power law over surprise |Q - y|; slots of a batch alternate the reward
asked for) or `uniform`. Their targets are recomputed with the current network (VPG reuses the stored label).

The seed's exact setting is batch_size 1, replay_steps 1 with the vpg sampler, SGD lr 1e-4 (momentum 0.9,
weight decay 2e-5), smooth L1, gamma 0.9 and BatchNorm in train mode (`grasp_core.learning.PRESETS["seed"]`).
Options for the ablations: Adam, gradient clipping, BatchNorm frozen (running statistics in updates too, as at
inference), a target network (optionally double DQN), and head-only updates for the first N updates.

Jaw geometry (`jaw_geometry`): the head also scores fixed maps of what the jaw would meet (grasp_core.jaw_geometry)
through a zero-initialised 1x1 conv, added when the learner starts (so the warm start's Q is unchanged) and
trained at its own rate `geometry_lr`: four weights that must reach a few units from ~100 labels, where the head's
thousands move by lr. With `angle_source="jaw_geometry"` the head's term is averaged over all R rotations at the
grasp's pixel (grasp_core.rotation), so the head learns where to grasp and the geometry alone at which angle; each
experience's trunk features are then kept at its pixel's score cells under every rotation.

With gamma 0 the target is the reward alone (a grasp-only episode with a 0/1 reward is a contextual bandit) and
`loss="bce"` treats Q as the logit of the success probability: a success can only raise its Q and a failure only
lower it. Under a regression loss a success whose Q is above 1 (half the peaks of a calibrated Q_s) is pushed
down, and the greedy argmax walks away from what just worked.

Anchoring (`anchor_weight` > 0): each experience labels one pixel, and a network trained on single pixels
drifts wherever it has no label (the greedy argmax then wanders to untried table or the workspace border).
The loss therefore adds anchor_weight * mean over the batch's score cells of (score - score_0)^2, score_0 being
the warm-start network's (the key-point prior): where grasps were tried the TD loss wins, elsewhere the prior
is kept.

A divergence guard keeps every model the learner hands out finite: an update round whose loss, gradients or
resulting weights are not finite, or after which the new experience's Q map (a probe) is not finite or exceeds
PROBE_Q_LIMIT, is undone (weights and optimiser state restored) and reported in its stats.
"""
from __future__ import annotations

import copy
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from grasp_core import checkpoint
from grasp_core.action_space import ActionSpaceConfig
from grasp_core.networks import TwoStreamFCN
from grasp_core.replay import Experience, ReplayStore, VPGReplaySampler
from grasp_core.rotation import ANGLE_SOURCES, InferenceOptions, RotatingQNetwork

OPTIMIZERS = ("sgd", "adam")
LOSSES = ("smooth_l1", "mse", "bce")
BCE_LOGITS = (-2.944, 1.099)  # a calibrated Q_s's background 0 / peak 1 become p = 0.05 / 0.75 under "bce"
REPLAY_SAMPLERS = ("vpg", "uniform")
TRAINABLE = ("all", "head")
PROBE_Q_LIMIT = 1e4  # |Q| above this on a probe heightmap is a divergence (true Q lies in [0, 1 / (1 - gamma)])
FEATURE_CACHE_DTYPE = torch.bfloat16  # storage only (no bf16 arithmetic): half the memory of fp32


def inference_for_training(options: InferenceOptions, trainable: str) -> InferenceOptions:
    """Trunks that are trained change with every update; ONNX Runtime would re-export them each time (seconds,
    more than it saves), so they run in torch. Trunks kept as pretrained ("head") keep the options as they are."""
    if trainable != "head" and options.backend == "onnxruntime":
        return replace(options, backend="torch")
    return options


@dataclass
class DQNConfig:
    gamma: float = 0.9  # seed (VPG default 0.5)
    optimizer: str = "sgd"
    lr: float = 1e-4
    momentum: float = 0.9  # sgd
    weight_decay: float = 2e-5
    loss: str = "smooth_l1"  # "bce": Q is the logit of the success probability (gamma 0 only; module docstring)
    smooth_l1_beta: float = 1.0  # torch SmoothL1Loss default (Huber delta 1)
    grad_clip: float = 0.0  # max gradient norm per step (0: no clipping)
    bn_mode: str = "train"  # "train": batch statistics in updates; "frozen": BatchNorm always in eval mode
    batch_size: int = 1  # experiences per gradient step (the new one + batch_size - 1 replayed)
    replay_steps: int = 1  # more gradient steps per attempt on replayed batches (seed: VPG's one replay)
    replay_sampler: str = "vpg"
    train_opposite_rotation: bool = False  # VPG also trains rotation i + R/2
    bootstrap_failures: bool = False  # VPG: False, a failed grasp's target is its reward (no future term)
    clip_bootstrap: bool = True  # max Q(s') clipped to [0, 1 / (1 - gamma)]
    target_update_every: int = 0  # > 0: max Q(s') from a target network copied every this many updates
    double_dqn: bool = False  # with a target network: argmax from the online network, value from the target
    head_only_updates: int = 0  # the first this many updates train the head only (trunks kept as pretrained)
    trainable: str = "all"  # "head": the trunks stay as pretrained for good; their features are cached
    anchor_weight: float = 0.0  # > 0: also pull every score cell towards the warm start's (module docstring)
    jaw_geometry: bool = False  # the head also scores the jaw-geometry maps (module docstring)
    geometry_lr: float = 0.1  # learning rate of the geometry head's weights
    angle_source: str = "network"  # "jaw_geometry": only the geometry term differs between angles (module docstring)
    seed: int = 0
    inference: InferenceOptions = field(default_factory=InferenceOptions)

    def __post_init__(self) -> None:
        if isinstance(self.inference, dict):
            self.inference = InferenceOptions(**self.inference)
        self.inference = inference_for_training(self.inference, self.trainable)
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.replay_sampler not in REPLAY_SAMPLERS:
            raise ValueError(f"replay_sampler must be one of {REPLAY_SAMPLERS}, got {self.replay_sampler!r}")
        if self.bn_mode not in ("train", "frozen"):
            raise ValueError(f"bn_mode must be 'train' or 'frozen', got {self.bn_mode!r}")
        if not (math.isfinite(self.geometry_lr) and self.geometry_lr > 0):
            raise ValueError(f"geometry_lr must be > 0, got {self.geometry_lr}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate must be > 0, got {self.lr}")
        if not (math.isfinite(self.anchor_weight) and self.anchor_weight >= 0):
            raise ValueError(f"anchor_weight must be >= 0, got {self.anchor_weight}")
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise ValueError(f"grad_clip must be >= 0 (0: off), got {self.grad_clip}")
        for name in ("batch_size",):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        for name in ("replay_steps", "target_update_every", "head_only_updates"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        if self.trainable not in TRAINABLE:
            raise ValueError(f"trainable must be one of {TRAINABLE}, got {self.trainable!r}")
        if self.loss == "bce" and self.gamma != 0.0:
            raise ValueError("loss 'bce' treats Q as the logit of the success probability: it needs gamma 0")
        if self.angle_source not in ANGLE_SOURCES:
            raise ValueError(f"angle_source must be one of {ANGLE_SOURCES}, got {self.angle_source!r}")
        if self.angle_source == "jaw_geometry" and not (
                self.jaw_geometry and self.trainable == "head" and self.bn_mode == "frozen" and not self.anchor_weight):
            raise ValueError("angle_source 'jaw_geometry' needs jaw_geometry=true, trainable='head', bn_mode='frozen' "
                             "and anchor_weight=0 (the head is trained on cached features at the grasp's pixel); "
                             "set dqn.angle_source=network to train otherwise")
        if self.double_dqn and not self.target_update_every:
            raise ValueError("double_dqn needs a target network (target_update_every > 0)")

    @property
    def uses_replay(self) -> bool:
        return self.batch_size > 1 or self.replay_steps > 0

    def as_dict(self) -> dict:
        return asdict(self)


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
    for key, default, what in (("pad", "diagonal", "padding"), ("input_sampling", "nearest", "input sampling")):
        if record.get(key, default) != getattr(qnet, key):
            raise ValueError(f"{source} was pretrained with {record.get(key, default)!r} {what}, the Q network uses "
                             f"{getattr(qnet, key)!r}: pretrain it again with this profile")
    return checkpoint.load_weights_into(qnet.fcn, source)


@dataclass(frozen=True)
class UpdateStats:
    step: int  # updates done, this one included
    loss: float  # of the step on the new experience (its batch)
    target: float
    predicted: float  # Q[i, v, u] of the new experience before the step
    replay_index: int  # where the experience sits in the replay store (-1 without one)
    replayed_index: int | None = None  # the first replayed experience trained on, if any
    replayed_loss: float | None = None  # mean loss of the replay-only steps
    grad_norm: float = 0.0  # of the step on the new experience, before clipping
    diverged: bool = False  # the round was undone: weights and optimiser are as before it


class DivergenceError(FloatingPointError):
    """An update produced a non-finite loss, gradient or weight; the learner undid it."""


class DQNLearner:
    """Holds the Q network, its optimiser, the step counter, the RNGs and the replay sampler."""

    def __init__(self, qnet: RotatingQNetwork, config: DQNConfig | None = None, replay: ReplayStore | None = None,
                 profile: str | None = None, actions: ActionSpaceConfig | None = None):
        """`actions`: the action space the loop chooses grasps in (its learning preset's), recorded in every
        checkpoint so that the affordance node serves the model with it (None: none recorded)."""
        self.qnet = qnet
        self.actions = actions
        self.config = config or DQNConfig()
        if self.config.uses_replay and replay is None:
            raise ValueError("replayed updates need a ReplayStore (or set batch_size=1 and replay_steps=0)")
        if self.config.train_opposite_rotation and qnet.num_rotations % 2:
            raise ValueError(f"train_opposite_rotation needs an even number of rotations, got {qnet.num_rotations}")
        self.replay = replay
        self.profile = profile
        self._set_angle_source(qnet, resumed=self._add_jaw_geometry(qnet, profile))
        if self.config.loss == "bce":  # Q becomes a logit: move the warm start's 0 / 1 scale to p = 0.05 / 0.75
            with torch.no_grad():
                conv = qnet.fcn.head.conv1
                low, high = BCE_LOGITS
                conv.weight.mul_(high - low)
                conv.bias.mul_(high - low).add_(low)
        self.optimizer = self._make_optimizer()
        self.sampler = VPGReplaySampler(seed=self.config.seed)
        self.rng = np.random.default_rng(self.config.seed)  # uniform replay draws
        self.step = 0
        self.target_net: RotatingQNetwork | None = None
        self._cache: dict[int, Experience] = {}  # decoded replay records (the store reads them from disk)
        self._features: dict[tuple[str, int], torch.Tensor] = {}  # trainable="head": frozen trunk features
        self._pixel_features: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # angle_source="jaw_geometry"
        self._anchor: RotatingQNetwork | None = None  # the warm-start network, for anchor_weight > 0
        if self.config.anchor_weight > 0:
            self._anchor = copy.deepcopy(qnet).eval()
            for p in self._anchor.parameters():
                p.requires_grad_(False)
        if replay is not None:  # a store that already holds experiences: register them with unknown surprise
            for index, reward in enumerate(replay.rewards):
                self.sampler.add(index, float(reward), 0.0)

    def _add_jaw_geometry(self, qnet: RotatingQNetwork, profile: str | None) -> bool:
        """Give the network its jaw-geometry head if the config asks for one; True if it had one already (a
        network resumed from the learner's checkpoint)."""
        has_geometry = qnet.fcn.jaw_geometry is not None
        if not self.config.jaw_geometry:
            if has_geometry:
                raise ValueError("this network scores jaw geometry but the DQN config has jaw_geometry=False: "
                                 "resume it with dqn.jaw_geometry=true")
            return False
        if has_geometry:
            return True
        if profile is None:
            raise ValueError("jaw_geometry needs the heightmap resolution: pass profile=, or call "
                             "qnet.enable_jaw_geometry(resolution_m) before making the learner")
        from grasp_core.profiles import get_profile  # profiles builds networks: imported when needed
        qnet.enable_jaw_geometry(get_profile(profile).resolution)
        return False

    def _set_angle_source(self, qnet: RotatingQNetwork, resumed: bool) -> None:
        """A warm start takes the config's angle source; a resumed network must already have it (changing it
        would change every Q it learned)."""
        wanted = self.config.angle_source
        if qnet.angle_source == wanted:
            return
        if resumed or qnet.angle_source != "network":
            raise ValueError(f"this network takes its angle from {qnet.angle_source!r} but the DQN config has "
                             f"angle_source={wanted!r}: resume it with dqn.angle_source={qnet.angle_source}")
        qnet.set_angle_source(wanted)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        fcn = self.qnet.fcn
        geometry = [] if fcn.geometry_head is None else list(fcn.geometry_head.parameters())
        others = [p for p in (fcn.head_parameters() if c.trainable == "head" else self.qnet.parameters())
                  if all(p is not g for g in geometry)]
        groups = [{"params": others}] + ([{"params": geometry, "lr": c.geometry_lr}] if geometry else [])
        if c.optimizer == "adam":
            return torch.optim.Adam(groups, lr=c.lr, weight_decay=c.weight_decay)
        return torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)

    @torch.no_grad()
    def _cached_features(self, experiences: list[Experience], rotations: list[int]) -> torch.Tensor:
        """Trunk features (N, 2C, h, w) of each (experience, rotation); the trunks are frozen, so they are
        computed once (eval mode, by the inference backend: the trunks the acting network runs) and kept."""
        missing = [k for k, key in enumerate(zip((e.id for e in experiences), rotations))
                   if key not in self._features]
        if missing:
            color = torch.from_numpy(np.stack([experiences[k].color_hm for k in missing])).permute(0, 3, 1, 2)
            depth = torch.from_numpy(np.stack([experiences[k].depth_hm for k in missing]).astype(np.float32))
            self.qnet.eval()
            features = self.qnet.trunk_features(color.float().div_(255.0), depth.unsqueeze(1),
                                                [rotations[k] for k in missing],
                                                backend=self.config.inference.backend)
            for k, f in zip(missing, features):
                self._features[(experiences[k].id, rotations[k])] = f.to(FEATURE_CACHE_DTYPE)
        return torch.stack([self._features[(e.id, r)] for e, r in zip(experiences, rotations)]).float()

    @torch.no_grad()
    def _features_at_pixels(self, experiences: list[Experience]) -> tuple[torch.Tensor, torch.Tensor]:
        """angle_source "jaw_geometry": each experience's features at its pixel's score cells under all R
        rotations, (N, R, C, K), and the cells' readout weights (N, R, K); computed once per experience and kept
        (the trunks are frozen). K is at most a few cells, so this keeps less than one full map would."""
        rotations = list(range(self.qnet.num_rotations))
        for experience in experiences:
            if experience.id in self._pixel_features:
                continue
            color = torch.from_numpy(experience.color_hm).permute(2, 0, 1)[None].float().div_(255.0)
            depth = torch.from_numpy(experience.depth_hm.astype(np.float32))[None, None]
            self.qnet.eval()
            features = self.qnet.trunk_features(color, depth, rotations, backend=self.config.inference.backend)
            height, width = experience.depth_hm.shape
            cells, weights = self.qnet.readout(rotations, [experience.pixel] * len(rotations), height, width,
                                               features.shape[-2:])
            picked = features.flatten(2).gather(2, cells[:, None, :].expand(-1, features.shape[1], -1))
            self._pixel_features[experience.id] = (picked.to(FEATURE_CACHE_DTYPE), weights)
        kept = [self._pixel_features[e.id] for e in experiences]
        k = max(f.shape[-1] for f, _ in kept)  # pixels differ in how many cells they read: pad with zero weight
        return (torch.stack([F.pad(f, (0, k - f.shape[-1])) for f, _ in kept]).float(),
                torch.stack([F.pad(w, (0, k - w.shape[-1])) for _, w in kept]))

    def _angle_pooled_q(self, experiences: list[Experience], rotations: list[int]) -> torch.Tensor:
        """Q (N,) of each (experience, rotation) at its pixel under angle_source "jaw_geometry": the head's term
        averaged over all rotations plus the geometry term of that rotation (RotatingQNetwork.pool_angles).
        The head runs once per experience (a batch holds each one under both jaw orientations), on all cells as
        one long 1x1 convolution: 3x faster than as many tiny maps."""
        unique = list({e.id: e for e in experiences}.values())
        row_of = {e.id: k for k, e in enumerate(unique)}
        features, weights = self._features_at_pixels(unique)  # (U, R, C, K), (U, R, K)
        u, r, channels, k = features.shape
        head, geometry = self.qnet.fcn.score_parts(features.permute(2, 0, 1, 3).reshape(1, channels, u * r * k, 1))
        head_q = (head.view(u, r, k).float() * weights).sum(-1).mean(1)  # (U,): the same at every angle
        geometry_q = (geometry.view(u, r, k).float() * weights).sum(-1)  # (U, R)
        rows = torch.tensor([row_of[e.id] for e in experiences])
        return head_q[rows] + geometry_q[rows, torch.tensor(rotations)]

    # -- targets ---------------------------------------------------------------------------------------------
    def q_maps(self, color_hm: np.ndarray, depth_hm: np.ndarray) -> np.ndarray:
        """Q maps float32 (R, H, W) of one state (eval mode, no gradient)."""
        return self.qnet.predict(color_hm, depth_hm, self.config.inference)

    def _ends_here(self, experience: Experience) -> bool:
        """No future term: a reset (terminal) or, as in VPG, a failed grasp."""
        return experience.terminal or (experience.reward <= 0 and not self.config.bootstrap_failures)

    @property
    def _q_max(self) -> float | None:
        gamma = self.config.gamma
        return 1.0 / (1.0 - gamma) if self.config.clip_bootstrap and gamma < 1.0 else None

    def _next_value_maps(self, experience: Experience) -> np.ndarray:
        c = self.config
        if c.target_update_every == 0:
            return self.q_maps(experience.next_color_hm, experience.next_depth_hm)
        if self.target_net is None or self.step % c.target_update_every == 0:
            self.target_net = copy.deepcopy(self.qnet)
        target_maps = self.target_net.predict(experience.next_color_hm, experience.next_depth_hm, c.inference)
        if not c.double_dqn:
            return target_maps
        online = self.q_maps(experience.next_color_hm, experience.next_depth_hm)
        return np.full_like(target_maps, target_maps.flat[int(np.argmax(online))])

    def target(self, experience: Experience, next_q_maps: np.ndarray | None = None) -> float:
        if self._ends_here(experience) or self.config.gamma == 0.0:
            return td_target(experience.reward, None, True, self.config.gamma)
        if next_q_maps is None or self.config.target_update_every:
            next_q_maps = self._next_value_maps(experience)
        return td_target(experience.reward, next_q_maps, False, self.config.gamma, self._q_max)

    # -- learning --------------------------------------------------------------------------------------------
    def _experience(self, index: int) -> Experience:
        if index not in self._cache:
            self._cache[index] = self.replay[index]
        return self._cache[index]

    def _draw(self, count: int, reward: float, exclude: int) -> list[int]:
        """Replay indices to train on (module docstring); fewer when the store has too few candidates."""
        if self.replay is None or count <= 0:
            return []
        drawn = []
        for slot in range(count):
            if self.config.replay_sampler == "vpg":
                asked = reward if slot % 2 == 0 else 1.0 - reward  # VPG's rule: the other outcome
                index = self.sampler.sample(asked, exclude=exclude)
            else:  # uniform over every stored experience but the new one (and never a quarantined record)
                candidates = self.sampler.drawable()
                candidates = candidates[candidates != exclude]
                index = int(candidates[self.rng.integers(len(candidates))]) if len(candidates) else None
            if index is not None:
                drawn.append(index)
        return drawn

    def _gradient_step(self, batch: list[tuple[Experience, float]]) -> tuple[float, list[float], float]:
        """One optimiser step on Q[i, v, u] of every (experience, target); returns (loss, predictions before the
        step, gradient norm before clipping). Raises DivergenceError before stepping on a non-finite loss."""
        c = self.config
        rotations, targets, items = [], [], []  # one entry per trained (experience, rotation)
        for experience, target in batch:
            if experience.num_rotations != self.qnet.num_rotations:
                raise ValueError(f"experience {experience.id} has {experience.num_rotations} rotations, the "
                                 f"network {self.qnet.num_rotations}")
            own = [experience.rotation_index]
            if c.train_opposite_rotation:
                own.append((experience.rotation_index + self.qnet.num_rotations // 2) % self.qnet.num_rotations)
            for r in own:
                rotations.append(r)
                targets.append(target)
                items.append(experience)
        if c.angle_source == "jaw_geometry":
            self.qnet.eval()
            predicted = self._angle_pooled_q(items, rotations)
            return self._step_on(predicted, targets, len(batch), anchor_loss=None)
        pixels = [e.pixel for e in items]
        height, width = items[0].color_hm.shape[:2]
        if c.trainable == "head":
            features = self._cached_features(items, rotations)
        else:
            device = next(self.qnet.parameters()).device
            color = torch.from_numpy(np.stack([e.color_hm for e in items])).permute(0, 3, 1, 2).float().div_(255.0)
            depth = torch.from_numpy(np.stack([e.depth_hm for e in items]).astype(np.float32)).unsqueeze(1)
            color, depth = color.to(device), depth.to(device)
        self.qnet.train(c.bn_mode == "train")
        try:
            if c.trainable != "head":
                features = self.qnet.trunk_features(color, depth, rotations)
            # Q is needed at one pixel per map: a few score cells each (RotatingQNetwork.readout). With frozen
            # BatchNorm the 1x1-conv head scores each cell on its own, so it runs on those cells only; batch
            # statistics (bn_mode "train") and the anchor loss need every cell.
            cells, weights = self.qnet.readout(rotations, pixels, height, width, features.shape[-2:])
            cells, weights = cells.to(features.device), weights.to(features.device)
            if c.bn_mode == "frozen" and self._anchor is None:
                picked = features.flatten(2).gather(2, cells[:, None, :].expand(-1, features.shape[1], -1))
                cell_scores = self.qnet.fcn.score(picked.unsqueeze(-1))[:, 0, :, 0]
            else:
                score = self.qnet.fcn.score(features)
                cell_scores = score.flatten(1).gather(1, cells)
        finally:
            self.qnet.eval()
        predicted = (cell_scores.float() * weights).sum(1)
        anchor_loss = None
        if self._anchor is not None:
            with torch.no_grad():
                anchor_features = features if c.trainable == "head" else \
                    self._anchor.trunk_features(color, depth, rotations)
                anchor_score = self._anchor.fcn.score(anchor_features)
            anchor_loss = F.mse_loss(score.float(), anchor_score.float())
        return self._step_on(predicted, targets, len(batch), anchor_loss)

    def _step_on(self, predicted: torch.Tensor, targets: list[float], batch_size: int,
                 anchor_loss: torch.Tensor | None) -> tuple[float, list[float], float]:
        """The loss of `predicted` Q against `targets`, one clipped optimiser step; see _gradient_step."""
        c = self.config
        wanted = torch.tensor(targets, dtype=predicted.dtype, device=predicted.device)
        if c.loss == "mse":
            per_pixel = F.mse_loss(predicted, wanted, reduction="none")
        elif c.loss == "bce":
            per_pixel = F.binary_cross_entropy_with_logits(predicted, wanted, reduction="none")
        else:
            per_pixel = F.smooth_l1_loss(predicted, wanted, reduction="none", beta=c.smooth_l1_beta)
        loss = per_pixel.sum() / batch_size  # summed over an experience's rotations, mean over experiences
        if anchor_loss is not None:
            loss = loss + c.anchor_weight * anchor_loss
        if not torch.isfinite(loss):
            raise DivergenceError(f"non-finite loss {float(loss.detach())} (predictions {predicted.tolist()})")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.step < c.head_only_updates:
            for name, p in self.qnet.named_parameters():
                if not name.startswith(("fcn.head.", "fcn.geometry_head.")):
                    p.grad = None
        params = [p for p in self.qnet.parameters() if p.grad is not None]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, c.grad_clip if c.grad_clip > 0 else float("inf")))
        if not math.isfinite(grad_norm):
            raise DivergenceError(f"non-finite gradient norm {grad_norm}")
        self.optimizer.step()
        values = torch.sigmoid(predicted.detach()) if c.loss == "bce" else predicted.detach()
        per_experience = values.view(batch_size, -1)[:, 0].tolist()  # compared with the targets (surprise)
        return float(loss.detach()), per_experience, grad_norm

    def _snapshot(self) -> tuple[dict, dict]:
        """Weights, buffers and optimiser state, cloned (to undo a diverging update)."""
        weights = {k: v.detach().clone() for k, v in self.qnet.state_dict().items()}
        state = self.optimizer.state_dict()
        optimizer = {"state": {k: {n: (t.clone() if isinstance(t, torch.Tensor) else t) for n, t in v.items()}
                               for k, v in state["state"].items()},
                     "param_groups": copy.deepcopy(state["param_groups"])}
        return weights, optimizer

    def _restore(self, saved: tuple[dict, dict]) -> None:
        self.qnet.load_state_dict(saved[0])
        self.optimizer.load_state_dict(saved[1])

    @torch.no_grad()
    def _check_probe(self, experience: Experience) -> None:
        """Finite weights can still give inf or NaN Q: run the new experience's state (its rotation, eval mode)."""
        rotations = [experience.rotation_index]
        height, width = experience.depth_hm.shape
        if self.config.angle_source == "jaw_geometry":  # Q of every angle at its pixel (the head is per cell)
            q = self._angle_pooled_q([experience] * self.qnet.num_rotations, list(range(self.qnet.num_rotations)))
        elif self.config.trainable == "head":
            q = self.qnet.q_from_features(self._cached_features([experience], rotations), rotations, height, width)
        else:
            color = torch.from_numpy(experience.color_hm).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
            depth = torch.from_numpy(experience.depth_hm.astype(np.float32))[None, None]
            q = self.qnet(color, depth, rotations)
        peak = float(q.abs().max())
        if not (math.isfinite(peak) and peak <= PROBE_Q_LIMIT):
            raise DivergenceError(f"Q on the probe heightmap reaches {peak:g} (limit {PROBE_Q_LIMIT:g})")

    def _weights_finite(self) -> bool:
        return all(bool(torch.isfinite(t).all()) for t in self.qnet.state_dict().values() if t.is_floating_point())

    def update(self, experience: Experience, next_q_maps: np.ndarray | None = None) -> UpdateStats:
        """Train on one new experience, store it, and replay (module docstring).

        `next_q_maps`: Q(s') if the caller already computed it with this network (saves a forward pass).
        A diverging round is undone (see DivergenceError) and reported with `diverged=True`.
        """
        c = self.config
        target = self.target(experience, next_q_maps)
        index = -1
        if self.replay is not None:
            index = self.replay.append(experience)  # an id stored before returns its old index
            self._cache[index] = experience
            if index >= len(self.sampler):
                self.sampler.add(index, experience.reward, 0.0)
        saved = self._snapshot()
        try:
            replayed = self._draw(c.batch_size - 1, experience.reward, index)
            batch = [(experience, target)] + [(self._experience(i), self.target(self._experience(i)))
                                              for i in replayed]
            loss, predictions, grad_norm = self._gradient_step(batch)
            surprise_of = dict(zip([index] + replayed, (abs(p - t) for p, (_, t) in zip(predictions, batch))))
            replay_losses, first_replayed = [], (replayed[0] if replayed else None)
            for _ in range(c.replay_steps):
                drawn = self._draw(c.batch_size, experience.reward, index)
                if not drawn:
                    break
                first_replayed = drawn[0] if first_replayed is None else first_replayed
                past = [(self._experience(i), self.target(self._experience(i))) for i in drawn]
                replay_loss, past_predictions, _ = self._gradient_step(past)
                replay_losses.append(replay_loss)
                surprise_of.update(zip(drawn, (abs(p - t) for p, (_, t) in zip(past_predictions, past))))
            if not self._weights_finite():
                raise DivergenceError("non-finite weights after the update")
            self._check_probe(experience)
        except DivergenceError:
            self._restore(saved)
            self.step += 1
            return UpdateStats(self.step, float("nan"), target, float("nan"), index, diverged=True)
        for i, surprise in surprise_of.items():
            if 0 <= i < len(self.sampler):
                self.sampler.update_surprise(i, surprise)
        self.step += 1
        return UpdateStats(self.step, loss, target, predictions[0], index, first_replayed,
                           float(np.mean(replay_losses)) if replay_losses else None, grad_norm)

    # -- checkpoints -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"step": self.step, "optimizer": self.optimizer.state_dict(),
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
        path = checkpoint.save_model(path, self.qnet.fcn, **self.qnet.geometry(), profile=self.profile,
                                     stage="dqn", version=self.step if version is None else version, step=self.step,
                                     config=self.config.as_dict(), action_space=self.actions)
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
