#!/usr/bin/env bash
# Issue 8's GPU run, in two calls of the device tool (each under its 10-minute limit; an H100):
#   PHASE=speed   IMAGEGEN_DATA=.gpu/data bash scripts/gpu_bench.sh OUT_DIR [WORK_DIR]   (~8 min)
#   PHASE=quality IMAGEGEN_DATA=.gpu/data bash scripts/gpu_bench.sh OUT_DIR [WORK_DIR]   (~5 min)
#
# speed:   0. tests/test_fast_step_cuda.py (graph = eager = plain loop, bit for bit; train_gan's
#             GPU default captures with every lever and resumes).
#          1. benchmarks/train_speed.py --device cuda: the speed table, alone on the GPU (BENCH_BUDGET s).
#          2. benchmarks/profile_step.py: the replayed graph's kernels, traced, for the main settings.
# quality: 3. torchrun --nproc_per_node 1: the DistributedDataParallel code path on CUDA (NCCL): 200
#             steps, then --resume to 300.
#          4. The DCGAN trained EPOCHS epochs with the fast path (the default: bf16 and all) and with
#             --eager (the plain float32 loop), seeds 0 and 1, the four runs side by side; then
#             `imagegen eval --n 10000` of each (needs checkpoints/classifier_mnist.*). The seeds
#             give the noise level that "fast FID within noise of plain" means.
#
# OUT_DIR receives at most 8 files a call (what the device tool brings back): speed: cuda_tests.log,
# train_speed_<gpu>.json/.md, bench.log, profile.json, profile.log; quality: torchrun.log,
# quality.json, quality.log. Run folders stay in WORK_DIR.
set -uo pipefail
out=${1:?usage: gpu_bench.sh OUT_DIR [WORK_DIR]}
work=${2:-/tmp/imagegen_gpu_bench}
mkdir -p "$out" "$work"
export PYTHONUNBUFFERED=1 IMAGEGEN_DATA=${IMAGEGEN_DATA:-.gpu/data}
EPOCHS=${EPOCHS:-5}
BENCH_BUDGET=${BENCH_BUDGET:-330}  # seconds after which train_speed.py starts no further variant (fits the
                                   # device call's 10 minutes; the whole table takes ~450 s with --isolate)
SEEDS=${SEEDS:-"0 1"}
# For a dry run of the plumbing on a CPU: DEVICE=cpu BENCH_ARGS=--quick TRAIN_ARGS="--limit 512 --width 8" EVAL_N=500
DEVICE=${DEVICE:-cuda}
BENCH_ARGS=${BENCH_ARGS:-}
TRAIN_ARGS=${TRAIN_ARGS:-}
EVAL_N=${EVAL_N:-10000}
start=$SECONDS
stamp() { echo "[$((SECONDS - start)) s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name())"
python3 -c "import torchvision; print('torchvision', torchvision.__version__)" || echo "torchvision missing: the tutorial row uses its IDX fallback"

PHASE=${PHASE:-speed}
if [ "$PHASE" = speed ]; then
stamp "0. GPU tests"
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_fast_step_cuda.py > "$out/cuda_tests.log" 2>&1
echo "pytest exit $?" >> "$out/cuda_tests.log"
tail -n 3 "$out/cuda_tests.log"

stamp "1. speed table"
timeout $((BENCH_BUDGET + 150)) python3 benchmarks/train_speed.py --device "$DEVICE" --time-budget "$BENCH_BUDGET" \
  --out-dir "$out" $BENCH_ARGS > "$out/bench.log" 2>&1
echo "train_speed exit $?" >> "$out/bench.log"
grep -E '^  |exit|Error' "$out/bench.log" | grep -v '^|' | tail -n 40

stamp "2. kernel trace of the replayed graph"
timeout 150 python3 benchmarks/profile_step.py --json "$out/profile.json" > "$out/profile.log" 2>&1
grep '^==' "$out/profile.log"
cat "$out"/train_speed_*.md 2>/dev/null
stamp "done"
exit 0
fi

stamp "3. torchrun --nproc_per_node 1 (DDP: NCCL on CUDA, gloo on CPU)"
{
  timeout 150 python3 -m torch.distributed.run --standalone --nproc_per_node 1 -m imagegen_lib.cli train dcgan \
    --max-steps 200 --out "$work/ddp1" --device "$DEVICE" --no-progress $TRAIN_ARGS
  echo "torchrun exit $?"
  timeout 150 python3 -m torch.distributed.run --standalone --nproc_per_node 1 -m imagegen_lib.cli train dcgan \
    --max-steps 300 --resume --out "$work/ddp1" --device "$DEVICE" --no-progress $TRAIN_ARGS
  echo "torchrun --resume exit $?"
  python3 - "$work/ddp1/last.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
print("last.json: step", m["step"], "ddp", {k: v for k, v in m.get("ddp", {}).items() if k != "state_sha256_by_rank"},
      "history rows", len(m["history"]), "last", {k: round(v, 3) for k, v in m["history"][-1].items()})
EOF
} > "$out/torchrun.log" 2>&1
tail -n 6 "$out/torchrun.log"

stamp "4. quality: fast vs eager, ${EPOCHS} epochs, seeds ${SEEDS} (side by side)"
for seed in $SEEDS; do
  for mode in fast eager; do
    flag=""; [ "$mode" = eager ] && flag="--eager"
    timeout 240 python3 -m imagegen_lib.cli train dcgan --epochs "$EPOCHS" --seed "$seed" --device "$DEVICE" --no-progress \
      $flag $TRAIN_ARGS --out "$work/q_${mode}_s${seed}" > "$work/q_${mode}_s${seed}.train.log" 2>&1 &
  done
done
wait
stamp "   training done; evaluating"
for seed in $SEEDS; do
  for mode in fast eager; do
    timeout 200 python3 -m imagegen_lib.cli eval "$work/q_${mode}_s${seed}/generator.safetensors" --n "$EVAL_N" \
      --device "$DEVICE" --json "$work/q_${mode}_s${seed}.eval.json" > "$work/q_${mode}_s${seed}.eval.log" 2>&1 &
  done
done
wait
tail -n 3 "$work"/q_*.train.log "$work"/q_*.eval.log > "$out/quality.log" 2>&1
python3 - "$work" "$out/quality.json" "$EPOCHS" <<'EOF'
import json, sys
from pathlib import Path
work, dest, epochs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
rows = []
for ev in sorted(work.glob("q_*.eval.json")):
    mode, seed = ev.name.split(".")[0][2:].rsplit("_s", 1)
    r = json.loads(ev.read_text())
    last = json.loads((work / f"q_{mode}_s{seed}" / "last.json").read_text())
    rows.append({"mode": mode, "seed": int(seed), "epochs": epochs, "steps": last["step"],
                 "train_seconds_concurrent": round(last["seconds"], 1),
                 **{k: r.get(k) for k in ("fid", "kid_mean", "precision", "recall", "coverage", "is_mean")}})
dest.write_text(json.dumps({"note": "4 runs shared the GPU: their seconds are not a speed measurement",
                            "rows": rows}, indent=2) + "\n")
print(f"{'mode':<6} {'seed':>4} {'steps':>6} {'FID':>8} {'KID':>9} {'prec':>6} {'recall':>6} {'s (shared GPU)':>15}")
for r in rows:
    print(f"{r['mode']:<6} {r['seed']:>4} {r['steps']:>6} {r['fid']:>8.3f} {r['kid_mean']:>9.5f} "
          f"{r['precision']:>6.3f} {r['recall']:>6.3f} {r['train_seconds_concurrent']:>15}")
EOF
stamp "done"
