"""The two terms of a trained network's Q maps: the head's and the jaw geometry's. Q is their sum and both are
linear read-outs, so the head's term is Q with the geometry head's weights at zero, and the geometry's is the rest."""
import torch


def head_and_geometry_terms(qnet, color, depth, inference):
    """(head term, geometry term) as (R, H, W) arrays for one heightmap; the network is left as it was."""
    q = qnet.predict(color, depth, inference)
    weight = qnet.fcn.geometry_head.weight.detach().clone()
    with torch.no_grad():
        qnet.fcn.geometry_head.weight.zero_()
    try:
        q_head = qnet.predict(color, depth, inference)
    finally:
        with torch.no_grad():
            qnet.fcn.geometry_head.weight.copy_(weight)
    return q_head, q - q_head
