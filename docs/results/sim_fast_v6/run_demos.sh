#!/usr/bin/env bash
# The demo (make demo) as a user runs it, one seed after another; outputs under runs/exp9/demo_seed<N>. The fifth
# session ran seeds 1, 5, 6, 3, 0 in that order (1 with the harness paused, the rest beside it; a first seed-5 run,
# started before the camera fix, stalled on lost heightmaps and was stopped: runs/exp9/demo_seed5_aborted_*); curves and
# summaries copied to docs/results/sim_fast_v6/demo_seed<N>_{curve.png,summary.json}.
cd "$(dirname "$0")/../../.."
seeds=${*:-1 5 6 3 0}
for s in $seeds; do
  scripts/in_env.sh python -m grasp_bringup.demo --seed $s --output runs/exp9/demo_seed$s > runs/exp9/demo_seed$s.log 2>&1
done
