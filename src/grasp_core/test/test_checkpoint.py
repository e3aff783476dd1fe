"""Checkpoints: safetensors + JSON round trips, no pickle, and clear errors."""
import json

import numpy as np
import pytest
import torch

from grasp_core import checkpoint
from grasp_core.checkpoint import (CheckpointError, load_fcn, load_model, load_q_network, load_training_state,
                                   load_weights_into, save_model, save_training_state, sidecar_path)
from grasp_core.networks import build_fcn

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
