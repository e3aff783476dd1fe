#!/usr/bin/env bash
# Does greedy success keep climbing past 250 attempts (docs/learning.md 1.7: the angle needs more labels)? Ours at
# 10 objects, the default, 2 seeds x 1000 attempts (the seed's horizon), epsilon 0.5 -> 0.001 over 250, the Q
# network kept every 250 attempts and greedy on the same 40 fresh scenes as 1.6. Raw runs under runs/exp6/long/.
#   nohup docs/results/sim_fast_v4/run_long.sh > runs/exp6/run_long.log 2>&1 &
set -u
cd "$(dirname "$0")/../../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
mkdir -p runs/exp6/long docs/results/sim_fast_v4/greedy_rows
ln -sfn ../../exp4/results/pretrained runs/exp6/long/pretrained
$GE run --methods ours --objects 10 --seeds 2 --steps 1000 --jobs 2 --threads 1 --no-loss-comparison \
  --set exploration.epsilon_decay_steps=250 --checkpoint-every 250 --out runs/exp6/long --quiet
scripts/in_env.sh python -m grasp_experiments.diagnosis --checkpoints runs/exp6/long/runs/ours/objects_10/seed_* \
  --objects 10 --scenes 40 --seed 7000 --threads 2 --out docs/results/sim_fast_v4/greedy_rows/default_1000.json
echo "run_long: done $(date -u)"
