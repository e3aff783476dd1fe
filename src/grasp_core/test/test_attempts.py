"""The attempt log every producer shares (grasp_core.attempts): one schema, one writer, one reader."""
import csv
import json

from grasp_core.attempts import ATTEMPT_FIELDS, AttemptRecord, AttemptWriter, log_paths, read_attempts, write_attempts


def record(step: int, **known) -> AttemptRecord:
    fields = dict(step=step, success=step % 2, reward=float(step % 2), explored=False, epsilon=0.25, rotation=3,
                  u=10, v=20, angle=1.25, predicted_q=0.5, target=None, loss=None, grad_norm=None, replayed=None,
                  diverged=None, failure_reason=0, grasped_object="", objects_remaining=-1, scene_reset=False,
                  reset_why="", excluded=None, on_object=None, keypoint_mm=None, model_version=2, roi_pixels=None,
                  seconds=None)
    fields.update(known)
    return AttemptRecord(**fields)


def test_the_writer_keeps_a_typed_jsonl_and_a_csv_with_the_same_columns(tmp_path):
    with AttemptWriter(tmp_path / "robot1.csv") as writer:
        writer.write(record(0, message="nothing grasped", x=0.1))
        writer.write(record(1, loss=0.01, diverged=False))
    rows = read_attempts(tmp_path / "robot1.csv")
    assert [r["step"] for r in rows] == [0, 1] and rows[0]["loss"] is None and rows[1]["diverged"] is False
    assert rows[0]["message"] == "nothing grasped" and rows[0]["x"] == 0.1
    assert read_attempts(tmp_path / "robot1.jsonl") == rows
    with open(tmp_path / "robot1.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert tuple(table[0]) == ATTEMPT_FIELDS and len(table) == 2 and table[0]["loss"] == ""
    assert tuple(json.loads((tmp_path / "robot1.jsonl").read_text().splitlines()[0])) == ATTEMPT_FIELDS


def test_a_log_is_continued_or_replaced(tmp_path):
    write_attempts(tmp_path, [record(0), record(1)])
    assert log_paths(tmp_path) == (tmp_path / "attempts.jsonl", tmp_path / "attempts.csv")
    with AttemptWriter(tmp_path, append=True) as writer:
        writer.write(record(2))
    assert [r["step"] for r in read_attempts(tmp_path)] == [0, 1, 2]
    assert len((tmp_path / "attempts.csv").read_text().splitlines()) == 4  # one header
    write_attempts(tmp_path, [record(5)])
    assert [r["step"] for r in read_attempts(tmp_path)] == [5]
