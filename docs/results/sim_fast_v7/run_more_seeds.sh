#!/usr/bin/env bash
# Seeds 5-9 of ours, vanilla and MoG at 10 objects, with the code and settings of run_all.sh step 1, to tell the
# three apart at attempts 101-200 (with 5 seeds each they were inside one standard deviation). Seeds 0-4 are
# run_all.sh's own runs, copied in (a copy, so that nothing here can touch them); raw runs under runs/exp13/.
#   nohup docs/results/sim_fast_v7/run_more_seeds.sh > runs/exp13/run.log 2>&1 &
set -eu
cd "$(dirname "$0")/../../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
R=runs/exp13/results
mkdir -p $R
ln -sfn ../../exp/results/pretrained $R/pretrained
for m in ours vanilla mog; do
  mkdir -p $R/runs/$m/objects_10
  for s in 00 01 02 03 04; do
    [ -e $R/runs/$m/objects_10/seed_$s ] || cp -a runs/exp12/results/runs/$m/objects_10/seed_$s $R/runs/$m/objects_10/
  done
done
$GE run --methods ours vanilla mog --objects 10 --seeds 10 --steps 250 --jobs 2 --threads 1 \
  --no-loss-comparison --set exploration.epsilon_decay_steps=250 --out $R --quiet
echo "run_more_seeds: done $(date -u)"
