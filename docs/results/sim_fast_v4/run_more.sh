#!/usr/bin/env bash
# Third session's runs: two more demo seeds (the node graph over DDS, as `make demo --seed N` runs it); outputs
# under runs/exp4/demo_seed<N>. The ablation rows it went on to were moved to run_rows.sh, which ran after
# run_curve.sh.
#   nohup docs/results/sim_fast_v4/run_more.sh > runs/exp4/run_more.log 2>&1 &
set -u
cd "$(dirname "$0")/../../.."
for s in 2 3; do
  echo "demo seed $s: $(date -u)"
  scripts/in_env.sh python -m grasp_bringup.demo --seed $s --output runs/exp4/demo_seed$s > runs/exp4/demo_seed$s.log 2>&1
done
