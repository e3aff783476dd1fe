"""Issue 12's speed table in one run: every row measured back to back on this machine, against its goal.

Runs the benchmarks one after another (each in its own process, as a user would) and collects their numbers:

- bench_inference.py: the `fast` profile's Q maps of 16 rotations with its own inference options (ONNX Runtime
  trunks, chunks of 4), and the `paper` profile against the VPG-faithful reference in the same process;
- bench_propose_grasp.py: /propose_grasp from one client (p50) and from 4 concurrent clients (p99);
- bench_learning_step.py: the harness loop's wall time per attempt;
- a demo's summary.json (`--demo-summary`): attempts left untrained at the end. The demo takes ~10 minutes, so it
  is run on its own (`make demo`) and its summary passed in.

    scripts/in_env.sh python benchmarks/speed_table.py --demo-summary runs/demo/summary.json
Prints the table and writes benchmarks/results/speed_table.md and speed_table.json (with the load averages and the
raw JSON of every benchmark under benchmarks/results/speed_table/).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _run(script: str, args: list[str], out: Path) -> dict:
    """One benchmark in its own process; its JSON result."""
    command = [sys.executable, str(HERE / script), *args]
    print(f"[speed_table] {' '.join(command[1:])}", flush=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent / "src" / "grasp_core"),
                                                                     os.environ.get("PYTHONPATH")])))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    subprocess.run(command, check=True, env=env)
    return json.loads(out.read_text())


def _case(inference: dict, name: str) -> dict:
    for result in inference["results"]:
        if result["name"] == name:
            return result
    raise KeyError(f"bench_inference.py wrote no case {name!r}")


def table_rows(inference: dict, one_client: dict, four_clients: dict, harness: dict,
               demo: dict | None) -> list[dict]:
    """The issue's rows: what, measured value, goal, met (None when not measured)."""
    fast = _case(inference, "profile:fast")["seconds"]["ort_chunk4"]
    paper = min(_case(inference, "profile:paper")["seconds"].values())
    paper_ratio = inference["vpg_reference_seconds"] / paper
    attempt = next(r for r in harness["results"] if r["backend"] == "onnxruntime")["per_attempt"]["attempt"]
    rows = [
        dict(what="`fast` profile, Q maps of 16 rotations (its default options: ONNX Runtime, chunks of 4)",
             now=f"{fast:.3f} s", goal="<= 0.10 s", met=fast <= 0.10),
        dict(what="`/propose_grasp` p50, one client, fast profile",
             now=f"{one_client['latency_ms']['p50'] / 1000:.2f} s", goal="<= 0.15 s",
             met=one_client["latency_ms"]["p50"] <= 150),
        dict(what="`/propose_grasp` p99, 4 concurrent clients",
             now=f"{four_clients['latency_ms']['p99'] / 1000:.2f} s "
                 f"(p50 {four_clients['latency_ms']['p50'] / 1000:.2f} s)",
             goal="p99 <= 1 s", met=four_clients["latency_ms"]["p99"] <= 1000),
        dict(what="`paper` profile (best variant) vs VPG's grasp network (2 DenseNet-121 trunks, 640 px, fp32, "
                  "one rotation at a time)",
             now=f"{paper_ratio:.1f}x faster ({paper:.1f} s vs {inference['vpg_reference_seconds']:.1f} s)",
             goal=">= 20x", met=paper_ratio >= 20),
        dict(what="experiment harness, wall time per attempt (sim + inference + update, 1 thread)",
             now=f"{attempt['wall_mean']:.2f} s (median {attempt['wall_median']:.2f} s)", goal="<= 0.5 s",
             met=attempt["wall_mean"] <= 0.5),
    ]
    if demo is None:
        rows.append(dict(what="attempts left untrained at the end of `make demo`", now="not measured in this run",
                         goal="<= 5", met=None))
    else:
        rows.append(dict(what="attempts left untrained at the end of `make demo`",
                         now=f"{demo['untrained_at_end']} ({demo['learner_updates_at_end']} updates for "
                             f"{demo['attempts']} attempts)", goal="<= 5", met=demo["untrained_at_end"] <= 5))
    return rows


def markdown(rows: list[dict], loads: dict, demo_path: str | None) -> str:
    mark = {True: "yes", False: "**no**", None: "-"}
    lines = ["# Issue 12's speed table, measured in one run", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs. 1-min load average "
             f"before / after each part: " + "; ".join(f"{k} {v[0]:.1f} / {v[1]:.1f}" for k, v in loads.items())
             + ". Made by `benchmarks/speed_table.py`; the raw numbers are in `speed_table/`.", "",
             "| what | now | goal | met |", "|---|---|---|---|"]
    lines += [f"| {r['what']} | {r['now']} | {r['goal']} | {mark[r['met']]} |" for r in rows]
    if demo_path:
        lines += ["", f"The demo row is from `{demo_path}`."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--demo-summary", help="summary.json of a `make demo` run (its untrained attempts)")
    parser.add_argument("--calls", type=int, default=120, help="/propose_grasp calls with 4 clients")
    parser.add_argument("--steps", type=int, default=30, help="harness attempts timed")
    parser.add_argument("--out", default=str(RESULTS / "speed_table.md"), help="markdown table (JSON beside it)")
    args = parser.parse_args(argv)
    demo = json.loads(Path(args.demo_summary).read_text()) if args.demo_summary else None
    if demo is not None and "untrained_at_end" not in demo:
        parser.error(f"{args.demo_summary} has no untrained_at_end: is it a grasp_bringup.demo summary.json?")

    out = Path(args.out)
    raw = out.parent / out.stem
    raw.mkdir(parents=True, exist_ok=True)
    loads = {}

    def timed(name, script, script_args, path):
        before = os.getloadavg()[0]
        result = _run(script, [*script_args, *path], Path(path[-1]))
        loads[name] = (before, os.getloadavg()[0])
        return result

    inference = timed("inference", "bench_inference.py",
                      ["--cases", "profile:fast", "profile:paper", "--variants", "fp32_chunk4", "bf16_cl_chunk4",
                       "ort_chunk4", "--no-train"], ["--out", str(raw / "inference.json")])
    one_client = timed("propose 1 client", "bench_propose_grasp.py", ["--clients", "1", "--calls", "30"],
                       ["--output", str(raw / "propose_1_client.json")])
    four_clients = timed("propose 4 clients", "bench_propose_grasp.py",
                         ["--clients", "4", "--calls", str(args.calls)],
                         ["--output", str(raw / "propose_4_clients.json")])
    harness = timed("harness", "bench_learning_step.py", ["--backends", "onnxruntime", "--steps", str(args.steps)],
                    ["--out", str(raw / "learning_step.json")])
    rows = table_rows(inference, one_client, four_clients, harness, demo)
    text = markdown(rows, loads, args.demo_summary)
    print(text)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "load_average_1min": loads,
                                                    "demo_summary": args.demo_summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
