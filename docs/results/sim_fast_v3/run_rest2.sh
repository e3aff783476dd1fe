#!/usr/bin/env bash
# Stages 2-4 of run_all.sh, cut to the session's time: 5 ablation rows (smooth_l1 and full_network left to the
# pilots of docs/learning.md), then the object counts and the novel-object test. Waits for stage 1 to finish.
set -u
cd "$(dirname "$0")/../.."
# (stage 1 finishes its last PoI run beside these)
GE="scripts/in_env.sh python -m grasp_experiments.cli"
EPS="exploration.epsilon_decay_steps=250"
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
mkdir -p runs/exp/counts; ln -sfn ../results/pretrained runs/exp/counts/pretrained
$GE run --methods ours vanilla --objects 2 4 6 --seeds 2 --steps 250 --jobs 2 --threads 1 --no-loss-comparison \
  --set $EPS --out runs/exp/counts --quiet
while pgrep -f "grasp_experiments.cli run --methods ours vanilla mog poi" > /dev/null; do sleep 10; done
$GE novel --runs runs/exp/results --objects 10 --rounds 6 --attempts 20 --include-pretrained --threads 2 --quiet
echo "run_rest: done $(date -u)"
