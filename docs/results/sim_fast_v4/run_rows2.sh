#!/usr/bin/env bash
# More ablation rows, after run_rows.sh, on the final code (trunks in ONNX Runtime, the update reading Q from its
# score cells): the default again (for a same-code reference), then two ways to learn faster from the same attempts.
#   nohup docs/results/sim_fast_v4/run_rows2.sh > runs/exp4/run_rows2.log 2>&1 &
# Not run yet: the third session ended first.
set -u
cd "$(dirname "$0")/../../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
EPS="exploration.epsilon_decay_steps=250"
row() {  # name, then --learning/--set arguments
  name=$1; shift
  echo "row $name: $(date -u)"
  mkdir -p runs/exp4/ablation/$name
  ln -sfn ../../results/pretrained runs/exp4/ablation/$name/pretrained
  $GE run --methods ours --objects 10 --seeds 3 --steps 200 --jobs 2 --threads 1 --no-loss-comparison "$@" \
    --out runs/exp4/ablation/$name --quiet
}
row default_final_code --set $EPS
row replay_steps_4 --set $EPS dqn.replay_steps=4
row lr_3e-3 --set $EPS dqn.lr=3e-3
echo "run_rows2: done $(date -u)"
