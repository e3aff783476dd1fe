#!/usr/bin/env bash
# Ours and vanilla at 2, 4 and 6 objects, 2 seeds x 100 attempts (cut from 250 for the session's time).
cd "$(dirname "$0")/../.."
scripts/in_env.sh python -m grasp_experiments.cli run --methods ours vanilla --objects 2 4 6 --seeds 2 --steps 100 \
  --jobs 2 --threads 1 --no-loss-comparison --set exploration.epsilon_decay_steps=250 --out runs/exp4/counts100 --quiet
echo "counts: done $(date -u)"
