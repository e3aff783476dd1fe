#!/usr/bin/env bash
# The demo (make demo) as a user runs it, one seed after another; outputs under runs/exp12/demo_seed<N>; curves and
# summaries copied to docs/results/sim_fast_v7/demo_seed<N>_{curve.png,summary.json}.
#   nohup docs/results/sim_fast_v7/run_demos.sh 2 4 > runs/exp12/demos.log 2>&1 &
cd "$(dirname "$0")/../../.."
mkdir -p runs/exp12
DOCS=docs/results/sim_fast_v7
for s in "$@"; do
  scripts/in_env.sh python -m grasp_bringup.demo --seed $s --output runs/exp12/demo_seed$s > runs/exp12/demo_seed$s.log 2>&1
  cp runs/exp12/demo_seed$s/learning_curve.png $DOCS/demo_seed${s}_curve.png
  cp runs/exp12/demo_seed$s/summary.json $DOCS/demo_seed${s}_summary.json
  echo "demo seed $s: done $(date -u)"
done
