"""The two trunks of a `TwoStreamFCN` run by ONNX Runtime (`InferenceOptions(backend="onnxruntime")`).

Why: on CPU, torch runs MobileNetV3's depthwise convolutions slowly; onnxruntime ran the `fast` profile's trunks
~2x faster with the same outputs (benchmarks/bench_inference.py). The learner of the default preset trains only
the head, so the trunks stay fixed for a whole run: they are exported once and the small head, the back-rotation
and the upsampling stay in torch.

Sessions are shared by every network in the process (the harness's acting copy and its learner hold the same
trunks) and keyed by a hash of the trunks' weights, the input's spatial size and the thread count: a changed
trunk weight makes a new export, never a stale answer. The batch dimension is dynamic. The hash is recomputed
only when a trunk tensor's version counter moves, which every torch in-place change does (a write through the
legacy `tensor.data` escapes it: call `clear_sessions()` after one).
"""
from __future__ import annotations

import hashlib
import io
import threading
import warnings
import weakref
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from grasp_core.networks import TwoStreamFCN

ONNX_OPSET = 17
MAX_SESSIONS = 4  # kept sessions (each holds a copy of the trunk weights); least recently used dropped first

_sessions: OrderedDict[tuple, object] = OrderedDict()
_lock = threading.Lock()


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:
        raise RuntimeError("InferenceOptions(backend='onnxruntime') needs the onnxruntime package: pip install "
                           "onnxruntime (pinned in requirements.txt), or use backend='torch'") from e
    return onnxruntime


class _Trunks(nn.Module):
    """`fcn.features` as a module to export (normalisation and both trunks, no head)."""

    def __init__(self, fcn: TwoStreamFCN):
        super().__init__()
        self.fcn = fcn

    def forward(self, color: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.fcn.features(color, depth)


def _trunk_tensors(fcn: TwoStreamFCN) -> list[tuple[str, torch.Tensor]]:
    """Everything `fcn.features` depends on: the trunks' parameters and buffers, and the normalisation."""
    named = [(f"color_trunk.{k}", v) for k, v in fcn.color_trunk.state_dict(keep_vars=True).items()]
    named += [(f"depth_trunk.{k}", v) for k, v in fcn.depth_trunk.state_dict(keep_vars=True).items()]
    return named + [("color_mean", fcn.color_mean), ("color_std", fcn.color_std)]


def trunk_weights_hash(fcn: TwoStreamFCN) -> str:
    """Hash of the trunks' weights (names, shapes and values)."""
    digest = hashlib.sha1(fcn.trunk_name.encode(), usedforsecurity=False)  # a cache key, not a signature
    for name, tensor in _trunk_tensors(fcn):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _cheap_fingerprint(fcn: TwoStreamFCN) -> tuple:
    """Changes whenever a trunk tensor is replaced or changed in place by torch (optimiser steps, load_state_dict,
    copy_): the tensors' identities and version counters. Lets `_weights_hash` skip hashing ~8 MB per call."""
    return tuple((id(t), t.data_ptr(), t._version) for _, t in _trunk_tensors(fcn))


_hash_memo: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # fcn -> (fingerprint, hash)


def _weights_hash(fcn: TwoStreamFCN) -> str:
    fingerprint = _cheap_fingerprint(fcn)
    memo = _hash_memo.get(fcn)
    if memo is not None and memo[0] == fingerprint:
        return memo[1]
    weights_hash = trunk_weights_hash(fcn)
    _hash_memo[fcn] = (fingerprint, weights_hash)
    return weights_hash


def _export(fcn: TwoStreamFCN, height: int, width: int) -> bytes:
    """The trunks as an ONNX model (eval mode: BatchNorm with running statistics) for inputs of one size."""
    color = torch.zeros(2, 3, height, width)
    depth = torch.zeros(2, 1, height, width)
    was_training = fcn.training
    fcn.eval()
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notices
            torch.onnx.export(_Trunks(fcn), (color, depth), buffer, input_names=["color", "depth"],
                              output_names=["features"], opset_version=ONNX_OPSET, dynamo=False,
                              dynamic_axes={"color": {0: "batch"}, "depth": {0: "batch"}, "features": {0: "batch"}})
    finally:
        fcn.train(was_training)
    return buffer.getvalue()


def _new_session(model: bytes, threads: int):
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning worker threads steal the CPU from the robot's other processes (and from torch's own threads).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def _session(fcn: TwoStreamFCN, height: int, width: int):
    key = (_weights_hash(fcn), height, width, torch.get_num_threads())
    with _lock:
        if key in _sessions:
            _sessions.move_to_end(key)
            return _sessions[key]
        session = _new_session(_export(fcn, height, width), key[-1])
        _sessions[key] = session
        while len(_sessions) > MAX_SESSIONS:
            _sessions.popitem(last=False)
        return session


def trunk_features(fcn: TwoStreamFCN, color: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """`fcn.features(color, depth)` (eval mode) computed by onnxruntime: (B, 2C, H / stride, W / stride) fp32."""
    _onnxruntime()  # the clear error first
    if color.device.type != "cpu" or depth.device.type != "cpu":
        raise ValueError(f"the onnxruntime backend runs on CPU; the inputs are on {color.device}: use "
                         "backend='torch' for a network on an accelerator")
    if color.dim() != 4 or color.shape[1] != 3 or depth.dim() != 4 or depth.shape[1] != 1 \
            or color.shape[0] != depth.shape[0] or color.shape[2:] != depth.shape[2:]:
        raise ValueError(f"expected colour (B, 3, H, W) and depth (B, 1, H, W) of one size, "
                         f"got {tuple(color.shape)} and {tuple(depth.shape)}")
    session = _session(fcn, int(color.shape[2]), int(color.shape[3]))
    inputs = {"color": np.ascontiguousarray(color.detach().float().numpy()),
              "depth": np.ascontiguousarray(depth.detach().float().numpy())}
    return torch.from_numpy(session.run(["features"], inputs)[0])


def clear_sessions() -> None:
    """Drop every kept session and remembered hash (frees the sessions' copies of the weights)."""
    with _lock:
        _sessions.clear()
        _hash_memo.clear()
