"""A record of every grasp attempt: running success over a window (seed IV-C's G) and an append-only CSV."""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from grasp_core.metrics import windowed_success


@dataclass(frozen=True)
class AttemptRecord:
    """One row of the CSV."""

    attempt: int
    wall_time: float
    experience_id: str
    reward: float
    failure_reason: int
    terminal: bool
    objects_remaining: int  # -1 when the backend cannot count them
    x: float
    y: float
    z: float
    angle: float
    pixel_x: int
    pixel_y: int
    rotation_index: int
    epsilon: float
    explored: bool
    predicted_q: float
    model_version: int
    message: str


CSV_COLUMNS = [f.name for f in fields(AttemptRecord)] + ["window_success"]


class AttemptLog:
    """Keeps the outcomes for G = successes / window and appends each attempt to `csv_path` (if given; created with
    its header at the first attempt, appended to when it exists)."""

    def __init__(self, window: int = 100, csv_path: str | Path | None = None):
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = int(window)
        self.outcomes: list[int] = []
        self.csv_path = Path(csv_path) if csv_path else None

    def add(self, record: AttemptRecord) -> float:
        """Record one attempt; returns G over the last `window` attempts."""
        self.outcomes.append(1 if record.reward > 0.5 else 0)
        g = self.window_success()
        if self.csv_path is not None:
            row = asdict(record)
            row["window_success"] = round(g, 6)
            new_file = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
            if new_file:
                self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            with self.csv_path.open("a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
                if new_file:
                    writer.writeheader()
                writer.writerow(row)
        return g

    def window_success(self) -> float:
        """G = S / M over the last M = window attempts (missing attempts count as failures, as in the seed)."""
        return float(windowed_success(self.outcomes, self.window, partial="fixed")[-1]) if self.outcomes else 0.0
