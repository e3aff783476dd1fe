"""One record per grasp attempt, with one writer and one reader, for every producer of attempt logs.

The in-process loop (grasp_core.learning.LearningLoop, the experiment harness's runs), the executor node
(`csv_path`) and the demo (`attempts.csv`) all log `AttemptRecord`s through `AttemptWriter`, so their files have
the same columns. A log is two files side by side, appended to and flushed after every attempt:
    <name>.jsonl   one JSON object per attempt, typed (None stays null): what `read_attempts` reads
    <name>.csv     the same table for spreadsheets (None is an empty cell)
A field a producer cannot know is None (the executor has no TD target or loss; the node graph's executor has no
simulator key points), or "" for text.
"""
from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

LOG_NAME = "attempts"  # <directory>/attempts.jsonl + attempts.csv


@dataclass
class AttemptRecord:
    """What is logged for every grasp attempt."""

    step: int  # the producer's attempt index (per robot in the node graph)
    success: int
    reward: float
    explored: bool
    epsilon: float
    rotation: int
    u: int  # heightmap column of the grasp
    v: int  # heightmap row
    angle: float  # jaw angle, radians
    predicted_q: float
    target: float | None  # TD target (learning in-process only)
    loss: float | None
    grad_norm: float | None
    replayed: int | None
    diverged: bool | None
    failure_reason: int  # grasp_core.grasp_failure.GraspFailure
    grasped_object: str
    objects_remaining: int  # -1 when the backend cannot count them
    scene_reset: bool
    reset_why: str
    excluded: int | None  # failed grasps excluded when this one was chosen
    on_object: bool | None  # the depth heightmap stands > 1 cm at the grasp pixel (localisation diagnosis)
    keypoint_mm: float | None  # distance to the nearest object's key point (simulated worlds only)
    model_version: int
    roi_pixels: int | None
    seconds: float | None
    source: str = ""  # who made the attempt: a robot namespace, a harness run
    experience_id: str = ""  # the experience's id (GraspExperience.id, the replay record)
    wall_time: float | None = None  # Unix time the attempt was logged
    x: float | None = None  # grasp position (jaw centre, surface height) in the base frame, metres
    y: float | None = None
    z: float | None = None
    terminal: bool | None = None
    message: str = ""  # what the backend said

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


ATTEMPT_FIELDS = tuple(f.name for f in dataclasses.fields(AttemptRecord))


def log_paths(path: str | Path) -> tuple[Path, Path]:
    """(jsonl, csv) of a log: `path` is a directory (its attempts.jsonl / .csv) or either file of the pair."""
    path = Path(path)
    if path.suffix in (".jsonl", ".csv"):
        return path.with_suffix(".jsonl"), path.with_suffix(".csv")
    return path / f"{LOG_NAME}.jsonl", path / f"{LOG_NAME}.csv"


class AttemptWriter:
    """Appends records to a log (`log_paths`), flushing both files after each one. An existing log is continued
    (`append=True`) or replaced."""

    def __init__(self, path: str | Path, append: bool = False):
        self.jsonl_path, self.csv_path = log_paths(path)
        self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
        mode = "a" if append else "w"
        new_csv = not append or not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        self._jsonl = open(self.jsonl_path, mode, encoding="utf-8")
        self._csv_file = open(self.csv_path, mode, newline="", encoding="utf-8")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=ATTEMPT_FIELDS)
        if new_csv:
            self._csv.writeheader()
            self._csv_file.flush()

    def write(self, record: AttemptRecord) -> None:
        row = record.as_dict()
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()
        self._csv.writerow(row)
        self._csv_file.flush()

    def close(self) -> None:
        self._jsonl.close()
        self._csv_file.close()

    def __enter__(self) -> "AttemptWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_attempts(path: str | Path, records) -> None:
    """A whole log at once (replacing one that is there)."""
    with AttemptWriter(path) as writer:
        for record in records:
            writer.write(record)


@dataclass(frozen=True)
class AttemptJump:
    """An attempt number that does not follow the one before from the same source."""

    source: str
    previous: int  # the attempt seen before from this source
    attempt: int  # the one just seen

    @property
    def restarted(self) -> bool:
        """The producer began its numbering again (it restarted), or re-sent an older attempt."""
        return self.attempt <= self.previous

    @property
    def lost(self) -> int:
        """Attempts missing between the two: experiences that never arrived."""
        return max(self.attempt - self.previous - 1, 0)

    def describe(self) -> str:
        if self.restarted:
            return (f"{self.source or '?'} sent attempt {self.attempt} after attempt {self.previous}: it restarted "
                    "its numbering (or re-sent an old attempt)")
        missing = (f"attempt {self.previous + 1}" if self.lost == 1
                   else f"attempts {self.previous + 1}-{self.attempt - 1}")
        return (f"lost {self.lost} experience{'s' if self.lost > 1 else ''} from {self.source or '?'}: {missing} "
                f"never arrived (attempt {self.attempt} came after {self.previous})")


class AttemptNumbering:
    """Each producer (an executor: `source`) numbers its attempts 1, 2, 3, ... and sends them in order on a reliable
    topic, so a jump forward from one source means experiences lost on the way (a burst larger than the topic's
    queue), found only by the receiver; a step back means the producer restarted. The first attempt seen from a
    source is its starting point (`last` may be filled from what is already stored)."""

    def __init__(self):
        self.last: dict[str, int] = {}  # source -> last attempt seen

    def observe(self, source: str, attempt: int) -> AttemptJump | None:
        """Record `attempt` from `source`; the jump it makes, if it does not follow the last one seen."""
        previous = self.last.get(source)
        self.last[source] = int(attempt)
        if previous is None or attempt == previous + 1:
            return None
        return AttemptJump(source, previous, int(attempt))


def read_attempts(path: str | Path) -> list[dict]:
    """The records of a log (`log_paths`: a directory, or its .jsonl or .csv), in order, as dicts."""
    jsonl_path, _ = log_paths(path)
    with open(jsonl_path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
