#!/usr/bin/env python3
"""Rebuild grasp_core/sim/data/random_objects.npz from the `pybullet` wheel's pybullet_data/random_urdfs.

The wheel (zlib licence) is only a data source: this reads it as a zip file, nothing imports pybullet. Each
`NNN.obj` is already a convex decomposition (one `o` group per convex part); the URDFs scale it by 0.015 and carry
placeholder mass and inertia, so only the vertices are kept and the world derives mass from density. Each part is
reduced to its convex-hull vertices, the object is centred on its bounding box, and degenerate objects are left
out with the reason recorded in the file (`skipped_ids`, `skipped_reasons`).

Usage: pip download pybullet==3.2.7 --no-deps -d /tmp/pb && \
       python scripts/extract_random_objects.py /tmp/pb/pybullet-3.2.7-*.whl
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np
from scipy.spatial import ConvexHull, QhullError

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/grasp_core/grasp_core/sim/data/random_objects.npz"
URDF_SCALE = 0.015
MIN_EXTENT_M = 0.005      # thinner than this in any direction: flat, no grasp can hold it
MIN_PART_VOLUME_M3 = 1e-9  # a part below 1 mm^3 is a sliver MuJoCo cannot hull reliably


def parse_parts(obj_text: str) -> list[np.ndarray]:
    parts: list[list[list[float]]] = []
    for line in obj_text.splitlines():
        if line.startswith("o ") or (line.startswith("v ") and not parts):
            parts.append([])
        if line.startswith("v "):
            parts[-1].append([float(t) for t in line.split()[1:4]])
    return [np.asarray(p, dtype=np.float64) * URDF_SCALE for p in parts if p]


def hull_parts(parts: list[np.ndarray]) -> tuple[list[np.ndarray], str]:
    """(convex-hull vertices of each usable part, reason the object is unusable or '')."""
    if any(not np.all(np.isfinite(p)) for p in parts):
        return [], "NaN vertices"
    points = np.concatenate(parts)
    extent = points.max(axis=0) - points.min(axis=0)
    if extent.min() < MIN_EXTENT_M:
        return [], f"flat: {extent.min() * 1000:.1f} mm thick"
    kept = []
    for p in parts:
        try:
            hull = ConvexHull(p)
        except QhullError:
            continue
        if hull.volume >= MIN_PART_VOLUME_M3:
            kept.append(p[hull.vertices])
    if not kept:
        return [], "no part with volume"
    return kept, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("wheel", type=Path, help="the pybullet wheel (.whl)")
    parser.add_argument("--out", type=Path, default=OUT, help="the .npz to write")
    args = parser.parse_args(argv)
    wheel = zipfile.ZipFile(args.wheel)
    ids, part_counts, vertex_counts, vertices, skipped, reasons = [], [], [], [], [], []
    for i in range(1000):
        parts = parse_parts(wheel.read(f"pybullet_data/random_urdfs/{i:03d}/{i:03d}.obj").decode())
        kept, reason = hull_parts(parts)
        if reason:
            skipped.append(i)
            reasons.append(reason)
            continue
        points = np.concatenate(kept)
        centre = 0.5 * (points.min(axis=0) + points.max(axis=0))
        ids.append(i)
        part_counts.append(len(kept))
        vertex_counts.extend(len(k) for k in kept)
        vertices.extend(k - centre for k in kept)
    licence = wheel.read("pybullet-3.2.7.dist-info/LICENSE.txt").decode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, ids=np.array(ids, np.int16), part_counts=np.array(part_counts, np.int16),
                        vertex_counts=np.array(vertex_counts, np.int16),
                        vertices=np.concatenate(vertices).astype(np.float32),
                        skipped_ids=np.array(skipped, np.int16), skipped_reasons=np.array(reasons),
                        source=np.array(f"{args.wheel.name}: pybullet_data/random_urdfs, scale {URDF_SCALE}"))
    (args.out.parent / "LICENSE-pybullet_data.txt").write_text(
        "random_objects.npz is derived from pybullet_data/random_urdfs in the pybullet 3.2.7 wheel\n"
        "(convex-hull vertices of each part, scaled by 0.015, centred). Its licence:\n\n" + licence)
    print(f"{len(ids)} objects ({sum(part_counts)} parts, {sum(vertex_counts)} vertices), skipped "
          f"{dict(zip(skipped, reasons))} -> {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
