"""Map losses for pretraining Q_s on coarse affordance labels (seed III-A-3, Fig. 3).

`kl` (the seed's choice): both maps are distributions over the pixels of an image: the label Y in [0, 1] is
divided by its sum, the prediction is a softmax of the logits over all pixels, and the loss is
KL(Y_gt || Y_pred) = sum Y_gt (log Y_gt - log Y_pred), averaged over the batch. Softmax is shift-invariant,
so after KL pretraining the logits are affordances up to an additive constant per image.
`mse` / `smooth_l1`: the raw logits regress the label values per pixel (the seed's comparison losses).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("kl", "mse", "smooth_l1")


def _flatten(pred: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.dim() == 4 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if label.dim() == 4 and label.shape[1] == 1:
        label = label[:, 0]
    if pred.dim() != 3 or pred.shape != label.shape:
        raise ValueError(f"prediction and label must both be (B, H, W) (or (B, 1, H, W)), got "
                         f"{tuple(pred.shape)} and {tuple(label.shape)}")
    return pred.reshape(pred.shape[0], -1).float(), label.reshape(label.shape[0], -1).float().to(pred.device)


def kl_map_loss(pred_logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """KL(label / sum(label) || softmax(pred_logits)) per image, averaged over the batch."""
    pred, label = _flatten(pred_logits, label)
    if torch.any(label < 0):
        raise ValueError("label maps must be non-negative")
    mass = label.sum(dim=1, keepdim=True)
    if torch.any(mass <= 0):
        raise ValueError("a label map is all zero (no key points): KL to an empty distribution is undefined")
    target = label / mass
    return F.kl_div(F.log_softmax(pred, dim=1), target, reduction="batchmean")


def map_loss(pred_logits: torch.Tensor, label: torch.Tensor, kind: str = "kl") -> torch.Tensor:
    """One of `LOSSES` between predicted logits (B, H, W) and label maps (B, H, W) in [0, 1]."""
    if kind == "kl":
        return kl_map_loss(pred_logits, label)
    pred, target = _flatten(pred_logits, label)
    if kind == "mse":
        return F.mse_loss(pred, target)
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, target)
    raise ValueError(f"unknown map loss {kind!r}; choose one of {LOSSES}")
