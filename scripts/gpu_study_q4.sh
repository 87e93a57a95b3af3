#!/usr/bin/env bash
# Q4's GPU measurements in one device-tool command (~7 min on one H200), all processes side by side:
#   * the toy-GAN sweep: every recipe of `imagegen toy-sweep --set all` over TOY_SEEDS seeds;
#   * the MNIST DCGAN with an EMA of G (decay EMA) and R1 at each of GAMMAS (0: no R1), SEEDS seeds,
#     EPOCHS epochs, then the FID of the raw and of the EMA generator of every run (n = 10,000).
# R1 needs the eager step (its double backward is not in the CUDA graph), so every DCGAN run here uses
# --eager (float32), the baseline too: the runs differ only in the penalty.
#
# Usage (GPU machine, repo root; MNIST under $IMAGEGEN_DATA, checkpoints/classifier_mnist present):
#   IMAGEGEN_GIT_COMMIT=<sha> bash scripts/gpu_study_q4.sh OUT_DIR
# Then on this side: python scripts/collect_study.py q4 OUT_DIR  (writes book/results/*.json)
set -uo pipefail
out=${1:?usage: gpu_study_q4.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
SEEDS=${SEEDS:-"0 1 2"}
GAMMAS=${GAMMAS:-"0 0.1 1"}
EPOCHS=${EPOCHS:-20}
EMA=${EMA:-0.999}
TOY_SEEDS=${TOY_SEEDS:-8}
TOY_MIN=${TOY_MIN:-5}
TRAIN_S=${TRAIN_S:-420}   # per DCGAN run, wall clock (SIGINT: the trainer saves; KILL 20 s later)
DEVICE=${DEVICE:-cuda}
EVAL_N=${EVAL_N:-10000}
DCGAN_EXTRA=${DCGAN_EXTRA:-}   # e.g. "--limit 512 --max-steps 20" for a smoke test
ig() { python3 -m imagegen_lib.cli "$@"; }

# Two toy processes: WGAN-GP (5 critic steps per G step, so ~5x the cost per step) alone, everything
# else in one population; each takes as many steps as fit in TOY_MIN minutes (the JSON records them).
if [ "$TOY_SEEDS" != 0 ]; then
  for part in rest wgan-gp; do
    if [ $part = wgan-gp ]; then only=wgan-gp; else
      only=$(python3 -c "from imagegen_lib.toy.recipes import RECIPE_SETS as S; print(','.join(n for n in S['all'] if n != 'wgan-gp'))"); fi
    ig toy-sweep --set all --variants "$only" --seeds "$TOY_SEEDS" --minutes "$TOY_MIN" --device "$DEVICE" \
      --out "$out/toy_sweep_$part.json" > "$out/toy_sweep_$part.log" 2>&1 &
  done
fi
for gamma in $GAMMAS; do
  for seed in $SEEDS; do
    run=dcgan_r1-${gamma}_seed${seed}
    r1=(); [ "$gamma" != 0 ] && r1=(--r1 "$gamma")
    (
      timeout -s INT -k 20 "$TRAIN_S" python3 -m imagegen_lib.cli train dcgan --epochs "$EPOCHS" --eager \
        --ema "$EMA" "${r1[@]}" --seed "$seed" --out "$out/$run" --device "$DEVICE" --no-progress $DCGAN_EXTRA
      for weights in generator generator_ema; do
        ig eval "$out/$run/$weights.safetensors" --n "$EVAL_N" --device "$DEVICE" --json "$out/$run/$weights.eval.json"
      done
    ) > "$out/$run.log" 2>&1 &
  done
done
wait
echo "done: $(ls "$out"/*/generator*.eval.json 2>/dev/null | wc -l) evaluations"
