#!/usr/bin/env bash
# Q4's GPU measurements in one device-tool command (~8 min on one H200), all processes side by side:
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
EPOCHS=${EPOCHS:-30}
EMA=${EMA:-0.999}
TOY_SEEDS=${TOY_SEEDS:-8}
TOY_STEPS=${TOY_STEPS:-10000}
TRAIN_S=${TRAIN_S:-450}   # per DCGAN run, wall clock (SIGINT: the trainer saves; KILL 20 s later)
DEVICE=${DEVICE:-cuda}
EVAL_N=${EVAL_N:-10000}
DCGAN_EXTRA=${DCGAN_EXTRA:-}   # e.g. "--limit 512 --max-steps 20" for a smoke test
ig() { python3 -m imagegen_lib.cli "$@"; }

if [ "$TOY_SEEDS" != 0 ]; then
  ( /usr/bin/time -f "%e s" python3 -m imagegen_lib.cli toy-sweep --set all --seeds "$TOY_SEEDS" \
      --steps "$TOY_STEPS" --device "$DEVICE" --out "$out/toy_sweep.json" ) > "$out/toy_sweep.log" 2>&1 &
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
