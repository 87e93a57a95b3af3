#!/usr/bin/env bash
# Q6's models and measurements on one GPU, in phases that each fit one device call (≤ 10 minutes).
#
#   IMAGEGEN_DATA=.gpu IMAGEGEN_GIT_COMMIT=<sha> bash scripts/gpu_train_q6.sh train  OUT_DIR
#   IMAGEGEN_DATA=.gpu IMAGEGEN_GIT_COMMIT=<sha> ANCESTRAL="q6_eps_mnist …" bash scripts/gpu_train_q6.sh ancestral OUT_DIR
#   IMAGEGEN_DATA=.gpu IMAGEGEN_GIT_COMMIT=<sha> ANCESTRAL="…the rest" bash scripts/gpu_train_q6.sh curves OUT_DIR
# (.gpu/MNIST/raw: the four MNIST files, gzipped; checkpoints/ needs classifier_mnist, and for the
# curves phase the shipped q6_* files; FP32=path of the ε model's fp32 export for the curves phase.)
# What to bring home is in OUT_DIR/return.
#
# train:  six U-Nets side by side, identical except for what the chapter compares — what the
#         network predicts (ε, x₀, v), the schedule (linear, cosine), class conditioning with label
#         dropout (for guidance), and the objective (flow matching) — each for STEPS steps of batch
#         128 from seed 0; then `imagegen ship --half` into checkpoints/ (the fp32 export stays in
#         OUT_DIR/runs for the half-precision check) and two tars of the shipped files.
# ancestral, curves: `imagegen eval --manifest` (n = 10000, seed 0) of every shipped model: the DDPMs
#         with the ancestral sampler (their default; ANCESTRAL names which, per call) and DDIM 10/50 and
#         DPM-Solver++(2M) 20; network calls against FID for the ε model (ancestral, DDIM, Heun,
#         DPM-Solver++) and the flow model (Euler, Heun, DPM-Solver++); the guidance sweep of the
#         conditional model; the fp32 export of the ε model at the same settings as its fp16 copy
#         (ancestral phase). Writes OUT_DIR/evals/*.json; OUT_DIR/return has the MANIFEST and them.
# <sha>: `git rev-parse HEAD` here (the device machine's copy of .git can be stale). Back home:
#   tar -xf OUT_DIR/return/shipped_*.tar; python scripts/merge_manifest.py <folder with them + MANIFEST.json>
#   python scripts/collect_q6.py OUT_DIR/evals        (book/results/q6_*.json)
set -uo pipefail
phase=${1:?usage: gpu_train_q6.sh train|curves OUT_DIR}
out=${2:?usage: gpu_train_q6.sh train|curves OUT_DIR}
mkdir -p "$out/runs" "$out/logs" "$out/evals"
out=$(cd "$out" && pwd)
export PYTHONUNBUFFERED=1
STEPS=${STEPS:-6000}
SECONDS_CAP=${SECONDS_CAP:-420}   # a run that is slower than planned stops here and still exports
DEVICE=${DEVICE:-cuda}
N=${N:-10000}
ig() { python3 -m imagegen_lib.cli "$@"; }
t0=$SECONDS
stamp() { echo "[$((SECONDS - t0)) s] $*"; }

# name | command line after `imagegen train`
MODELS=(
  "q6_eps_mnist|ddpm --prediction eps --schedule linear"
  "q6_x0_mnist|ddpm --prediction x0 --schedule linear"
  "q6_v_mnist|ddpm --prediction v --schedule linear"
  "q6_eps_cosine_mnist|ddpm --prediction eps --schedule cosine"
  "q6_cfg_mnist|ddpm --prediction eps --schedule linear --cond-drop 0.1"
  "q6_flow_mnist|flow"
)

if [ "$phase" = train ]; then
  [ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  for row in "${MODELS[@]}"; do
    name=${row%%|*}; args=${row#*|}
    ( ig train $args --epochs 1000 --max-steps "$STEPS" --time-budget "$SECONDS_CAP" --seed 0 --device "$DEVICE" \
        --no-progress --log-every 500 --sample-every 100000 --ckpt-every 100000 --out "$out/runs/$name" \
        > "$out/logs/$name.train.log" 2>&1
      stamp "$name trained (rc $?)"
      ig ship "$out/runs/$name/model.safetensors" --name "$name" --half --study q6 >> "$out/logs/$name.train.log" 2>&1
      stamp "$name shipped (rc $?)" ) &
  done
  wait
  # What comes home (at most 8 files): the shipped files in two tars, the manifest, the logs, and the
  # fp32 export of the ε model (the curves phase compares it with its fp16 copy).
  mkdir -p "$out/return"
  tar -cf "$out/return/shipped_a.tar" checkpoints/q6_eps_mnist.* checkpoints/q6_x0_mnist.* checkpoints/q6_v_mnist.*
  tar -cf "$out/return/shipped_b.tar" checkpoints/q6_eps_cosine_mnist.* checkpoints/q6_cfg_mnist.* \
    checkpoints/q6_flow_mnist.*
  cp checkpoints/MANIFEST.json "$out/return/MANIFEST.json"
  tar -czf "$out/return/logs.tar.gz" -C "$out" logs
  cp "$out/runs/q6_eps_mnist/model.safetensors" "$out/return/q6_eps_mnist_fp32.safetensors"
  cp "$out/runs/q6_eps_mnist/model.json" "$out/return/q6_eps_mnist_fp32.json"
  stamp "done"
  exit 0
fi

case "$phase" in ancestral|curves) ;; *) echo "unknown phase $phase (train | ancestral | curves)"; exit 2;; esac
ev() {  # ev NAME TAG [sampler options...]: one evaluation, recorded in the manifest and as JSON
  local name=$1 tag=$2; shift 2
  timeout "${EVAL_TIMEOUT:-300}" python3 -m imagegen_lib.cli eval "checkpoints/$name.safetensors" --n "$N" --device "$DEVICE" --manifest \
    "$@" --json "$out/evals/$name.$tag.json" >> "$out/logs/$name.eval.log" 2>&1
  stamp "$name $tag (rc $?)"
}
# The ancestral evaluations (1000 calls per image on 10,000 images) of the models in ANCESTRAL; in the
# curves phase, the short samplers beside them. Measured on the H200: three side by side did not finish
# in 300 s, so the book runs one (the ε model's) and scores the others with the short samplers.
for name in ${ANCESTRAL:-q6_eps_mnist q6_x0_mnist q6_v_mnist q6_eps_cosine_mnist q6_cfg_mnist}; do
  EVAL_TIMEOUT=${ANCESTRAL_TIMEOUT:-450} ev "$name" ancestral1000 &
done
if [ "$phase" = ancestral ]; then
  ( timeout 300 python3 -m imagegen_lib.cli eval "${FP32:-$out/return/q6_eps_mnist_fp32.safetensors}" --n "$N" \
      --device "$DEVICE" --sampler ddim --steps 50 --json "$out/evals/q6_eps_mnist_fp32.ddim50.json" \
      > "$out/logs/fp32.eval.log" 2>&1
    stamp "fp32 check (rc $?)" ) &
  ev q6_eps_mnist ddim50 --sampler ddim --steps 50 &
  wait
  mkdir -p "$out/return"
  cp checkpoints/MANIFEST.json "$out/return/MANIFEST.json"
  tar -czf "$out/return/evals_ancestral.tar.gz" -C "$out" evals logs
  stamp "done"
  exit 0
fi
( for s in 10 50; do for name in q6_x0_mnist q6_v_mnist q6_eps_cosine_mnist q6_cfg_mnist; do
    ev "$name" "ddim$s" --sampler ddim --steps "$s"; done; done
  for name in q6_x0_mnist q6_v_mnist q6_eps_cosine_mnist; do ev "$name" dpmpp2m20 --sampler dpmpp2m --steps 20; done ) &
( for s in 5 10 20 100 250; do ev q6_eps_mnist "ddim$s" --sampler ddim --steps "$s"; done
  for s in 3 5 10 25; do ev q6_eps_mnist "heun$s" --sampler heun --steps "$s"; done
  for s in 5 10 20 50; do ev q6_eps_mnist "dpmpp2m$s" --sampler dpmpp2m --steps "$s"; done ) &
( for s in 5 10 20 50 100; do ev q6_flow_mnist "euler$s" --sampler euler --steps "$s"; done
  for s in 3 5 10 25; do ev q6_flow_mnist "heun$s" --sampler heun --steps "$s"; done
  for s in 5 10 20 50; do ev q6_flow_mnist "dpmpp2m$s" --sampler dpmpp2m --steps "$s"; done ) &
( for w in 0 1 1.5 2 3 4 6; do ev q6_cfg_mnist "dpmpp2m20_w$w" --sampler dpmpp2m --steps 20 --guidance "$w"; done ) &
wait
mkdir -p "$out/return"
cp checkpoints/MANIFEST.json "$out/return/MANIFEST.json"
tar -czf "$out/return/evals.tar.gz" -C "$out" evals logs
stamp "done"
