#!/usr/bin/env bash
# The demo in the realistic world (the default): seeds 0, 1 and 2, one after another; curves and summaries copied
# here. Seed 0 is `make demo` as the README runs it.
set -eu
cd "$(dirname "$0")/../../.."
make demo
cp demo_output/learning_curve.png docs/results/sim_mesh_v8/demo_seed0_curve.png
cp demo_output/summary.json docs/results/sim_mesh_v8/demo_seed0_summary.json
for s in 1 2; do
  make demo DEMO_ARGS="--seed $s --output runs/demos/seed$s"
  cp runs/demos/seed$s/learning_curve.png docs/results/sim_mesh_v8/demo_seed${s}_curve.png
  cp runs/demos/seed$s/summary.json docs/results/sim_mesh_v8/demo_seed${s}_summary.json
done
