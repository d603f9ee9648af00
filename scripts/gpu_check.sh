#!/usr/bin/env bash
# The GPU check: ONE short `unitrack bench` run (a few minutes on one GPU, <= 8 min) that measures
#   - LoRAT-protocol model fps of lorat_b224, batch 1, merged, fp32 and fp16 autocast (gpu_fps, gpu_fp16_fps;
#     LoRAT reports 209 fps on an RTX 4090),
#   - the one-pass batched evaluation's frames/s over a generated benchmark (eval_batched_fps) against the
#     model's batched ceiling (model_batched_fps, runner_over_model_batched_paired),
#   - training pairs/s at batch 128 with bf16 autocast (train_pairs_per_s),
#   - LoRA vs full fine-tuning peak memory at batch 128 (train_peak_mem_mb, full_train_peak_mem_mb),
#   - decode throughput per worker (process pool, nvJPEG) and the workers the GPU needs (decode_workers_needed),
# prints one table and writes bench.json (with the device name) into $GPU_CHECK_OUT.
#
# Weights are random (speed does not depend on them) and nothing is downloaded: the machine may be offline.
# Usage:  scripts/gpu_check.sh [extra hydra overrides]         (PYTHON=path/to/python to pick the interpreter)
#         GPU_CHECK_DRY=1 scripts/gpu_check.sh                 (CPU dry run, tiny sizes: what the tests run)
#         GPU_CHECK_PRINT=1 scripts/gpu_check.sh               (print the bench overrides, one a line; run nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${GPU_CHECK_OUT:-outputs/gpu_check/$(date +%Y-%m-%d_%H-%M-%S)}

# the GPU run: b224, batch 128 training with bf16, 48 sequences tracked at once, 8 decode processes
gpu_args=(device=cuda model=lorat_b224 bench.amp=true bench.train_batch=128 bench.model_steps=5
          bench.compare_finetune=true bench.loader_batches=4 bench.train_steps=10 bench.train_sequences=2
          "bench.decode_kinds=[process,gpu]" "bench.decode_workers=[1,4,8]"
          bench.eval_sequences=48 bench.eval_frames=60 bench.eval_batch_size=48 bench.eval_decode=process
          bench.eval_workers=8 bench.model_iters=100 bench.repeats=1 bench.e2e=true)
# the CPU dry run: the same parts and code paths at tiny sizes
dry_args=(device=cpu model=lorat_tiny model.backbone_kwargs.depth=2 bench.train_batch=4 bench.model_steps=2
          bench.compare_finetune=true bench.loader_batches=2 bench.train_steps=2 bench.train_sequences=1
          "bench.decode_size=[64,48]" bench.decode_frames=8 "bench.decode_kinds=[process]" "bench.decode_workers=[1]"
          bench.eval_sequences=3 bench.eval_frames=8 bench.eval_batch_size=3 bench.eval_decode=process
          bench.eval_workers=1 bench.model_iters=4 bench.repeats=1 bench.e2e=false)
common=(model.pretrained=false model.weights=null "parts=[model,data,train,eval]")

if [[ "${GPU_CHECK_PRINT:-0}" == 1 ]]; then
  printf '%s\n' "${gpu_args[@]}" "${common[@]}"
  exit 0
elif [[ "${GPU_CHECK_DRY:-0}" == 1 ]]; then
  args=("${dry_args[@]}")
else
  if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device visible to $PY (GPU_CHECK_DRY=1 runs the CPU dry run)" >&2
    exit 3
  fi
  args=("${gpu_args[@]}")
fi
exec "$PY" -m unitrack.cli bench "${args[@]}" "${common[@]}" "hydra.run.dir=$OUT" "$@"
