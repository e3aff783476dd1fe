#!/usr/bin/env bash
# The demo (make demo) with two seeds, as a user runs it; outputs under runs/exp4/demo_seed<N>.
cd "$(dirname "$0")/../.."
for s in 0 1; do
  scripts/in_env.sh python -m grasp_bringup.demo --seed $s --output runs/exp4/demo_seed$s > runs/exp4/demo_seed$s.log 2>&1
done
