#!/usr/bin/env bash
# The ablation rows run_all.sh had left out (3 seeds x 200 attempts at 10 objects, the same Q_s), in order of
# importance; run after run_curve.sh. Raw runs under runs/exp4/ablation/.
#   nohup docs/results/sim_fast_v4/run_rows.sh > runs/exp4/run_rows.log 2>&1 &
# What ran (third session): every row up to and including `boltzmann`; `gamma_0.5_target_net` was stopped
# unfinished for the session's time; the rows after it did not start.
set -u
cd "$(dirname "$0")/../../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
EPS="exploration.epsilon_decay_steps=250"
source docs/results/sim_fast_v4/rows_lib.sh
row seed --learning seed --set $EPS
row uniform_exploration --set $EPS exploration.mode=uniform
row no_exclusion --set $EPS exploration.exclude_failed=false
row one_sample_updates --set $EPS dqn.batch_size=1 dqn.replay_steps=1
row sgd_1e-4 --set $EPS dqn.optimizer=sgd dqn.lr=1e-4
row one_rotation_trained --set $EPS dqn.train_opposite_rotation=false
row boltzmann --set $EPS exploration.mode=boltzmann
row gamma_0.5_target_net --set $EPS dqn.loss=smooth_l1 dqn.gamma=0.5 dqn.target_update_every=20 dqn.double_dqn=true
row publish_every_10 --set $EPS publish_every=10
row full_network --set $EPS dqn.trainable=all dqn.batch_size=4 dqn.replay_steps=0 dqn.lr=3e-5
# Not run yet (the third session ended first): the default again on the final code, and two ways to learn faster
# from the same attempts.
row default_final_code --set $EPS
row replay_steps_4 --set $EPS dqn.replay_steps=4
row lr_3e-3 --set $EPS dqn.lr=3e-3
echo "run_rows: done $(date -u)"
