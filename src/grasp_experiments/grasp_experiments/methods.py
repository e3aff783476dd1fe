"""The four compared methods: what defines each one, and nothing else.

| method    | Q network starts from                                | random (epsilon) grasps      | greedy grasps |
|-----------|------------------------------------------------------|------------------------------|---------------|
| `ours`    | Q_s pretrained on the sim key-point set (KL loss)    | any pixel                    | any pixel     |
| `vanilla` | random init                                          | any pixel                    | any pixel     |
| `mog`     | random init                                          | inside MoG regions of interest | any pixel   |
| `poi`     | ImageNet-initialised trunks (+ random head)          | any pixel                    | any pixel     |

Everything else (profile: heightmap size, rotations, zoom; DQN hyper-parameters; epsilon schedule; replay) is the
same for all four, except that `poi` needs trunks that have ImageNet weights: under the `fast` profile it uses
MobileNetV2 (the only ImageNet trunk available offline) where the others use the dilated MobileNetV3-Small;
under `paper` it uses DenseNet-121 like the others, from a torchvision ImageNet file the user supplies;
under `tiny` (CI only) a MobileNetV2 at the tiny profile's size.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision

from grasp_core.networks import TwoStreamFCN, trunk_info
from grasp_core.profiles import Profile, get_profile
from grasp_core.rotation import RotatingQNetwork


@dataclass(frozen=True)
class Method:
    name: str
    pretrained: bool  # warm start from the key-point-pretrained Q_s
    imagenet: bool  # ImageNet-initialised trunks
    roi_exploration: bool  # explore only inside the MoG regions of interest
    label: str  # for plots and tables
    color: str  # matplotlib colour (ours red, vanilla blue, as the seed's Fig. 5)


METHODS: dict[str, Method] = {
    "ours": Method("ours", True, False, False, "Ours (key-point pretraining)", "tab:red"),
    "vanilla": Method("vanilla", False, False, False, "Vanilla DQN (baseline)", "tab:blue"),
    "mog": Method("mog", False, False, True, "MoG (Pinto & Gupta 2016)", "tab:green"),
    "poi": Method("poi", False, True, False, "PoI (ImageNet trunks)", "tab:purple"),
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {list(METHODS)}")
    return METHODS[name]


def method_profile(method: str, profile_name: str) -> Profile:
    """The profile a method runs with: the experiment's profile, with ImageNet-capable trunks for `poi`."""
    profile = get_profile(profile_name)
    if not get_method(method).imagenet:
        return profile
    if profile.name == "fast":
        return get_profile("poi")
    if profile.name == "paper":
        # Same network as the others; the trunks' weights come from the user's DenseNet-121 ImageNet file.
        return dataclasses.replace(profile, name="paper_poi",
                                   description="paper profile with ImageNet DenseNet-121 trunks (user's file)")
    if profile.name == "tiny":
        return Profile("tiny_poi", "mobilenet_v2", profile.resolution, profile.heightmap_size,
                       profile.num_rotations, profile.zoom, profile.back_rotation, profile.inference, imagenet=True,
                       description="CI only: ImageNet MobileNetV2 trunks at the tiny profile's size")
    raise ValueError(f"method poi has no ImageNet trunk for profile {profile.name!r}; use fast, paper or tiny")


_DENSENET_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|"
                               r"running_var))$")


def load_densenet121_imagenet(path: str | os.PathLike) -> torch.nn.Module:
    """DenseNet-121 features from torchvision's ImageNet file (densenet121-a639ec97.pth), read without pickle.

    The file uses torchvision's old key names (`norm.1`); they are renamed as torchvision itself does.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DenseNet-121 ImageNet weights {path} not found (nothing is downloaded): "
                                "give torchvision's densenet121-a639ec97.pth with --imagenet-weights")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {(_DENSENET_OLD_KEY.sub(r"\1\2", k)): v for k, v in state.items()}
    model = torchvision.models.densenet121()
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path} is not a torchvision DenseNet-121 state dict: {e}") from e
    return model.features


def build_q_network(method: str, profile: Profile, imagenet_weights: str | os.PathLike | None = None
                    ) -> RotatingQNetwork:
    """A fresh Q network for `method` under `profile` (from method_profile); pretrained weights come later."""
    if get_method(method).imagenet and profile.trunk == "densenet121":
        if imagenet_weights is None:
            raise ValueError("poi under the paper profile needs DenseNet-121 ImageNet weights: "
                             "--imagenet-weights PATH (torchvision's densenet121-a639ec97.pth)")
        info = trunk_info("densenet121")
        fcn = TwoStreamFCN(load_densenet121_imagenet(imagenet_weights), load_densenet121_imagenet(imagenet_weights),
                           info.channels, info.stride, trunk_name="densenet121")
        return profile.build_q_network(fcn=fcn)
    if profile.imagenet:
        return profile.build_q_network(imagenet_weights=imagenet_weights)
    return profile.build_q_network()
