#!/usr/bin/env bash
# The `fast_bilinear` profile (`fast` with its rotated input sampled bilinearly, grasp_core.rotation). Ours at 10
# objects, 3 seeds x 250 attempts, a Q_s pretrained here as in v4 (same 50 key-point images, Adam 1e-3, 8 epochs),
# each run keeping its Q network every 50 attempts; every checkpoint greedy on the same 40 fresh scenes as v4's
# docs/learning.md 1.6 (world seeds 7000-7039). Raw runs under runs/exp7/curve/.
#   nohup docs/results/sim_fast_v5/run_curve.sh > runs/exp7/run_curve.log 2>&1 &
# The committed numbers ran while `fast` itself had input_sampling="bilinear" (the same network as fast_bilinear).
set -u
cd "$(dirname "$0")/../../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
OUT=docs/results/sim_fast_v5
mkdir -p runs/exp7/curve
$GE run --methods ours --objects 10 --seeds 3 --steps 250 --jobs 2 --threads 1 --no-loss-comparison \
  --profile fast_bilinear --set exploration.epsilon_decay_steps=250 --checkpoint-every 50 --out runs/exp7/curve --quiet
scripts/in_env.sh python -m grasp_experiments.diagnosis --checkpoints runs/exp7/curve/runs/ours/objects_10/seed_* \
  --objects 10 --scenes 40 --seed 7000 --threads 2 --out $OUT/greedy_ours.json
echo "run_curve: done $(date -u)"
