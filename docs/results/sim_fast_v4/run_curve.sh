#!/usr/bin/env bash
# Greedy success over learning: ours and vanilla at 10 objects, 3 seeds x 250 attempts, each run keeping its Q
# network every 50 attempts; every checkpoint greedy on the same 40 fresh scenes, in the run's own action space.
# Raw runs under runs/exp4/curve/; the tables and plots land in docs/results/sim_fast_v4/greedy_*.{json,png}.
#   nohup docs/results/sim_fast_v4/run_curve.sh > runs/exp4/run_curve.log 2>&1 &
set -u
cd "$(dirname "$0")/../../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
mkdir -p runs/exp4/curve
ln -sfn ../results/pretrained runs/exp4/curve/pretrained
$GE run --methods ours vanilla --objects 10 --seeds 3 --steps 250 --jobs 2 --threads 1 --no-loss-comparison \
  --set exploration.epsilon_decay_steps=250 --checkpoint-every 50 --out runs/exp4/curve --quiet
for m in ours vanilla; do
  scripts/in_env.sh python -m grasp_experiments.diagnosis --checkpoints runs/exp4/curve/runs/$m/objects_10/seed_* \
    --objects 10 --scenes 40 --seed 7000 --threads 2 --out docs/results/sim_fast_v4/greedy_$m.json
done
echo "run_curve: done $(date -u)"
