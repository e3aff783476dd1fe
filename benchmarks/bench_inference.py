"""Inference time of /propose_grasp: Q maps for all rotations of one heightmap, per profile and per trunk.

For every case (a profile, or a trunk at the `fast` profile's geometry) it times `RotatingQNetwork.q_maps`
under each inference variant (fp32 or channels_last + bf16 autocast; all rotations in one batch, in chunks of
4, or one at a time; `ort_*`: the trunks in onnxruntime, grasp_core.ort_trunks, timed after the one-off export
and reported with their largest difference from fp32) and one training step (one rotation, forward + backward +
SGD, fp32). The VPG-style reference is VPG's own setting: two DenseNet-121 trunks, a 224 px heightmap zoomed to
448 and padded to 640, fp32, one rotation at a time (VPG's models.py loops over the 16 rotations with batch 1); the
`ratio` column is reference time / case time. Every case
uses its profile's padding and back-rotation (the trunk cases the `fast` profile's).

    PYTHONPATH=src/grasp_core python benchmarks/bench_inference.py            # everything (~5 min on 2 cores)
    PYTHONPATH=src/grasp_core python benchmarks/bench_inference.py --repeats 1 --cases fast tiny
Prints a table and writes benchmarks/results/inference.json and inference.md.

On a machine shared with other busy processes, run with OMP_WAIT_POLICY=PASSIVE: with the default (spinning)
OpenMP threads, 2-thread torch slowed down ~4x under a load average of 5 in our measurements.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "grasp_core"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from grasp_core.networks import TRUNKS, build_fcn, heightmaps_to_tensors, trunk_info  # noqa: E402
from grasp_core.profiles import PROFILES, get_profile  # noqa: E402
from grasp_core.rotation import InferenceOptions, RotatingQNetwork  # noqa: E402

VARIANTS = {
    "fp32_batch": InferenceOptions(),
    "fp32_chunk4": InferenceOptions(chunk_size=4),
    "fp32_sequential": InferenceOptions(chunk_size=1),
    "bf16_cl_batch": InferenceOptions(channels_last=True, bf16=True),
    "bf16_cl_chunk4": InferenceOptions(channels_last=True, bf16=True, chunk_size=4),
    "bf16_cl_sequential": InferenceOptions(channels_last=True, bf16=True, chunk_size=1),
    "ort_batch": InferenceOptions(backend="onnxruntime"),
    "ort_chunk4": InferenceOptions(backend="onnxruntime", chunk_size=4),
}


@dataclass(frozen=True)
class Case:
    name: str
    trunk: str
    heightmap_px: int
    num_rotations: int
    zoom: int
    resolution: float
    pad: str = "diagonal"
    back_rotation: str = "nearest"
    input_sampling: str = "nearest"

    def build(self) -> RotatingQNetwork:
        # Random weights: timing does not depend on them (and poi's ImageNet file need not be present).
        return RotatingQNetwork(build_fcn(self.trunk), self.num_rotations, self.zoom, self.back_rotation, self.pad,
                                self.input_sampling)


def all_cases() -> dict[str, Case]:
    cases = {}
    for p in PROFILES.values():
        if p.name == "poi":  # the same network as fast_mobilenet_v2
            continue
        cases[f"profile:{p.name}"] = Case(f"profile:{p.name}", p.trunk, p.heightmap_size, p.num_rotations, p.zoom,
                                          p.resolution, p.pad, p.back_rotation, p.input_sampling)
    fast = get_profile("fast")
    for trunk in TRUNKS:
        if trunk == "small_cnn" or any(p.trunk == trunk and p.heightmap_size == fast.heightmap_size
                                       and p.zoom == fast.zoom for p in PROFILES.values()):
            continue  # CI-only, or already timed as a profile with the same geometry
        cases[f"trunk:{trunk}"] = Case(f"trunk:{trunk}", trunk, fast.heightmap_size, fast.num_rotations, fast.zoom,
                                       fast.resolution, fast.pad, fast.back_rotation, fast.input_sampling)
    return cases


VPG_REFERENCE = Case("vpg_reference", "densenet121", 224, 16, 2, 0.002)
VPG_REFERENCE_VARIANT = "fp32_sequential"  # as VPG runs it: one rotation per forward pass


def _inputs(px: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    color = rng.integers(0, 256, (px, px, 3), dtype=np.uint8)
    depth = (rng.random((px, px), dtype=np.float32) * 0.05).astype(np.float32)
    return heightmaps_to_tensors(color, depth)


def _time(fn, repeats: int, slow_seconds: float) -> tuple[float, int]:
    """Median seconds of `repeats` runs after one warm-up run (a warm-up slower than slow_seconds is the result)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    if first > slow_seconds:
        return first, 1
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), repeats


def bench_case(case: Case, variants: list[str], repeats: int, slow_seconds: float, train: bool) -> dict:
    torch.manual_seed(0)
    qnet = case.build().eval()
    color, depth = _inputs(case.heightmap_px)
    side, _, _ = qnet.padding(case.heightmap_px, case.heightmap_px)
    result = {**asdict(case), "trunk_input_px": side * case.zoom,
              "feature_cells": side * case.zoom // trunk_info(case.trunk).stride,
              "feature_cell_m": trunk_info(case.trunk).stride / case.zoom * case.resolution, "seconds": {}, "runs": {}}
    if train:
        optimizer = torch.optim.SGD(qnet.parameters(), lr=1e-4, momentum=0.9, weight_decay=2e-5)

        def train_step():
            qnet.train()
            q = qnet(color, depth, [3])
            loss = torch.nn.functional.smooth_l1_loss(q[0, 5, 5], torch.tensor(1.0))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            qnet.eval()
        result["seconds"]["train_step"], result["runs"]["train_step"] = _time(train_step, repeats, slow_seconds)
    # fp32 variants first: channels_last converts the weights in place.
    reference = qnet.q_maps(color, depth) if any(v.startswith("ort_") for v in variants) else None
    for name in sorted(variants, key=lambda v: VARIANTS[v].channels_last):
        options = VARIANTS[name]
        if options.backend == "onnxruntime" and "ort_export" not in result["seconds"]:
            start = time.perf_counter()
            q = qnet.q_maps(color, depth, options)  # the one-off export and session, not part of the timing
            result["seconds"]["ort_export"] = time.perf_counter() - start
            result["ort_max_abs_error"] = float((q - reference).abs().max())
            result["max_abs_q"] = float(reference.abs().max())
        result["seconds"][name], result["runs"][name] = _time(lambda: qnet.q_maps(color, depth, options), repeats,
                                                              slow_seconds)
    return result


def _table(results: list[dict], reference: float | None, variants: list[str]) -> str:
    head = ["case", "trunk", "px", "pad", "zoom", "cells", "cell cm"] + variants + ["train_step", "best", "ratio"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        s = r["seconds"]
        best = min(t for v, t in s.items() if v in variants or v == VPG_REFERENCE_VARIANT)  # the reference's own
        ratio = f"{reference / best:.1f}x" if reference else "-"
        cells = [r["name"], r["trunk"], str(r["heightmap_px"]), r["pad"], str(r["zoom"]), str(r["feature_cells"]),
                 f"{100 * r['feature_cell_m']:.1f}"]
        cells += [f"{s[v]:.3f}" if v in s else "-" for v in variants]
        cells += [f"{s['train_step']:.3f}" if "train_step" in s else "-", f"{best:.3f}", ratio]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _ort_notes(results: list[dict]) -> str:
    """One line per case with onnxruntime variants: export time and agreement with fp32 torch."""
    lines = [f"- {r['name']}: onnxruntime export + first run {r['seconds']['ort_export']:.2f} s; max |Q_ort - "
             f"Q_torch| = {r['ort_max_abs_error']:.2e} (max |Q| {r['max_abs_q']:.2e})"
             for r in results if "ort_max_abs_error" in r]
    return "\n" + "\n".join(lines) + "\n" if lines else ""


def main(argv: list[str] | None = None) -> int:
    cases = all_cases()
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=None,
                        help=f"case names or suffixes (default: all): {', '.join(cases)}")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                        help="inference variants to time")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant after one warm-up")
    parser.add_argument("--slow-seconds", type=float, default=4.0,
                        help="a warm-up run slower than this is taken as the only measurement")
    parser.add_argument("--no-reference", action="store_true", help="skip the VPG reference (~20 s per run)")
    parser.add_argument("--no-train", action="store_true", help="skip the training-step timing")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "inference.json"),
                        help="JSON file for the results")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    chosen = [c for n, c in cases.items()
              if args.cases is None or any(n == s or n.endswith(":" + s) for s in args.cases)]
    if not chosen:
        parser.error(f"no case matches {args.cases}; known: {', '.join(cases)}")
    results, reference = [], None
    todo = ([] if args.no_reference else [VPG_REFERENCE]) + chosen
    for case in tqdm(todo, desc="inference benchmark", unit="case"):
        variants = [VPG_REFERENCE_VARIANT] if case is VPG_REFERENCE else args.variants
        r = bench_case(case, variants, args.repeats, args.slow_seconds, train=not args.no_train and case is not
                       VPG_REFERENCE)
        if case is VPG_REFERENCE:
            reference = r["seconds"][VPG_REFERENCE_VARIANT]
        results.append(r)
        tqdm.write(f"{case.name}: " + ", ".join(f"{k} {v:.3f}s" for k, v in r["seconds"].items()))
    table = _table(results, reference, args.variants)
    print(table)
    record = {"benchmark": "inference", "what": "seconds for the Q maps of all rotations of one heightmap "
              "(median of --repeats runs after a warm-up); train_step = one rotation forward+backward+SGD",
              "vpg_reference_seconds": reference, "threads": args.threads, "cpu_count": os.cpu_count(),
              "machine": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
              "repeats": args.repeats, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    out.with_suffix(".md").write_text(
        f"# Inference benchmark\n\nSeconds for the Q maps of all rotations of one heightmap on {args.threads} "
        f"threads ({platform.processor() or platform.machine()}, torch {torch.__version__}). `ratio` = VPG "
        f"reference ({reference if reference is None else round(reference, 2)} s: two DenseNet-121 trunks, 640 px "
        "input, fp32, one rotation at a time as in VPG) / the case's best variant. `cells` = score-map side "
        "before upsampling; `cell cm` = "
        f"workspace distance between cells. 1-min load average before/after: {load_before[0]:.1f} / "
        f"{os.getloadavg()[0]:.1f} (other work on the machine slows every number).\n\n{table}\n{_ort_notes(results)}")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
