"""Checkpoints without pickle: safetensors for tensors, JSON for everything else.

Model checkpoint `<name>.safetensors`: the Q_s / Q-network weights (`TwoStreamFCN.state_dict()`: the rotating
network has no other parameters) and, in the safetensors header, a JSON metadata record (format, trunk, stride,
num_rotations, zoom, profile, version, step, config, and the action space its grasps are chosen in:
`served_action_space`). `<name>.json` beside it is a readable copy of that record.
The header copy is the one loaded, so a reader never pairs new weights with old metadata while a writer swaps
files (each file is written to a temporary name and renamed).

Training state `<name>.state.safetensors` (+ `.state.json` copy): any nested dict of tensors, numpy arrays and
JSON values (optimizer state, step, epsilon, RNG states, replay sampler state): arrays go to safetensors, the
rest to a JSON tree in the header that refers to them by key.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from grasp_core.action_space import ActionSpaceConfig
from grasp_core.jaw_geometry import JawGeometry
from grasp_core.networks import TRUNKS, TwoStreamFCN, build_fcn
from grasp_core.rotation import ANGLE_SOURCES, BACK_ROTATIONS, INPUT_SAMPLINGS, PADDINGS

FORMAT = "grasp-checkpoint"
# 2: the head's last conv has a bias (Q-scale calibration); version-1 files lack that tensor.
FORMAT_VERSION = 2
STATE_FORMAT = "grasp-training-state"
_HEADER_KEY = "grasp_json"


class CheckpointError(ValueError):
    """A checkpoint file is missing pieces, corrupt, of another format, or does not fit the network."""


def sidecar_path(path: str | os.PathLike) -> Path:
    """`x.safetensors` -> `x.json` (the readable metadata copy)."""
    return Path(path).with_suffix(".json")


def training_state_path(path: str | os.PathLike) -> Path:
    """Model checkpoint `x.safetensors` -> its training-state file `x.state.safetensors`."""
    path = Path(path)
    return path.with_name(path.stem + ".state.safetensors")


def _atomic_replace(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write(path: Path, tensors: dict[str, torch.Tensor], record: dict) -> None:
    text = json.dumps(record, indent=1, sort_keys=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    _atomic_replace(path, lambda tmp: save_file(tensors, str(tmp), metadata={_HEADER_KEY: text}))
    _atomic_replace(sidecar_path(path), lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def _read(path: str | os.PathLike, expected_format: str) -> tuple[dict[str, torch.Tensor], dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error type for a broken header or data
        raise CheckpointError(f"{path} is not a readable safetensors file (corrupt or truncated?): {e}") from e
    if _HEADER_KEY not in header:
        raise CheckpointError(f"{path} has no {expected_format} record in its header (not written by grasp_core)")
    try:
        record = json.loads(header[_HEADER_KEY])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: the JSON record in the header is corrupt: {e}") from e
    if not isinstance(record, dict) or record.get("format") != expected_format:
        found = record.get("format") if isinstance(record, dict) else None
        raise CheckpointError(f"{path} is a {found!r} file, expected {expected_format!r}")
    if record.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is {expected_format} version {record.get('format_version')!r}; "
                              f"this code reads version {FORMAT_VERSION}")
    return tensors, record


# ----------------------------------------------------------------------------------------------- model weights

def save_model(path: str | os.PathLike, fcn: TwoStreamFCN, *, num_rotations: int, zoom: int = 1,
               back_rotation: str = "nearest", profile: str | None = None, stage: str = "dqn",
               version: int = 0, step: int = 0, config: dict | None = None, pad: str = "diagonal",
               input_sampling: str = "nearest", angle_source: str = "network",
               action_space: ActionSpaceConfig | None = None) -> Path:
    """Write the FCN's weights and metadata (`stage`: "pretrain" for Q_s, "dqn" for the learner; `action_space`:
    the one the model was trained to choose in, which the affordance node serves it with; None records none, and
    `served_action_space` then names the default it falls back to)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"model checkpoints are .safetensors files, got {path}")
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, "stage": stage, "trunk": fcn.trunk_name,
              "trunk_channels": fcn.trunk_channels, "stride": fcn.stride, "num_rotations": int(num_rotations),
              "zoom": int(zoom), "back_rotation": back_rotation, "pad": pad,
              "input_sampling": input_sampling, "angle_source": angle_source, "profile": profile,
              "jaw_geometry": None if fcn.jaw_geometry is None else fcn.jaw_geometry.geometry.to_record(),
              "action_space": None if action_space is None else dataclasses.asdict(action_space),
              "version": int(version), "step": int(step), "config": config or {}}
    _write(path, fcn.state_dict(), record)
    return path


# Bounds on what a model record may ask for: far beyond any profile (16 rotations, zoom 2), small enough that a
# hand-edited or hostile record cannot make the loader build a network that needs the machine's whole memory.
MAX_ROTATIONS = 256
MAX_ZOOM = 8


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_in(low: int, high: int | None = None):
    def check(value) -> bool:
        return _is_int(value) and value >= low and (high is None or value <= high)
    check.requirement = f"an integer >= {low}" + (f" and <= {high}" if high is not None else "")
    return check


def _one_of(*choices):
    def check(value) -> bool:
        return isinstance(value, str) and value in choices
    check.requirement = "one of " + ", ".join(repr(c) for c in choices)
    return check


def _string(value) -> bool:
    return isinstance(value, str) and bool(value)


_string.requirement = "a non-empty string"


def _string_or_null(value) -> bool:
    return value is None or _string(value)


_string_or_null.requirement = "a non-empty string or null"


def _jaw_geometry_or_null(value) -> bool:
    if value is None:
        return True
    try:
        JawGeometry(**value)
    except (TypeError, ValueError):
        return False
    return True


_jaw_geometry_or_null.requirement = "null or the fields of grasp_core.jaw_geometry.JawGeometry"


ACTION_SPACE_FIELDS = {"object_mask": bool, "min_height_m": float, "edge_margin_m": float, "symmetric_q": bool}


def _action_space_or_null(value) -> bool:
    if value is None:
        return True
    if not isinstance(value, dict) or set(value) != set(ACTION_SPACE_FIELDS):
        return False
    for key, kind in ACTION_SPACE_FIELDS.items():
        item = value[key]
        if kind is bool and not isinstance(item, bool):
            return False
        if kind is float and not (isinstance(item, (int, float)) and not isinstance(item, bool)
                                  and math.isfinite(item) and item >= 0):
            return False
    return True


_action_space_or_null.requirement = ("null or an object with exactly " + ", ".join(ACTION_SPACE_FIELDS)
                                     + " (booleans; metres >= 0), the fields of grasp_core.action_space."
                                     "ActionSpaceConfig")


def _object(value) -> bool:
    return isinstance(value, dict)


_object.requirement = "a JSON object"

# key -> (required, check). Every field save_model writes; the optional ones have defaults in load_q_network.
MODEL_RECORD_FIELDS = {
    "trunk": (True, _string),  # load_fcn also needs it to be one of networks.TRUNKS
    "num_rotations": (True, _int_in(1, MAX_ROTATIONS)),
    "version": (True, _int_in(0)),
    "step": (True, _int_in(0)),
    "zoom": (False, _int_in(1, MAX_ZOOM)),
    "back_rotation": (False, _one_of(*BACK_ROTATIONS)),
    "pad": (False, _one_of(*PADDINGS)),
    "input_sampling": (False, _one_of(*INPUT_SAMPLINGS)),
    "angle_source": (False, _one_of(*ANGLE_SOURCES)),
    "trunk_channels": (False, _int_in(1)),
    "stride": (False, _int_in(1)),
    "stage": (False, _string),
    "profile": (False, _string_or_null),
    "config": (False, _object),
    "jaw_geometry": (False, _jaw_geometry_or_null),
    "action_space": (False, _action_space_or_null),
}


def check_model_record(record: dict, source: str = "checkpoint") -> dict:
    """Raise CheckpointError naming every field of a model record that is missing or of the wrong type/range.

    A record is only as good as whoever wrote it (a hand-made file, another version of this code), and the
    loaders must never turn one into a TypeError deep inside a node.
    """
    problems = []
    for key, (required, check) in MODEL_RECORD_FIELDS.items():
        if key not in record:
            if required:
                problems.append(f"{key!r} is missing")
            continue
        if not check(record[key]):
            problems.append(f"{key!r} must be {check.requirement}, got {record[key]!r:.80}")
    if not problems and record["trunk"] in TRUNKS:  # a known trunk: its shape fields must agree
        info = TRUNKS[record["trunk"]]
        for key, expected in (("stride", info.stride), ("trunk_channels", info.channels)):
            if key in record and record[key] != expected:
                problems.append(f"{key!r} is {record[key]} but a {info.name} trunk has {expected}")
    if problems:
        raise CheckpointError(f"{source}: bad metadata: " + "; ".join(problems)
                              + " (re-save the model with grasp_core.checkpoint.save_model)")
    return record


ACTION_SPACE_RECORDED = "recorded in the checkpoint"  # served_action_space's source when the record has one


def served_action_space(record: dict) -> tuple[ActionSpaceConfig, str]:
    """The action space a (checked) model record's grasps are chosen in, and where it comes from (for the log).

    A checkpoint records its learning preset's action space. One that records none (written before the record
    existed, or by a caller that gave none) gets a default by what it holds: with jaw geometry (or the head's score
    pooled over the angles) only the `default` preset trains it, so the `default` preset's action space; otherwise
    the `seed` preset's (anywhere, each rotation's own Q), as VPG chose.
    """
    recorded = record.get("action_space")
    if recorded is not None:
        return ActionSpaceConfig(**recorded), ACTION_SPACE_RECORDED
    from grasp_core.learning import PRESETS  # noqa: PLC0415 - grasp_core.learning imports this module

    if record.get("jaw_geometry") is not None or record.get("angle_source") == "jaw_geometry":
        return dataclasses.replace(PRESETS["default"].actions), (
            "the checkpoint records no action space; it has jaw geometry, which only the 'default' preset trains, "
            "so that preset's is used")
    return dataclasses.replace(PRESETS["seed"].actions), (
        "the checkpoint records no action space and has no jaw geometry, so the 'seed' preset's is used "
        "(anywhere, each rotation's own Q)")


def load_model(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """(state_dict, metadata) of a model checkpoint; the metadata is checked field by field."""
    tensors, record = _read(path, FORMAT)
    return tensors, check_model_record(record, str(path))


def check_compatible(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str = "checkpoint"
                     ) -> None:
    """Raise CheckpointError naming every missing, unexpected or differently shaped tensor."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [f"{k}: {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state_dict)) if own[k].shape != state_dict[k].shape]
    if missing or unexpected or shapes:
        def few(items):
            return ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
        parts = [f"missing {few(missing)}" if missing else "", f"unexpected {few(unexpected)}" if unexpected else "",
                 f"shape mismatch {few(shapes)}" if shapes else ""]
        raise CheckpointError(f"{source} does not fit the network: " + "; ".join(p for p in parts if p))


def load_weights_into(fcn: TwoStreamFCN, path: str | os.PathLike) -> dict:
    """Load a model checkpoint into an existing FCN of the same trunk; returns the metadata."""
    state, record = load_model(path)
    if record["trunk"] != fcn.trunk_name:
        raise CheckpointError(f"{path} holds a {record['trunk']} network, this one has {fcn.trunk_name} trunks")
    check_compatible(fcn, state, str(path))
    fcn.load_state_dict(state)
    return record


def load_fcn(path: str | os.PathLike) -> tuple[TwoStreamFCN, dict]:
    """Build the FCN the checkpoint describes (random init, no ImageNet lookup) and load its weights."""
    _, record = load_model(path)
    if record["trunk"] not in TRUNKS:
        raise CheckpointError(f"{path}: unknown trunk {record['trunk']!r}; known: {sorted(TRUNKS)}")
    fcn = build_fcn(record["trunk"])
    if record.get("jaw_geometry") is not None:
        fcn.enable_jaw_geometry(JawGeometry(**record["jaw_geometry"]))
    load_weights_into(fcn, path)
    return fcn, record


def load_q_network(path: str | os.PathLike):
    """The RotatingQNetwork a checkpoint describes (rotations, zoom, back-rotation mode) with its weights."""
    from grasp_core.rotation import RotatingQNetwork

    fcn, record = load_fcn(path)
    return RotatingQNetwork(fcn, record["num_rotations"], record.get("zoom", 1),
                            record.get("back_rotation", "nearest"), record.get("pad", "diagonal"),
                            record.get("input_sampling", "nearest"), record.get("angle_source", "network")), record


# --------------------------------------------------------------------------------------------- training state

def _split(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Nested value -> JSON tree; tensors/arrays are moved to `tensors` and referenced by key."""
    if isinstance(value, torch.Tensor):
        tensors[key] = value
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise ValueError(f"training state {key}: object arrays cannot be stored without pickle")
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value).copy())
        return {"__ndarray__": key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _split(v, f"{key}/{k}", tensors) for k, v in value.items()}
        if not all(isinstance(k, (str, int)) for k in value):
            raise ValueError(f"training state {key}: dict keys must be str or int, got {list(value)[:3]}")
        return {"__items__": [[k, _split(v, f"{key}/{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_split(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_split(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"training state {key}: cannot store a {type(value).__name__} without pickle")


def _join(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__ndarray__" in tree:
            return tensors[tree["__ndarray__"]].numpy()
        if "__items__" in tree:
            return {k: _join(v, tensors) for k, v in tree["__items__"]}
        if "__tuple__" in tree:
            return tuple(_join(v, tensors) for v in tree["__tuple__"])
        return {k: _join(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join(v, tensors) for v in tree]
    return tree


def save_training_state(path: str | os.PathLike, state: dict) -> Path:
    """Write a nested dict (tensors, numpy arrays, JSON values; int dict keys and tuples survive)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"training-state files are .safetensors files, got {path}")
    tensors: dict[str, torch.Tensor] = {}
    tree = _split(state, "state", tensors)
    _write(path, tensors, {"format": STATE_FORMAT, "format_version": FORMAT_VERSION, "state": tree})
    return path


def load_training_state(path: str | os.PathLike) -> dict:
    tensors, record = _read(path, STATE_FORMAT)
    try:
        return _join(record["state"], tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: the training state refers to missing or malformed data: {e!r}") from e
