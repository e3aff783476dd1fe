"""The affordance node's model: load a checkpoint (or build an untrained one), run it, choose a grasp.

ROS-free so it can be tested without DDS. A `LoadedModel` is immutable once built; the node swaps whole
`LoadedModel`s under a lock, so a slow load never blocks inference and a failed load keeps the old model.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from grasp_core.action_space import ActionSpaceConfig, choose_grasp
from grasp_core.checkpoint import load_q_network, served_action_space
from grasp_core.dqn import inference_for_training
from grasp_core.exploration import FailedGraspMemory, check_epsilon
from grasp_core.grasp_pose import top_down_quaternion
from grasp_core.model_check import VET_ROTATIONS, check_model, probe_side_for
from grasp_core.profiles import PROFILES, get_profile
from grasp_core.rotation import InferenceOptions, RotatingQNetwork
from grasp_core.workspace import WorkspaceLimits


@dataclass(frozen=True)
class LoadedModel:
    """A ready-to-run Q network and where it came from."""

    network: RotatingQNetwork
    options: InferenceOptions
    version: int
    path: str  # "" for an untrained model
    trunk: str
    profile: str | None
    resolution: float | None  # metres per pixel the profile was made for (None: unknown)
    # the action space it was trained for, served unless a request asks for another
    actions: ActionSpaceConfig = field(default_factory=ActionSpaceConfig)
    actions_source: str = "the 'seed' preset's"  # where `actions` came from (checkpoint.served_action_space)

    @property
    def num_rotations(self) -> int:
        return self.network.num_rotations

    def describe(self) -> str:
        source = self.path or "untrained (random init)"
        return (f"version {self.version}, {self.trunk} trunks, {self.num_rotations} rotations, "
                f"profile {self.profile or '?'}, from {source}; action space: {self.actions.describe()} "
                f"({self.actions_source})")


def load_checkpoint_model(path: str | os.PathLike, version: int | None = None) -> LoadedModel:
    """A checkpoint (trunk, rotations, zoom and profile from its metadata) -> LoadedModel in eval mode.

    Raises FileNotFoundError / grasp_core.checkpoint.CheckpointError (a ValueError) with the reason.
    """
    network, record = load_q_network(path)
    network.eval()
    profile = PROFILES.get(record.get("profile") or "")
    if profile is not None and profile.trunk != record["trunk"]:
        profile = None  # a renamed or custom profile: run with default options rather than wrong ones
    options = profile.inference if profile else InferenceOptions()
    trainable = (record.get("config") or {}).get("trainable", "head")  # a learner's DQNConfig, if it saved one
    actions, actions_source = served_action_space(record)
    return LoadedModel(network=network, options=inference_for_training(options, str(trainable)),
                       version=int(record["version"] if version is None else version), path=str(path),
                       trunk=record["trunk"], profile=profile.name if profile else record.get("profile"),
                       resolution=profile.resolution if profile else None, actions=actions,
                       actions_source=actions_source)


def vet_model(model: LoadedModel, color_hm: np.ndarray | None = None, depth_hm: np.ndarray | None = None) -> str:
    """Refuse (ModelCheckError, a ValueError) a model with NaN/inf weights or NaN/inf Q (VET_ROTATIONS) on the
    given heightmap (the node's latest), else on a synthetic one at the profile's size; returns what was probed."""
    what = f"model version {model.version}"
    if color_hm is None or depth_hm is None:
        side = probe_side_for(model.resolution)
        check_model(model.network, options=model.options, what=what, probe_side=side, rotations=VET_ROTATIONS)
        return f"a synthetic {side}x{side} heightmap"
    check_model(model.network, color_hm, depth_hm, model.options, what=what, rotations=VET_ROTATIONS)
    return f"the latest {depth_hm.shape[1]}x{depth_hm.shape[0]} heightmap"


def untrained_model(profile_name: str, seed: int = 0) -> LoadedModel:
    """A randomly initialised network of a named profile (only for tests and dry runs: it knows nothing)."""
    profile = get_profile(profile_name)
    torch.manual_seed(seed)
    network = profile.build_q_network()
    network.eval()
    return LoadedModel(network=network, options=profile.inference, version=0, path="", trunk=profile.trunk,
                       profile=profile.name, resolution=profile.resolution, actions=ActionSpaceConfig(),
                       actions_source="an untrained model is served with the 'seed' preset's")


@dataclass(frozen=True)
class GraspProposal:
    """The chosen grasp and what the node publishes about it."""

    rotation_index: int
    num_rotations: int
    u: int  # column
    v: int  # row
    angle: float  # radians, closing direction (cos a, sin a) in the base frame
    q_value: float
    explored: bool
    position: tuple[float, float, float]  # jaw centre in the base frame (workspace frame)
    orientation: tuple[float, float, float, float]  # quaternion (x, y, z, w), tool z down
    q_maps: np.ndarray  # (R, H, W) float32
    best_rotation: int  # rotation holding the greedy argmax (shown in the affordance image)


@dataclass(frozen=True)
class GraspRequest:
    """One request's heightmap and how to choose a grasp on it: everything but the model and the random stream,
    so requests that wait for the model together can run in one `propose_many`."""

    color_hm: np.ndarray
    depth_hm: np.ndarray
    workspace: WorkspaceLimits
    epsilon: float
    mode: str = "uniform"
    temperature: float = 0.1
    excluded: FailedGraspMemory | None = None  # failed grasps not to propose again
    actions: ActionSpaceConfig | None = None  # the object mask and jaw symmetry; None: the model's own

    def __post_init__(self) -> None:
        check_epsilon(self.epsilon)  # before the network runs


def propose(model: LoadedModel, color_hm: np.ndarray, depth_hm: np.ndarray, workspace: WorkspaceLimits,
            epsilon: float, rng: np.random.Generator, mode: str = "uniform", temperature: float = 0.1,
            excluded: FailedGraspMemory | None = None, actions: ActionSpaceConfig | None = None) -> GraspProposal:
    """Q maps for every rotation, then a grasp chosen by grasp_core.action_space.choose_grasp (`excluded`: failed
    grasps not to propose again; `actions`: the object mask and jaw symmetry, None = the model's own
    `LoadedModel.actions`), as a pose in the workspace (base) frame."""
    request = GraspRequest(color_hm, depth_hm, workspace, epsilon, mode, temperature, excluded, actions)
    (result,) = propose_many(model, [request], rng)
    if isinstance(result, Exception):
        raise result
    return result


def propose_many(model: LoadedModel, requests: Sequence[GraspRequest], rng: np.random.Generator
                 ) -> list[GraspProposal | Exception]:
    """`propose` for several requests: their Q maps in one `predict_many`, then each request's grasp in the given
    order (so `rng` is drawn as by one `propose` after another). A request whose choice fails (NaN Q maps, bad
    exclusions, a depth off the workspace) gets its exception in its place; the others still get their grasps."""
    with torch.inference_mode():
        q_all = model.network.predict_many([(r.color_hm, r.depth_hm) for r in requests], model.options)
    results: list[GraspProposal | Exception] = []
    for request, q_maps in zip(requests, q_all):
        try:
            results.append(_choose(model, request, q_maps, rng))
        except Exception as e:  # noqa: BLE001 - one request's failure is its own, not the batch's
            results.append(e)
    return results


def _choose(model: LoadedModel, request: GraspRequest, q_maps: np.ndarray, rng: np.random.Generator
            ) -> GraspProposal:
    depth_hm, workspace, excluded = request.depth_hm, request.workspace, request.excluded
    if excluded is not None and excluded.num_rotations != q_maps.shape[0]:
        raise ValueError(f"excluded grasps are for {excluded.num_rotations} rotations, the model has "
                         f"{q_maps.shape[0]}")
    mask = excluded.excluded(*depth_hm.shape) if excluded is not None else None
    actions = model.actions if request.actions is None else request.actions
    action = choose_grasp(q_maps, depth_hm, workspace.resolution, actions,
                          request.epsilon, rng, mode=request.mode, temperature=request.temperature, excluded=mask)
    rotation, v, u = action.rotation, action.v, action.u
    angle = model.network.angle(rotation)
    position = workspace.pixel_to_point(u, v, float(depth_hm[v, u]))
    if not workspace.z_min <= position[2] <= workspace.z_max:  # msg_to_heightmap checks this for the whole map
        raise ValueError(f"grasp height z = {position[2]:g} m at pixel ({u}, {v}) is outside the workspace's "
                         f"[z_min, z_max] = [{workspace.z_min:g}, {workspace.z_max:g}]: bad depth value")
    best = int(np.unravel_index(int(np.argmax(q_maps)), q_maps.shape)[0])
    return GraspProposal(rotation_index=rotation, num_rotations=model.num_rotations, u=int(u), v=int(v),
                         angle=angle, q_value=float(action.q), explored=bool(action.explored),
                         position=tuple(float(p) for p in position), orientation=top_down_quaternion(angle),
                         q_maps=q_maps, best_rotation=best)
