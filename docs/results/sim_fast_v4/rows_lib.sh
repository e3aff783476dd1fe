# Sourced by run_rows.sh and run_greedy_rows.sh: one 200-attempt ablation row (ours at 10 objects, 3 seeds, v4's
# Q_s), raw runs under runs/exp4/ablation/<name>. Needs GE set by the caller.
row() {  # name, then --learning/--set arguments
  name=$1; shift
  echo "row $name: $(date -u)"
  mkdir -p runs/exp4/ablation/$name
  ln -sfn ../../results/pretrained runs/exp4/ablation/$name/pretrained
  $GE run --methods ours --objects 10 --seeds 3 --steps 200 --jobs 2 --threads 1 --no-loss-comparison "$@" \
    --out runs/exp4/ablation/$name --quiet
}
