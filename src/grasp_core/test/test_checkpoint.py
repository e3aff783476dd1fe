"""Checkpoints: safetensors + JSON round trips, no pickle, and clear errors."""
import json

import numpy as np
import pytest
import torch

from grasp_core import checkpoint
from grasp_core.checkpoint import (CheckpointError, load_fcn, load_model, load_q_network, load_training_state,
                                   load_weights_into, save_model, save_training_state, sidecar_path)
from grasp_core.networks import build_fcn
from grasp_core.profiles import PROFILES
from grasp_core.rotation import BACK_ROTATIONS, INPUT_SAMPLINGS, PADDINGS

torch.set_num_threads(1)


def _fcn(seed=0, trunk="small_cnn"):
    torch.manual_seed(seed)
    return build_fcn(trunk).eval()


def test_model_round_trip_with_metadata(tmp_path):
    fcn = _fcn()
    path = save_model(tmp_path / "m.safetensors", fcn, num_rotations=4, zoom=2, back_rotation="bilinear",
                      profile="tiny", stage="pretrain", version=7, step=42, config={"loss": "kl", "lr": 1e-4})
    state, meta = load_model(path)
    assert set(state) == set(fcn.state_dict())
    assert all(torch.equal(state[k], v) for k, v in fcn.state_dict().items())
    assert {k: meta[k] for k in ("trunk", "num_rotations", "zoom", "back_rotation", "profile", "stage", "version",
                                 "step")} == {"trunk": "small_cnn", "num_rotations": 4, "zoom": 2,
                                              "back_rotation": "bilinear", "profile": "tiny", "stage": "pretrain",
                                              "version": 7, "step": 42}
    assert meta["config"] == {"loss": "kl", "lr": 1e-4}
    assert json.loads(sidecar_path(path).read_text()) == meta  # the readable copy says the same

    loaded, _ = load_fcn(path)
    qnet, _ = load_q_network(path)
    assert (qnet.num_rotations, qnet.zoom, qnet.back_rotation) == (4, 2, "bilinear")
    x, d = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32) * 0.05
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x, d), fcn(x, d), rtol=0, atol=0)
    other = _fcn(seed=5)
    load_weights_into(other, path)
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), fcn.state_dict().values()))
    with pytest.raises(ValueError, match=".safetensors"):
        save_model(tmp_path / "m.pt", fcn, num_rotations=4)


@pytest.mark.parametrize("back_rotation", BACK_ROTATIONS)
@pytest.mark.parametrize("pad", PADDINGS)
@pytest.mark.parametrize("input_sampling", INPUT_SAMPLINGS)
def test_every_network_geometry_round_trips(tmp_path, back_rotation, pad, input_sampling):
    """A model saved with any geometry a profile may use loads back with that geometry (and is not refused)."""
    path = save_model(tmp_path / "m.safetensors", _fcn(), num_rotations=4, back_rotation=back_rotation, pad=pad,
                      input_sampling=input_sampling)
    qnet, _ = load_q_network(path)
    assert (qnet.back_rotation, qnet.pad, qnet.input_sampling) == (back_rotation, pad, input_sampling)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_a_model_saved_with_each_profiles_geometry_loads(tmp_path, name):
    profile = PROFILES[name]
    path = save_model(tmp_path / "m.safetensors", _fcn(), num_rotations=profile.num_rotations, zoom=profile.zoom,
                      back_rotation=profile.back_rotation, pad=profile.pad, input_sampling=profile.input_sampling,
                      profile=name)
    qnet, record = load_q_network(path)
    assert (qnet.back_rotation, qnet.pad, qnet.input_sampling, qnet.zoom, record["profile"]) == \
        (profile.back_rotation, profile.pad, profile.input_sampling, profile.zoom, name)


def test_model_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_model(tmp_path / "nope.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_model(garbage)
    path = save_model(tmp_path / "m.safetensors", _fcn(), num_rotations=4)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(truncated)
    state_file = save_training_state(tmp_path / "s.safetensors", {"step": 1})
    with pytest.raises(CheckpointError, match="expected 'grasp-checkpoint'"):
        load_model(state_file)
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not written by grasp_core"):
        load_model(tmp_path / "foreign.safetensors")
    with pytest.raises(CheckpointError, match="holds a small_cnn network.*mobilenet_v3_small"):
        load_weights_into(_fcn(trunk="mobilenet_v3_small"), path)
    odd = _fcn()
    odd.head.conv1 = torch.nn.Conv2d(64, 2, 1, bias=False)  # same trunk, other output shape
    with pytest.raises(CheckpointError, match=r"shape mismatch head.conv1.weight: \(1, 64, 1, 1\) vs \(2, 64, 1, 1\)"):
        load_weights_into(odd, path)


def test_training_state_round_trip_without_pickle(tmp_path):
    rng = np.random.default_rng(3)
    rng.random(5)
    optimizer = torch.optim.SGD(_fcn().parameters(), lr=0.1, momentum=0.9)
    state = {
        "step": 12, "epsilon": 0.25, "name": "x", "none": None, "flags": [True, False],
        "rng": rng.bit_generator.state,  # 128-bit integers
        "torch_rng": torch.get_rng_state(),
        "python_like": (3, (1, 2, 3), None),
        "int_keys": {0: torch.arange(3), 5: {"momentum_buffer": None}},
        "arrays": {"bool": np.array([True, False]), "u64": np.array([2 ** 63 + 5], np.uint64),
                   "f32": np.linspace(0, 1, 4, dtype=np.float32)},
        "optimizer": optimizer.state_dict(),
    }
    path = save_training_state(tmp_path / "t.state.safetensors", state)
    back = load_training_state(path)
    assert back["step"] == 12 and back["epsilon"] == 0.25 and back["none"] is None and back["flags"] == [True, False]
    assert back["python_like"] == (3, (1, 2, 3), None)
    assert torch.equal(back["int_keys"][0], torch.arange(3)) and back["int_keys"][5] == {"momentum_buffer": None}
    assert torch.equal(back["torch_rng"], state["torch_rng"])
    for k, v in state["arrays"].items():
        assert back["arrays"][k].dtype == v.dtype and np.array_equal(back["arrays"][k], v)
    restored = np.random.default_rng()
    restored.bit_generator.state = back["rng"]
    assert restored.random() == rng.random()
    optimizer.load_state_dict(back["optimizer"])  # a real optimizer state dict survives
    with pytest.raises(ValueError, match="without pickle"):
        save_training_state(tmp_path / "bad.safetensors", {"x": object()})
    with pytest.raises(CheckpointError, match="expected 'grasp-training-state'"):
        load_training_state(save_model(tmp_path / "m.safetensors", _fcn(), num_rotations=4))
    assert checkpoint.training_state_path(tmp_path / "m.safetensors").name == "m.state.safetensors"


def write_with_record(path, fcn, edit):
    """A checkpoint whose header record has been edited by hand (`edit(record)` changes it in place)."""
    from safetensors.torch import save_file

    good = save_model(path.with_name("good_" + path.name), fcn, num_rotations=4, zoom=1, profile="tiny", version=3)
    record = json.loads(sidecar_path(good).read_text())
    edit(record)
    tensors = {k: v.contiguous() for k, v in fcn.state_dict().items()}
    save_file(tensors, str(path), metadata={checkpoint._HEADER_KEY: json.dumps(record)})
    return path


def _set(key, value):
    return lambda r: r.__setitem__(key, value)


BAD_RECORDS = [  # issue 11, defect 2: each of these was a TypeError deep inside a loader
    ("num_rotations_word", _set("num_rotations", "sixteen"), "'num_rotations' must be an integer"),
    ("num_rotations_bool", _set("num_rotations", True), "'num_rotations' must be an integer"),
    ("num_rotations_zero", _set("num_rotations", 0), "'num_rotations' must be an integer >= 1"),
    ("num_rotations_huge", _set("num_rotations", 10 ** 9), "<= 256"),
    ("num_rotations_float", _set("num_rotations", 16.0), "'num_rotations' must be an integer"),
    ("trunk_list", _set("trunk", ["small_cnn"]), "'trunk' must be a non-empty string"),
    ("trunk_null", _set("trunk", None), "'trunk' must be a non-empty string"),
    ("profile_list", _set("profile", ["tiny"]), "'profile' must be a non-empty string or null"),
    ("zoom_text", _set("zoom", "2"), "'zoom' must be an integer"),
    ("zoom_huge", _set("zoom", 1000), "<= 8"),
    ("back_rotation", _set("back_rotation", "cubic"), "'back_rotation' must be one of 'nearest', 'bilinear'"),
    ("version_negative", _set("version", -1), "'version' must be an integer >= 0"),
    ("version_text", _set("version", "3"), "'version' must be an integer >= 0"),
    ("step_missing", lambda r: r.pop("step"), "'step' is missing"),
    ("config_list", _set("config", [1, 2]), "'config' must be a JSON object"),
    ("stride_wrong", _set("stride", 16), "'stride' is 16 but a small_cnn trunk has 4"),
    ("channels_text", _set("trunk_channels", "64"), "'trunk_channels' must be an integer"),
    ("stage_number", _set("stage", 3), "'stage' must be a non-empty string"),
    ("action_space_list", _set("action_space", [True]), "'action_space' must be null or an object"),
    ("action_space_text_bool", _set("action_space", {"object_mask": "yes", "min_height_m": 0.01,
                                                     "edge_margin_m": 0.0, "symmetric_q": False}),
     "'action_space' must be null or an object"),
    ("action_space_negative", _set("action_space", {"object_mask": True, "min_height_m": 0.01,
                                                    "edge_margin_m": -1.0, "symmetric_q": False}),
     "'action_space' must be null or an object"),
    ("action_space_missing_field", _set("action_space", {"object_mask": True}),
     "'action_space' must be null or an object"),
]


@pytest.mark.parametrize("name,edit,message", BAD_RECORDS, ids=[b[0] for b in BAD_RECORDS])
def test_every_metadata_field_is_checked(tmp_path, name, edit, message):
    path = write_with_record(tmp_path / f"{name}.safetensors", _fcn(), edit)
    for load in (load_model, load_fcn, load_q_network):
        with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
            load(path)
        assert "bad metadata" in str(info.value) and str(path) in str(info.value)


def test_several_bad_fields_are_named_at_once(tmp_path):
    def edit(r):
        r.update(num_rotations="sixteen", trunk=["x"], profile=["tiny"])
    path = write_with_record(tmp_path / "many.safetensors", _fcn(), edit)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    for key in ("num_rotations", "trunk", "profile"):
        assert f"'{key}'" in str(info.value)


def test_unknown_trunk_name_is_refused_by_the_network_loaders(tmp_path):
    path = write_with_record(tmp_path / "alien.safetensors", _fcn(), _set("trunk", "alexnet"))
    load_model(path)  # the weights and record are readable ...
    with pytest.raises(CheckpointError, match="unknown trunk 'alexnet'"):
        load_q_network(path)  # ... but no network can be built from them


def test_the_action_space_round_trips_and_old_records_get_a_named_default(tmp_path):
    """Issue 23: a checkpoint records the action space its grasps are chosen in; one without the record (older
    files) gets the default preset's when it has jaw geometry, else the seed's, and says so."""
    from grasp_core.action_space import ActionSpaceConfig
    from grasp_core.jaw_geometry import JawGeometry
    from grasp_core.learning import PRESETS

    actions = ActionSpaceConfig(object_mask=True, min_height_m=0.02, edge_margin_m=0.012, symmetric_q=True)
    _, record = load_model(save_model(tmp_path / "a.safetensors", _fcn(), num_rotations=4, action_space=actions))
    assert checkpoint.served_action_space(record) == (actions, checkpoint.ACTION_SPACE_RECORDED)

    _, old = load_model(write_with_record(tmp_path / "old.safetensors", _fcn(), lambda r: r.pop("action_space")))
    served, why = checkpoint.served_action_space(old)
    assert served == PRESETS["seed"].actions and "records no action space" in why and "'seed'" in why

    fcn = _fcn()
    fcn.enable_jaw_geometry(JawGeometry(pixel_m=0.004))
    _, jaw = load_model(write_with_record(tmp_path / "jaw.safetensors", fcn, lambda r: r.pop("action_space")))
    served, why = checkpoint.served_action_space(jaw)
    assert served == PRESETS["default"].actions and "jaw geometry" in why and "'default'" in why
    served.edge_margin_m = 1.0  # a copy: the preset is not changed through it
    assert PRESETS["default"].actions.edge_margin_m == 0.016
