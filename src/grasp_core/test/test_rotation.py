"""RotatingQNetwork: the angle convention, 90-degree equivariance and the fast-inference options."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from grasp_core.networks import TwoStreamFCN, build_fcn, heightmaps_to_tensors
from grasp_core.rotation import InferenceOptions, RotatingQNetwork

torch.set_num_threads(1)
R = 16
SIZE = 48


def lollipop_template(scale: int) -> np.ndarray:
    """A blob at the kernel centre with a bar running to +u (the image's horizontal axis): direction-sensitive."""
    k = 28 * scale + 1
    c = (k - 1) / 2
    v, u = np.mgrid[0:k, 0:k].astype(float)
    blob = (u - c) ** 2 + (v - c) ** 2 <= (2.5 * scale) ** 2
    bar = (u >= c) & (u <= c + 12 * scale) & (np.abs(v - c) <= 1.0 * scale)
    t = (blob | bar).astype(np.float32)
    return t - t.mean()  # zero mean: blind to the constant background


def matched_filter_fcn(scale: int) -> TwoStreamFCN:
    """An FCN whose colour trunk is a matched filter for the lollipop; the head passes its response through."""
    t = torch.from_numpy(lollipop_template(scale))
    k = t.shape[0]
    color = nn.Conv2d(3, 1, k, stride=scale, padding=k // 2, bias=False)
    depth = nn.Conv2d(3, 1, 1, stride=scale, bias=False)
    with torch.no_grad():
        color.weight.copy_(t.expand(1, 3, k, k) / 3)
        depth.weight.zero_()
    fcn = TwoStreamFCN(color, depth, trunk_channels=1, stride=scale)
    with torch.no_grad():
        fcn.head.conv0.weight.zero_()
        fcn.head.conv0.weight[0, 0] = 1.0
        fcn.head.conv1.weight.zero_()
        fcn.head.conv1.weight[0, 0] = 1.0
    return fcn.eval()


def draw_lollipop(angle: float, centre: tuple[float, float], size: int = SIZE) -> np.ndarray:
    """White lollipop on black: blob at `centre` (u, v), bar pointing along (cos a, sin a) in (u, v) pixels."""
    v, u = np.mgrid[0:size, 0:size].astype(float)
    du, dv = u - centre[0], v - centre[1]
    along = du * math.cos(angle) + dv * math.sin(angle)
    across = -du * math.sin(angle) + dv * math.cos(angle)
    shape = (du ** 2 + dv ** 2 <= 6.25) | ((along >= 0) & (along <= 12) & (np.abs(across) <= 1.0))
    img = np.zeros((size, size, 3), np.uint8)
    img[shape] = 255
    return img


def argmax3(q: np.ndarray) -> tuple[int, int, int]:
    i, v, u = np.unravel_index(int(np.argmax(q)), q.shape)
    return int(i), int(u), int(v)


@pytest.mark.parametrize("zoom", [1, 2])
def test_rotating_input_by_90_degrees_moves_argmax_by_a_quarter_turn(zoom):
    qnet = RotatingQNetwork(matched_filter_fcn(scale=zoom), num_rotations=R, zoom=zoom).eval()
    k = 3  # the lollipop points along a_3 = 67.5 deg
    centre = (20.0, 27.0)
    color = draw_lollipop(k * 2 * math.pi / R, centre)
    depth = np.zeros((SIZE, SIZE), np.float32)
    q = qnet.predict(color, depth)
    assert q.shape == (R, SIZE, SIZE)
    i, u, v = argmax3(q)
    # Convention: Q[i] is for jaws closing along a_i; the trunk sees the input rotated by -a_i, so the
    # template's +u bar matches the drawn bar only at i = k, centred on the blob.
    assert i == k
    assert abs(u - centre[0]) <= 1 and abs(v - centre[1]) <= 1
    assert q[i].max() > 1.2 * np.delete(q, i, axis=0).max()  # a clear winner: the test means something

    # np.rot90(k=-1) rotates the (u, v) frame by +90 deg: (du, dv) -> (-dv, du), pixel (u, v) -> (W-1-v, u).
    q_rot = qnet.predict(np.rot90(color, k=-1).copy(), np.rot90(depth, k=-1).copy())
    i2, u2, v2 = argmax3(q_rot)
    assert i2 == (k + R // 4) % R
    assert abs(u2 - (SIZE - 1 - v)) <= 2 and abs(v2 - u) <= 2


def test_rotation_zero_is_the_plain_fcn_and_padding_matches_vpg():
    torch.manual_seed(0)
    fcn = build_fcn("small_cnn").eval()
    qnet = RotatingQNetwork(fcn, num_rotations=4, zoom=1).eval()
    rng = np.random.default_rng(0)
    color, depth = heightmaps_to_tensors(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
                                         rng.random((32, 32), dtype=np.float32) * 0.05)
    side, top, left = qnet.padding(32, 32)
    assert (side, top, left) == (48, 8, 8)  # >= diagonal 45.3, divisible by stride 4, centred
    with torch.no_grad():
        padded = fcn(torch.nn.functional.pad(color, (8, 8, 8, 8)), torch.nn.functional.pad(depth, (8, 8, 8, 8)))
        q0 = qnet(color, depth, [0])
    torch.testing.assert_close(q0[0], padded[0, 0, 8:40, 8:40], rtol=1e-5, atol=1e-5)
    # VPG: 224 px, zoom 2, stride-32 trunk -> padded to 320 (640 after zoom), crop offset 48.
    vpg = RotatingQNetwork(TwoStreamFCN(nn.Identity(), nn.Identity(), 3, 32), num_rotations=16, zoom=2)
    assert vpg.padding(224, 224) == (320, 48, 48)


def test_fast_inference_options_agree_with_fp32_one_batch():
    qnet = RotatingQNetwork(matched_filter_fcn(scale=1), num_rotations=8, zoom=1).eval()
    color = draw_lollipop(2 * 2 * math.pi / 8, (25.0, 22.0))
    depth = np.zeros((SIZE, SIZE), np.float32)
    reference = qnet.predict(color, depth, InferenceOptions())
    for options in (InferenceOptions(chunk_size=1), InferenceOptions(chunk_size=3, bf16=True),
                    InferenceOptions(chunk_size=None, bf16=True, channels_last=True)):
        q = qnet.predict(color, depth, options)
        assert argmax3(q) == argmax3(reference), options
        assert np.abs(q - reference).max() <= 0.1 * np.abs(reference).max(), options

    # A random trunk with BN (eval mode): chunking is exact in fp32, bf16 stays close.
    torch.manual_seed(1)
    rnet = RotatingQNetwork(build_fcn("small_cnn"), num_rotations=8, zoom=2)
    rng = np.random.default_rng(1)
    c = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    d = rng.random((40, 40), dtype=np.float32) * 0.05
    ref = rnet.predict(c, d)
    np.testing.assert_allclose(rnet.predict(c, d, InferenceOptions(chunk_size=1)), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rnet.predict(c, d, InferenceOptions(channels_last=True)), ref, rtol=1e-4, atol=1e-5)
    fast = rnet.predict(c, d, InferenceOptions(chunk_size=4, bf16=True, channels_last=True))
    assert np.abs(fast - ref).max() <= 0.15 * np.ptp(ref)  # bf16 keeps ~3 significant digits per layer
    assert np.corrcoef(fast.ravel(), ref.ravel())[0, 1] > 0.99
    assert rnet.training  # q_maps restores the mode it found


def test_forward_batch_one_rotation_per_input_and_bad_input():
    torch.manual_seed(2)
    qnet = RotatingQNetwork(build_fcn("small_cnn"), num_rotations=4, zoom=1).eval()
    color = torch.rand(2, 3, 32, 32)
    depth = torch.rand(2, 1, 32, 32) * 0.05
    with torch.no_grad():
        both = qnet(color, depth, [1, 3])
        first = qnet(color[:1], depth[:1], [1])
        second = qnet(color[1:], depth[1:], [3])
    torch.testing.assert_close(both, torch.cat((first, second)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="rotation index 4"):
        qnet(color[:1], depth[:1], [4])
    with pytest.raises(ValueError, match="need 1 or 3"):
        qnet(color, depth, [0, 1, 2])
    with pytest.raises(ValueError, match="zoom"):
        RotatingQNetwork(build_fcn("small_cnn"), zoom=0)
