#!/usr/bin/env bash
# Runs on the GPU machine, whose image has CUDA, PyTorch and compute-sanitizer but no network and
# none of our libraries: unpacks the bundle that tests/gpu/bundle.sh made (carry .gpu), then runs
#   tests     the op table and CUDA tensor tests, paged attention on CUDA, NCCL on one rank, the
#             optimiser and the engine on the GPU
#   product   forge train (LoRA, QLoRA, full), merge, generate and serve on the GPU against the CPU
#             (tests/gpu/test_gpu_product.sh)
#   sanitize  compute-sanitizer memcheck and racecheck on paged attention and the op table
#   bench     the GPU training benchmark (gqa-60M, then llama-1b full and LoRA r16 on all linear
#             layers, bf16) beside the PyTorch + PEFT peer (../shared/peers, carried in the bundle),
#             then serving (llama-1b bf16 decode at batch 1 and concurrency 1/8/32) beside the peer's
#             PyTorch decode
# (all: each in turn; device work is lent in ~15-minute windows, so `all` must stay under ~8). One log per step goes to $OUT (./gpu-out without it); a step's last lines
# and its exit status are echoed.
set -uo pipefail
cd "$(dirname "$0")/../.."
what=${1:-all}
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
B=/tmp/forge-gpu
if [ ! -x $B/bin/forge ]; then
  mkdir -p $B && tar -C $B -xJf .gpu/bundle.tar.xz || { echo "no .gpu/bundle.tar.xz: run tests/gpu/bundle.sh and carry .gpu"; exit 1; }
fi

# NCCL comes with the image's PyTorch (pip's nvidia-nccl) when the CUDA folder has none.
nccl=$(python3 -c 'import nvidia.nccl as m, os; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null || true)
export LD_LIBRARY_PATH=$B/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib${nccl:+:$nccl}
export OMPI_MCA_mca_base_component_path=$B/lib/openmpi3 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export FORGE_OPS_REFERENCE=$B/ops_reference.h5

step() {  # step NAME TIMEOUT_S COMMAND...
  local name=$1 limit=$2
  shift 2
  echo "== $name: $*"
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "rc=$rc seconds=$((SECONDS - t0))" >>"$OUT/$name.log"
  tail -n 4 "$OUT/$name.log"
}

{
  echo "bundle of commit $(cat .gpu/commit 2>/dev/null)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  nvcc --version | tail -n 2
  lscpu | grep -E "Model name|^CPU\(s\)"
  echo "NCCL from: ${nccl:-the CUDA folder}"
  for b in $B/bin/*; do ldd "$b" | grep "not found" | sed "s|^|$(basename "$b"): |"; done
} >"$OUT/env.log" 2>&1
head -n 20 "$OUT/env.log"

if [ "$what" = tests ] || [ "$what" = all ]; then
  step gpu_tests 300 $B/bin/forge_gpu_tests
  step paged_attention 300 $B/bin/forge_infer_tests --gtest_filter='PagedAttention*'
  step nccl 300 $B/bin/forge_parallel_tests --gtest_filter='Nccl.*:Comm.*:DeviceGroup.*'
  step engine 300 $B/bin/forge_infer_tests --gtest_filter='EngineOnDevice.*'
  FORGE_OPTIM_REFERENCE=$B/optim_reference.h5 step optimizer 120 $B/bin/forge_train_tests --gtest_filter='OptimizerParity.*'
fi
if [ "$what" = product ] || [ "$what" = all ]; then
  step product 400 bash tests/gpu/test_gpu_product.sh $B/bin/forge
fi
if [ "$what" = sanitize ] || [ "$what" = all ]; then
  # Paged attention, and the op table (training attention's shared tiles among its kernels).
  for tool in memcheck racecheck; do
    step "$tool" 280 bash -c "compute-sanitizer --tool $tool --error-exitcode 9 \
      $B/bin/forge_infer_tests --gtest_filter='PagedAttentionCuda.*' &&
      compute-sanitizer --tool $tool --error-exitcode 9 $B/bin/forge_gpu_tests --gtest_filter='OpTableCuda.*'"
  done
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  f="$B/bin/forge bench train --device cuda --dtype bf16"
  lora="--lora --lora-r 16 --lora-targets all-linear"
  step bench 550 bash -c "$f --preset gqa-60M --steps 5 && $f --preset gqa-60M $lora --steps 5 &&
    $f --preset llama-1b --batch 2 --seq 2048 --steps 3 && $f --preset llama-1b --batch 2 --seq 2048 $lora --steps 3"
  if [ -f $B/torch_gpu_peft.py ]; then
    peak=$(python3 -c 'import torch,time
a=torch.randn(8192,8192,device="cuda",dtype=torch.bfloat16);b=torch.randn_like(a)
for _ in range(3): a@b
torch.cuda.synchronize();t=time.perf_counter()
for _ in range(10): a@b
torch.cuda.synchronize();print(10*2*8192**3/(time.perf_counter()-t)/1e12)')
    step torch_peer 550 bash -c "for m in full lora; do python3 $B/torch_gpu_peft.py --preset llama-1b --mode \$m \
      --batch 2 --seq 2048 --peak-tflops $peak --json; done"
  fi
  step bench_serve 300 bash -c "$B/bin/forge bench infer --preset llama-1b --dtype bf16 --device cuda --quick &&
    $B/bin/forge bench serve --preset llama-1b --dtype bf16 --device cuda --rounds 1 --no-http"
  [ -f $B/torch_gpu_peft.py ] && step torch_decode 300 python3 $B/torch_gpu_peft.py --preset llama-1b --mode decode --json
fi
