"""Pretrain Q_s on key-point datasets (seed Algorithm 1, steps 7-9): heightmaps -> coarse affordance maps.

Q_s is trained *through the rotating Q network* of the profile: each image goes in under one random rotation
index, padded and zoomed exactly as the DQN will see it, and the map (rotated back to the heightmap frame)
is compared with the label. A key point says "graspable here whatever the jaw angle" (the seed's labels carry
no angle), so one label applies to every rotation, and sampling the rotation teaches all 16 at once while the
trunk learns objects at the scale the DQN uses. Augmentation: random 90-degree turns and mirror flips of
heightmap and label together (the labels are Gaussians, so they follow the image exactly).

Datasets recorded at another resolution than the profile's are resampled (cv2 INTER_AREA), with key points
and sigmas scaled to match. Images without key points have an all-zero label, which KL cannot use: they are
left out of KL training (and counted in the log); MSE and smooth L1 keep them.

BatchNorm after training: pretraining runs BatchNorm in train mode (batch statistics), but the affordance
node and the DQN targets run in eval mode (running statistics). torchvision's MobileNetV3 uses BN momentum
0.01, so after the ~100 steps of a short pretraining the running statistics are still mostly their initial
values and the eval-mode map is flat. `recalibrate_batchnorm` re-estimates them as a cumulative average over
the training images (each under a random rotation) without changing any weight.

Q scale after KL: the KL loss only fixes the map up to an additive constant and a temperature, so the raw
logits of a KL-trained Q_s can sit far above the reward scale (values of ~17 were seen). Warm-started at that
scale, the DQN's targets r + gamma * max Q(s') (at most 1 / (1 - gamma) = 10 for gamma 0.9) are *below* the
current Q even for successful grasps, so every tried pixel is pushed down and the greedy policy walks away from
what it tried. `calibrate_q_scale` therefore folds an affine map into the last 1x1 conv (the head's output is
linear in it) so that the median per-image map peak becomes 1 (a certain success) and the median over empty
table 0 (a certain failure).
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # `python -m grasp_core.pretrain`: answer --help (and bad flags) before torch loads (~8 s)
    from grasp_core.pretrain_cli import main as _cli_main

    sys.exit(_cli_main())

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from tqdm import tqdm

from grasp_core import checkpoint
from grasp_core.action_space import ActionSpaceConfig
from grasp_core.dataset import KeypointSample, load_dataset
from grasp_core.labels import affordance_label
from grasp_core.learning import PRESETS
from grasp_core.losses import LOSSES, map_loss
from grasp_core.profiles import Profile, get_profile
from grasp_core.rotation import RotatingQNetwork


@dataclass
class PretrainConfig:
    profile: str = "fast"
    epochs: int = 50
    batch_size: int = 4
    loss: str = "kl"
    # The seed: SGD lr 1e-4, momentum 0.9, weight decay 2e-5 (`--optimizer sgd --lr 1e-4`). Adam at 1e-3 fits the
    # key points in the demo's 8 epochs (KL 0.25 vs 0.95): greedy grasps of the pretrained Q_s on 25 fresh
    # 10-object scenes land on an object 17 times instead of 7 and succeed 12 times instead of 8 (docs/learning.md).
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 2e-5
    augment: bool = True
    random_rotations: bool = True  # False: always rotation 0 (the plain Q_s on the padded heightmap)
    recalibrate_bn: bool = True  # re-estimate BatchNorm running statistics after training (module docstring)
    calibrate_q: bool = True  # KL only: rescale the output so map peaks sit at 1 (see the module docstring)
    seed: int = 0

    def __post_init__(self) -> None:
        get_profile(self.profile)
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {LOSSES}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"learning rate must be > 0, got {self.lr}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")


@dataclass
class TrainingImage:
    """One training example at the profile's resolution."""

    color: np.ndarray  # uint8 (H, W, 3)
    depth: np.ndarray  # float32 (H, W)
    label: np.ndarray  # float32 (H, W) in [0, 1]


def prepare_images(samples: list[KeypointSample], scale: float = 1.0) -> list[TrainingImage]:
    """Resample heightmaps by `scale` (dataset resolution / profile resolution) and build their labels."""
    if not samples:
        raise ValueError("the dataset has no samples")
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    images = []
    for s in samples:
        color, depth = s.color, s.depth
        points, sigmas = np.asarray(s.points, float).reshape(-1, 2), np.asarray(s.sigmas, float)
        if scale != 1.0:
            h, w = depth.shape
            size = (max(1, round(w * scale)), max(1, round(h * scale)))  # cv2: (width, height)
            color = cv2.resize(color, size, interpolation=cv2.INTER_AREA)
            depth = cv2.resize(depth, size, interpolation=cv2.INTER_AREA)
            points = (points + 0.5) * scale - 0.5  # pixel centres scale about the image corner
            points = np.clip(points, 0, [size[0] - 1, size[1] - 1])
            sigmas = sigmas * scale
        label = affordance_label(depth.shape, points, sigmas)
        images.append(TrainingImage(np.ascontiguousarray(color), depth.astype(np.float32), label))
    return images


def augment(image: TrainingImage, rng: np.random.Generator) -> TrainingImage:
    """Random quarter turn and mirror, the same for heightmaps and label.

    A non-square heightmap only gets half turns, so every image of a batch keeps its shape.
    """
    h, w = image.depth.shape
    k, flip = int(rng.integers(4)) if h == w else 2 * int(rng.integers(2)), bool(rng.integers(2))

    def tf(a):
        a = np.rot90(a, k, axes=(0, 1))
        return np.ascontiguousarray(a[:, ::-1] if flip else a)
    return TrainingImage(tf(image.color), tf(image.depth), tf(image.label))


def _batch(images: list[TrainingImage]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    shapes = {im.depth.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"heightmaps in a batch differ in size: {sorted(shapes)}")
    color = torch.from_numpy(np.stack([im.color for im in images])).permute(0, 3, 1, 2).float().div_(255.0)
    depth = torch.from_numpy(np.stack([im.depth for im in images])).unsqueeze(1)
    label = torch.from_numpy(np.stack([im.label for im in images]))
    return color, depth, label


@dataclass(frozen=True)
class PretrainResult:
    epoch_losses: list[float]  # mean loss of each epoch
    steps: int  # SGD steps taken
    images: int  # images trained on


def pretrain(qnet: RotatingQNetwork, images: list[TrainingImage], config: PretrainConfig, *, writer=None,
             progress: bool = True) -> PretrainResult:
    """Train qnet.fcn in place (SGD on `config.loss`, see the module docstring)."""
    if config.loss == "kl":
        usable = [im for im in images if im.label.sum() > 0]
        if not usable:
            raise ValueError("no image has key points: nothing to train with the KL loss")
        if len(usable) < len(images):
            tqdm.write(f"pretrain: {len(images) - len(usable)} image(s) without key points left out of KL training")
        images = usable
    rng = np.random.default_rng(config.seed)
    if config.optimizer == "adam":
        optimizer = torch.optim.Adam(qnet.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD(qnet.parameters(), lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(images) // config.batch_size)
    epoch_losses, step = [], 0
    qnet.train()
    bar = tqdm(total=config.epochs * steps_per_epoch, desc=f"pretrain {config.loss}", unit="batch",
               disable=None if progress else True, dynamic_ncols=True)
    for epoch in range(config.epochs):
        order = rng.permutation(len(images))
        losses = []
        for start in range(0, len(order), config.batch_size):
            batch = [images[i] for i in order[start:start + config.batch_size]]
            if config.augment:
                batch = [augment(im, rng) for im in batch]
            color, depth, label = _batch(batch)
            rotations = (rng.integers(qnet.num_rotations, size=len(batch)) if config.random_rotations
                         else np.zeros(len(batch), int))
            loss = map_loss(qnet(color, depth, rotations.tolist()), label, config.loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(float(loss.detach()))
            if writer is not None:
                writer.add_scalar(f"pretrain/loss_{config.loss}", losses[-1], step)
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}")
        epoch_losses.append(float(np.mean(losses)))
        if writer is not None:
            writer.add_scalar(f"pretrain/epoch_loss_{config.loss}", epoch_losses[-1], epoch + 1)
    bar.close()
    if config.recalibrate_bn:
        recalibrate_batchnorm(qnet, images, config.batch_size, config.seed)
    qnet.eval()
    if config.loss == "kl" and config.calibrate_q:
        scale = calibrate_q_scale(qnet, images)
        tqdm.write(f"pretrain: Q scale calibrated (x {scale:.4g}: map peaks -> 1, empty table -> 0)")
    return PretrainResult(epoch_losses, step, len(images))


@torch.no_grad()
def recalibrate_batchnorm(qnet: RotatingQNetwork, images: list[TrainingImage], batch_size: int, seed: int) -> int:
    """Re-estimate every BatchNorm's running mean/var over `images` (cumulative average); returns batches used."""
    norms = [m for m in qnet.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    rng = np.random.default_rng(seed)
    was_training = qnet.training
    qnet.train()
    batches = 0
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            # Images of different sizes (datasets of several workspaces) go in one at a time.
            for part in ([batch] if len({im.depth.shape for im in batch}) == 1 else [[im] for im in batch]):
                color, depth, _ = _batch(part)
                qnet(color, depth, rng.integers(qnet.num_rotations, size=len(part)).tolist())
                batches += 1
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        qnet.train(was_training)
    return batches


@torch.no_grad()
def calibrate_q_scale(qnet: RotatingQNetwork, images: list[TrainingImage], max_images: int = 16) -> float:
    """Fold Q <- a * Q + b into the head's last conv: median map peak -> 1, median off-label map -> 0.

    Maps of rotation 0 in eval mode over up to `max_images` images; "off-label" = pixels whose label is below
    0.05. Returns the scale a. Raises when the peaks are not above the background (nothing to calibrate).
    """
    qnet.eval()
    peaks, backgrounds = [], []
    for image in images[:max_images]:
        color, depth, label = _batch([image])
        q = qnet(color, depth, [0])[0]
        peaks.append(float(q.max()))
        off = q[label[0] < 0.05]
        if off.numel():
            backgrounds.append(float(off.median()))
    peak = float(np.median(peaks))
    background = float(np.median(backgrounds)) if backgrounds else float("nan")
    if not peak - background > 1e-6:
        raise ValueError(f"cannot calibrate the Q scale: the median map peak {peak:.4g} is not above the "
                         f"median background {background:.4g}")
    scale = 1.0 / (peak - background)
    conv = qnet.fcn.head.conv1
    conv.weight.mul_(scale)
    conv.bias.mul_(scale).add_(-background * scale)
    return scale


@dataclass
class PretrainedQs:
    """A Q_s trained by `pretrain_from_dataset`, with what it was trained on."""

    qnet: RotatingQNetwork
    profile: Profile
    result: PretrainResult
    dataset_resolution: float  # m/px of the dataset (resampled to the profile's)
    heightmap_shape: tuple[int, int]  # (H, W) trained on
    seconds: float

    def save(self, path: str | Path, config: dict, actions: ActionSpaceConfig | None = None) -> Path:
        """The checkpoint (stage "pretrain", version 0) at `path` (.safetensors), `config` in its metadata, served in
        the action space `actions`: by default the `default` preset's, the one docs/learning.md 1.4 measured on Q_s
        (key points say where an object is, so grasps well inside footprints)."""
        qnet = self.qnet
        actions = PRESETS["default"].actions if actions is None else actions
        return checkpoint.save_model(path, qnet.fcn, **qnet.geometry(), profile=self.profile.name,
                                     stage="pretrain", version=0, step=self.result.steps, config=config,
                                     action_space=actions)


def pretrain_from_dataset(dataset_dir: str | Path, config: PretrainConfig, *, imagenet_weights: str | None = None,
                          init: str | Path | None = None, writer=None, progress: bool = True,
                          log: Callable[[str], None] | None = None) -> PretrainedQs:
    """Pretraining from a grasp-keypoints dataset folder, the one entry point every caller uses (the
    `grasp-pretrain` command, `ros2 run grasp_learning pretrain`, the demo, the experiment harness).

    Seeds torch with `config.seed`, loads the dataset and resamples it to the profile, builds the profile's Q
    network (from `init` if given, a checkpoint to continue from) and trains it with `pretrain`. `log` gets one
    line saying what is trained, before training starts.
    """
    torch.manual_seed(config.seed)
    profile = get_profile(config.profile)
    dataset = load_dataset(dataset_dir)
    images = prepare_images(dataset.samples, dataset.workspace.resolution / profile.resolution)
    qnet = profile.build_q_network(imagenet_weights=imagenet_weights)
    if init:
        from grasp_core.dqn import warm_start

        warm_start(qnet, init)
    h, w = images[0].depth.shape
    if log is not None:
        log(f"{len(images)} images of {w}x{h} px (dataset {dataset.workspace.resolution} m/px, profile "
            f"{profile.name} {profile.resolution} m/px), {profile.trunk}, {profile.num_rotations} rotations, "
            f"loss {config.loss}, {config.epochs} epochs")
    started = time.perf_counter()
    result = pretrain(qnet, images, config, writer=writer, progress=progress)
    return PretrainedQs(qnet, profile, result, dataset.workspace.resolution, (h, w),
                        time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    """The `grasp-pretrain` command (grasp_core.pretrain_cli: arguments are parsed before torch is imported)."""
    from grasp_core.pretrain_cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
