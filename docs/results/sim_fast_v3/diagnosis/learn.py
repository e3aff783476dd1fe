"""Quick in-process learning run for diagnosis: python runs/diag/learn.py OUT PRESET STEPS SEED [overrides...]"""
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
from grasp_experiments.runner import RunSpec, read_attempts, run_learning  # noqa: E402 (after MUJOCO_GL)

out, preset, steps, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
overrides = tuple(a for a in sys.argv[5:] if "=" in a and not a.startswith("qs="))
qs = next((a[3:] for a in sys.argv[5:] if a.startswith("qs=")), "runs/diag/qs_e8.safetensors")
method = next((a[7:] for a in sys.argv[5:] if a.startswith("method=")), "ours")
spec = RunSpec(method, 10, seed, steps, "fast", learning=preset, overrides=overrides)
t = time.time()
done = run_learning(spec, out, qs if method == "ours" else None, threads=1, progress=False, keep_replay=True)
rows = read_attempts(out)
s = np.array([r["success"] for r in rows])
w = [round(float(s[i:i+50].mean()), 2) for i in range(0, len(s), 50)]
off = [round(1 - float(np.mean([r["on_object"] for r in rows[i:i+50]])), 2) for i in range(0, len(s), 50)]
print(json.dumps({"out": out, "preset": preset, "overrides": overrides, "seed": seed, "G_per_50": w,
                  "off_object_per_50": off, "seconds": round(time.time() - t, 1),
                  "diverged": int(sum(r["diverged"] for r in rows)), "s_per_step": done["seconds_per_step"]}))
