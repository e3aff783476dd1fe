import numpy as np
import pytest
import torch

from grasp_core.losses import LOSSES, kl_map_loss, map_loss


def gaussian_map(centre, size=24, sigma=3.0):
    v, u = np.mgrid[0:size, 0:size]
    return torch.from_numpy(np.exp(-((u - centre[0]) ** 2 + (v - centre[1]) ** 2) / (2 * sigma ** 2))).float()


def test_kl_is_zero_for_identical_distributions_and_positive_otherwise():
    label = gaussian_map((8, 12))[None]
    # Logits whose softmax is exactly label / sum(label) (any additive constant).
    logits = torch.log(label / label.sum()) + 3.0
    assert abs(kl_map_loss(logits, label).item()) < 1e-5
    assert kl_map_loss(torch.zeros_like(label), label).item() > 0.1  # uniform prediction
    moved = torch.log(gaussian_map((16, 6))[None] + 1e-12)
    assert kl_map_loss(moved, label).item() > kl_map_loss(logits, label).item() + 1.0
    # Closed form for a uniform prediction: KL = sum p log p + log(N).
    p = (label / label.sum()).flatten()
    expected = float((p[p > 0] * torch.log(p[p > 0])).sum() + np.log(p.numel()))
    assert kl_map_loss(torch.zeros_like(label), label).item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("kind", LOSSES)
def test_gradients_flow_and_lower_the_loss(kind):
    torch.manual_seed(0)
    label = torch.stack([gaussian_map((5, 5)), gaussian_map((18, 10))])
    logits = torch.randn(2, 1, 24, 24, requires_grad=True)
    loss = map_loss(logits, label, kind)
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    with torch.no_grad():
        stepped = logits - 1.0 * logits.grad / logits.grad.abs().max()
    assert map_loss(stepped, label, kind).item() < loss.item()


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="all zero"):
        kl_map_loss(torch.zeros(1, 8, 8), torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="unknown map loss"):
        map_loss(torch.zeros(1, 8, 8), torch.ones(1, 8, 8), "ce")
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        map_loss(torch.zeros(1, 8, 8), torch.ones(1, 8, 9))
