"""Named model profiles: which trunk, at what heightmap resolution, how many rotations, how to run them.

| profile             | trunk                  | m/px  | px | R  | zoom | cell   | use                             |
|---------------------|------------------------|-------|----|----|------|--------|---------------------------------|
| `paper`             | densenet121            | 0.002 |224 | 16 | 2    | 3.2 cm | the seed / VPG, faithful        |
| `fast`              | mobilenet_v3_small_s16 | 0.004 |112 | 16 | 2    | 3.2 cm | CPU demo (minutes on 2 cores)   |
| `fast_bilinear`     | mobilenet_v3_small_s16 | 0.004 |112 | 16 | 2    | 3.2 cm | `fast`, input sampled bilinearly |
| `fast_mobilenet_v2` | mobilenet_v2 (random)  | 0.004 |112 | 16 | 2    | 6.4 cm | `poi`'s architecture, random init |
| `poi`               | mobilenet_v2 (ImageNet)| 0.004 |112 | 16 | 2    | 6.4 cm | PoI baseline: ImageNet trunks   |
| `tiny`              | small_cnn              | 0.007 | 64 | 4  | 1    | 2.8 cm | CI tests and smoke runs         |

"px" is the heightmap side over the 0.448 m VPG workspace.

"cell" (feature cell) = trunk stride / zoom * resolution: the workspace distance between two Q cells before
upsampling (VPG: 32 / 2 * 2 mm = 3.2 cm). `fast` keeps VPG's cell size with a dilated MobileNetV3-Small; its
numbers come from benchmarks/bench_inference.py on a 2-core CPU. The network itself takes any heightmap size;
`heightmap_size` is what the VPG 0.448 m workspace gives at this resolution.

`fast`, `fast_mobilenet_v2` and `poi` pad only to the stride (`pad="none"`: 2x less compute than VPG's
diagonal padding) and rotate the score map back after upsampling (`back_rotation="upsampled"`: each jaw angle
has its own lattice of peaks); see grasp_core.rotation and docs/learning.md for the measurements.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from grasp_core.networks import TwoStreamFCN, build_fcn, trunk_info
from grasp_core.rotation import InferenceOptions, RotatingQNetwork, cpu_has_native_bf16


@dataclass(frozen=True)
class Profile:
    name: str
    trunk: str
    resolution: float  # metres per heightmap pixel
    heightmap_size: int  # pixels per side of the VPG 0.448 m workspace at this resolution
    num_rotations: int
    zoom: int  # nearest-neighbour upscaling before the trunk (VPG: 2)
    back_rotation: str = "nearest"  # how the score map is rotated back (VPG: nearest)
    inference: InferenceOptions = field(default_factory=InferenceOptions)
    imagenet: bool = False  # trunks start from ImageNet weights (only mobilenet_v2 has them offline)
    description: str = ""
    pad: str = "diagonal"  # heightmap padding before rotating (grasp_core.rotation): VPG's "diagonal" or "none"
    input_sampling: str = "nearest"  # trunk input resampling (grasp_core.rotation): VPG's, or "bilinear" (1.7 of
    # docs/learning.md: removes the rotation-index signature, measured no better)

    def __post_init__(self) -> None:
        trunk_info(self.trunk)
        if self.imagenet and self.trunk != "mobilenet_v2":
            raise ValueError(f"profile {self.name}: only mobilenet_v2 has offline ImageNet weights, not {self.trunk}")

    @property
    def feature_cell_m(self) -> float:
        """Workspace distance between neighbouring cells of the trunk's score map."""
        return trunk_info(self.trunk).stride / self.zoom * self.resolution

    def build_fcn(self, imagenet_weights: str | os.PathLike | None = None) -> TwoStreamFCN:
        """A fresh Q_s for this profile (ImageNet weights are looked up only if the profile uses them)."""
        if imagenet_weights is not None and not self.imagenet:
            raise ValueError(f"profile {self.name} uses randomly initialised {self.trunk} trunks; "
                             "ImageNet weights apply to the `poi` profile only")
        return build_fcn(self.trunk, self.imagenet, imagenet_weights)

    def build_q_network(self, imagenet_weights: str | os.PathLike | None = None,
                        fcn: TwoStreamFCN | None = None) -> RotatingQNetwork:
        """The rotating Q network (a fresh FCN unless one is given, e.g. a pretrained Q_s)."""
        fcn = self.build_fcn(imagenet_weights) if fcn is None else fcn
        if fcn.trunk_name != self.trunk:
            raise ValueError(f"profile {self.name} needs a {self.trunk} FCN, got {fcn.trunk_name}")
        return RotatingQNetwork(fcn, self.num_rotations, self.zoom, self.back_rotation, self.pad, self.input_sampling)

    def as_dict(self) -> dict:
        return asdict(self)


# From benchmarks/bench_inference.py (2 cores): channels_last + bf16 wins or ties on CPUs with native bf16; on
# CPUs without it (bf16 emulated, 6-20x slower) fp32 in chunks of 4 rotations was the fastest torch variant. For
# the fast profile's MobileNetV3 trunks, onnxruntime (grasp_core.ort_trunks) beat every torch variant there
# (benchmarks/results/inference.md), and so it did for the MobileNetV2 trunks of `poi` (0.25 s against 0.73 s for
# fp32 chunks) and the DenseNet-121 trunks of `paper` (21 s against 39 s; quiet machine,
# benchmarks/results/inference_ort_profiles.md). It was not measured on a CPU with native bf16, which keeps bf16.
_HAS_BF16 = cpu_has_native_bf16()
_ORT_CHUNKED = InferenceOptions(backend="onnxruntime", chunk_size=4)
_FAST_INFERENCE = InferenceOptions(channels_last=True, bf16=True) if _HAS_BF16 else _ORT_CHUNKED
_CHUNKED_INFERENCE = InferenceOptions(channels_last=True, bf16=True, chunk_size=4) if _HAS_BF16 else _ORT_CHUNKED

PROFILES: dict[str, Profile] = {
    "paper": Profile("paper", "densenet121", 0.002, 224, 16, 2,
                     inference=_CHUNKED_INFERENCE,
                     description="The seed / VPG: two DenseNet-121 trunks, 224 px at 2 mm, 16 rotations, zoom 2."),
    "fast": Profile("fast", "mobilenet_v3_small_s16", 0.004, 112, 16, 2, pad="none", back_rotation="upsampled",
                    inference=_FAST_INFERENCE,
                    description="CPU demo: dilated MobileNetV3-Small trunks, 112 px at 4 mm, VPG's 3.2 cm cells."),
    "fast_bilinear": Profile("fast_bilinear", "mobilenet_v3_small_s16", 0.004, 112, 16, 2, pad="none",
                             back_rotation="upsampled", inference=_FAST_INFERENCE, input_sampling="bilinear",
                             description="`fast` with its rotated input sampled bilinearly (docs/learning.md 1.7)."),
    "fast_mobilenet_v2": Profile("fast_mobilenet_v2", "mobilenet_v2", 0.004, 112, 16, 2, "upsampled",
                                 inference=_CHUNKED_INFERENCE, pad="none",
                                 description="MobileNetV2 trunks from random init: the PoI profile's architecture."),
    "poi": Profile("poi", "mobilenet_v2", 0.004, 112, 16, 2, "upsampled", inference=_CHUNKED_INFERENCE,
                   imagenet=True,
                   pad="none",
                   description="PoI baseline: MobileNetV2 trunks from torchvision's ImageNet weights."),
    "tiny": Profile("tiny", "small_cnn", 0.007, 64, 4, 1, back_rotation="bilinear",
                    description="CI tests and smoke runs: a 3-layer CNN, 64 px at 7 mm, 4 rotations."),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]
