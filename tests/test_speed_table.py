"""benchmarks/speed_table.py turns the benchmarks' JSON into issue 12's rows, each judged against its goal."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("speed_table", ROOT / "benchmarks" / "speed_table.py")
speed_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(speed_table)


def _inputs(fast_s, p50_ms, p99_ms, attempt_s):
    inference = {"vpg_reference_seconds": 40.0, "results": [
        {"name": "vpg_reference", "seconds": {"fp32_sequential": 40.0}},
        {"name": "profile:fast", "seconds": {"fp32_chunk4": 0.6, "ort_chunk4": fast_s}},
        {"name": "profile:paper", "seconds": {"fp32_chunk4": 10.0, "bf16_cl_chunk4": 4.0}}]}
    latency = lambda p50, p99: {"latency_ms": {"p50": p50, "p99": p99}}  # noqa: E731
    harness = {"results": [{"backend": "onnxruntime",
                            "per_attempt": {"attempt": {"wall_mean": attempt_s, "wall_median": attempt_s}}}]}
    return inference, latency(p50_ms, p50_ms), latency(p50_ms * 2, p99_ms), harness


def test_rows_are_judged_against_the_goals():
    rows = speed_table.table_rows(*_inputs(0.08, 120, 900, 0.4),
                                  {"untrained_at_end": 3, "learner_updates_at_end": 247, "attempts": 250})
    assert [r["met"] for r in rows] == [True, True, True, False, True, True]  # paper: 40 / 4 = 10x < 20x
    assert "10.0x faster" in rows[3]["now"]

    rows = speed_table.table_rows(*_inputs(0.29, 450, 1700, 1.3), None)
    assert [r["met"] for r in rows] == [False, False, False, False, False, None]
    text = speed_table.markdown(rows, {"inference": (1.0, 2.0)}, None)
    assert text.count("**no**") == 5 and "not measured in this run" in text
