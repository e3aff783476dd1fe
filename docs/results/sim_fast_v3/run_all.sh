#!/usr/bin/env bash
# Every learning result of docs/learning.md and docs/results/sim_fast_v3, in order (2 runs at a time, 1 thread each).
# Started on 2026-11-30 from the repository root: nohup runs/exp/run_all.sh > runs/exp/run_all.log 2>&1 &
set -u
cd "$(dirname "$0")/../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
EPS="exploration.epsilon_decay_steps=250"
# 1. The four methods at 10 objects, 3 seeds x 250 attempts (also the `default` ablation row); Q_s pretrained here.
$GE run --methods ours vanilla mog poi --objects 10 --seeds 3 --steps 250 --jobs 2 --threads 1 \
  --set $EPS --out runs/exp/results --quiet
# 2. Ablation rows: ours at 10 objects, 3 seeds x 200 attempts, the results' Q_s.
row() {  # name, then --learning/--set arguments
  name=$1; shift
  mkdir -p runs/exp/ablation/$name
  ln -sfn ../../results/pretrained runs/exp/ablation/$name/pretrained
  $GE run --methods ours --objects 10 --seeds 3 --steps 200 --jobs 2 --threads 1 --no-loss-comparison "$@" \
    --out runs/exp/ablation/$name --quiet
}
row seed --learning seed --set $EPS
row no_learning --set $EPS dqn.lr=1e-12
row uniform_exploration --set $EPS exploration.mode=uniform
row no_exclusion --set $EPS exploration.exclude_failed=false
row no_anchor --set $EPS dqn.anchor_weight=0
row smooth_l1 --set $EPS dqn.loss=smooth_l1
row full_network --set $EPS dqn.trainable=all dqn.batch_size=4 dqn.replay_steps=0 dqn.lr=3e-5
# 3. Ours and vanilla at 2, 4 and 6 objects, 2 seeds x 250 attempts.
mkdir -p runs/exp/counts; ln -sfn ../results/pretrained runs/exp/counts/pretrained
$GE run --methods ours vanilla --objects 2 4 6 --seeds 2 --steps 250 --jobs 2 --threads 1 --no-loss-comparison \
  --set $EPS --out runs/exp/counts --quiet
# 4. Novel objects (Table II) with the models trained at 10 objects.
$GE novel --runs runs/exp/results --objects 10 --rounds 6 --attempts 20 --include-pretrained --threads 2 --quiet
echo "run_all: done $(date -u)"
