#!/usr/bin/env bash
# Issue 22, phase 2 (after run_all.sh's phase 1, sharing its Q_s): the seed's own comparison in its own setting
# (the `seed` preset for ours and vanilla, at the learning rate as the seed wrote it, 1e-3, and as VPG has it, 1e-4),
# Table I at 2, 4 and 6 objects, MoG and PoI, then the novel-object test. Shorter runs than phase 1 (the session's
# CPU budget); epsilon decays over each run's attempts.
#   nohup docs/results/sim_mesh_v8/run_phase2.sh > runs/exp22/run_phase2.log 2>&1 &
set -u
cd "$(dirname "$0")/../../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
R=runs/exp22/results
until grep -q "phase 1 done" runs/exp22/run_all.log 2>/dev/null; do sleep 20; done
share() { mkdir -p "$1"; ln -sfn "$(realpath $R/pretrained)" "$1/pretrained"; }
# 2a. The seed preset (SGD, gamma 0.9, anywhere, each rotation's own Q), lr 1e-4 (VPG's), ours and vanilla.
share runs/exp22/seed_lr1e-4
$GE run --methods ours vanilla --objects 10 --seeds 2 --steps 200 --jobs 2 --threads 1 --no-loss-comparison \
  --learning seed --set exploration.epsilon_decay_steps=200 --out runs/exp22/seed_lr1e-4 --quiet
# 2b. The same at lr 1e-3 (the seed's "10e-4" as written).
share runs/exp22/seed_lr1e-3
$GE run --methods ours vanilla --objects 10 --seeds 2 --steps 200 --jobs 2 --threads 1 --no-loss-comparison \
  --learning seed --set exploration.epsilon_decay_steps=200 dqn.lr=1e-3 --out runs/exp22/seed_lr1e-3 --quiet
# 3. Table I at 2, 4 and 6 objects: ours and vanilla, 1 seed x 150 attempts (default preset as phase 1 ran it:
#    without giving up on a spot, exploration.give_up_after=0).
share runs/exp22/table1
$GE run --methods ours vanilla --objects 2 4 6 --seeds 1 --steps 150 --jobs 2 --threads 1 --no-loss-comparison \
  --set exploration.epsilon_decay_steps=150 exploration.give_up_after=0 --out runs/exp22/table1 --quiet
# 4. MoG and PoI at 10 objects, 2 seeds x 200 attempts (default preset as phase 1 ran it).
share runs/exp22/baselines
$GE run --methods mog poi --objects 10 --seeds 2 --steps 200 --jobs 2 --threads 1 --no-loss-comparison \
  --set exploration.epsilon_decay_steps=200 exploration.give_up_after=0 --out runs/exp22/baselines --quiet
echo "run_phase2: done $(date -u)"
