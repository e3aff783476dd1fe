"""Inspect a key-point dataset: a contact sheet PNG (image, points, label overlay) and a list of problems.

Problems found: images without points, an empty depth heightmap, points off every object (on the table in
the depth heightmap), and sigmas whose Gaussian covers (almost) nothing of any object (far too small, far too
large, or off target). Exit code 0: no problems; 1: problems listed; 2: the dataset cannot be read.

    python -m grasp_annotation.inspection data/real_keypoints [--sheet sheet.png]
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from grasp_core.dataset import DatasetError, KeypointDataset, KeypointSample, load_dataset

from grasp_annotation.overlay import PROBLEM_COLOR, blend, draw_points, encode_png, label_rgba


@dataclass(frozen=True)
class Problem:
    sample: str
    kind: str               # "no points", "empty depth", "point off object", "sigma covers nothing"
    detail: str
    point: int | None = None

    def __str__(self) -> str:
        where = self.sample if self.point is None else f"{self.sample} point {self.point + 1}"
        return f"{where}: {self.kind}: {self.detail}"


def object_coverage(depth: np.ndarray, point, sigma: float, height_threshold: float) -> float:
    """Share of a key point's Gaussian (the label it adds) that lies on object cells."""
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w]
    gaussian = np.exp(-((u - point[0]) ** 2 + (v - point[1]) ** 2) / (2 * sigma ** 2))
    return float((gaussian * (depth > height_threshold)).sum() / gaussian.sum())


def sample_problems(sample: KeypointSample, height_threshold: float = 0.005,
                    min_coverage: float = 0.1) -> list[Problem]:
    problems = []
    occupied = sample.depth > height_threshold
    if not occupied.any():
        problems.append(Problem(sample.id, "empty depth", f"no cell is higher than {height_threshold} m: nothing "
                                                          "to grasp, or a camera or workspace problem"))
    if len(sample.points) == 0:
        problems.append(Problem(sample.id, "no points", "not annotated yet"))
    for n, ((u, v), sigma) in enumerate(zip(sample.points, sample.sigmas)):
        height = float(sample.depth[int(v), int(u)])
        if height <= height_threshold:
            problems.append(Problem(sample.id, "point off object",
                                    f"({u:.1f}, {v:.1f}) is {height * 1000:.1f} mm above the table", n))
        coverage = object_coverage(sample.depth, (u, v), sigma, height_threshold)
        if coverage < min_coverage:
            problems.append(Problem(sample.id, "sigma covers nothing",
                                    f"only {coverage:.0%} of the Gaussian (sigma {sigma:.1f} px) lies on an object", n))
    return problems


def find_problems(dataset: KeypointDataset, height_threshold: float = 0.005,
                  min_coverage: float = 0.1) -> list[Problem]:
    return [p for s in dataset.samples for p in sample_problems(s, height_threshold, min_coverage)]


def contact_sheet(dataset: KeypointDataset, problems: list[Problem], columns: int = 5,
                  scale: float = 1.0) -> np.ndarray:
    """RGB uint8 grid: each image with its label overlay and points; problem images framed and captioned in red."""
    if columns < 1 or scale <= 0:
        raise ValueError(f"need columns >= 1 and scale > 0, got {columns} and {scale}")
    if len(dataset) == 0:
        raise ValueError("the dataset holds no samples: nothing to show")
    by_sample: dict[str, list[Problem]] = {}
    for p in problems:
        by_sample.setdefault(p.sample, []).append(p)
    h, w = dataset.workspace.shape
    cell_w, cell_h, caption, pad = int(round(w * scale)), int(round(h * scale)), 22, 6
    rows = math.ceil(len(dataset) / columns)
    sheet = np.full((rows * (cell_h + caption + pad) + pad, columns * (cell_w + pad) + pad, 3), 32, np.uint8)
    for i, sample in enumerate(dataset.samples):
        image = blend(sample.color, label_rgba(sample.depth.shape, sample.points, sample.sigmas))
        sample_problems = by_sample.get(sample.id, [])
        bad = {p.point for p in sample_problems if p.point is not None}
        tile = draw_points(image, sample.points, sample.sigmas, scale, bad)
        top, left = pad + (i // columns) * (cell_h + caption + pad), pad + (i % columns) * (cell_w + pad)
        sheet[top:top + cell_h, left:left + cell_w] = tile
        if sample_problems:
            cv2.rectangle(sheet, (left - 2, top - 2), (left + cell_w + 1, top + cell_h + 1), PROBLEM_COLOR, 2)
        text = f"{sample.id}  {len(sample.points)} pt"
        if sample_problems:
            text += f"  {len(sample_problems)} problem{'s' if len(sample_problems) > 1 else ''}"
        cv2.putText(sheet, text, (left + 2, top + cell_h + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    PROBLEM_COLOR if sample_problems else (230, 230, 230), 1, cv2.LINE_AA)
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="inspect_dataset", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a grasp-keypoints dataset folder")
    parser.add_argument("--sheet", help="contact sheet PNG to write (default DATASET/contact_sheet.png)")
    parser.add_argument("--columns", type=int, default=5, help="tiles per row of the contact sheet")
    parser.add_argument("--scale", type=float, default=1.0, help="tile size / heightmap size")
    parser.add_argument("--height-threshold", type=float, default=0.005, help="metres above the table = object")
    parser.add_argument("--min-coverage", type=float, default=0.1,
                        help="least share of a point's Gaussian that must lie on an object")
    args = parser.parse_args(argv)
    try:
        dataset = load_dataset(args.dataset)
        problems = find_problems(dataset, args.height_threshold, args.min_coverage)
        sheet_path = Path(args.sheet) if args.sheet else Path(args.dataset) / "contact_sheet.png"
        sheet_path.write_bytes(encode_png(contact_sheet(dataset, problems, args.columns, args.scale)))
    except (DatasetError, ValueError, OSError) as e:
        print(f"inspect_dataset: error: {e}", file=sys.stderr)
        return 2
    points = sum(len(s.points) for s in dataset.samples)
    annotated = sum(len(s.points) > 0 for s in dataset.samples)
    print(f"{args.dataset}: {len(dataset)} images ({annotated} annotated), {points} key points, "
          f"heightmaps {dataset.workspace.shape[1]}x{dataset.workspace.shape[0]}")
    print(f"contact sheet: {sheet_path}")
    for problem in problems:
        print(f"  {problem}")
    print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}" + (" found" if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
