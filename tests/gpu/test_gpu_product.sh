#!/bin/bash
# The product on a real GPU (run by tests/gpu/device_run.sh product; CI covers the same paths on the
# simulated GPU): forge train with LoRA, QLoRA and a full finetune of a tiny model, 10 steps on
# cuda:0 and on the CPU, whose losses must agree within bf16 tolerance (the GPU's GEMMs and
# reductions sum in other orders); merge, then greedy decode on the GPU equal to the CPU's; forge
# serve --device cuda answering completions, chat and a stream; the per-step copy budget and
# host fallbacks the metrics report.
# usage: test_gpu_product.sh FORGE_BINARY   (prints one line per check; exits non-zero on a failure)
set -uo pipefail
forge="$(realpath "$1")"
data="$(cd "$(dirname "$0")/../../recipes/data" && pwd)"
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
pid=""
failed=0
check() { if [ "$1" = 0 ]; then echo "PASS $2"; else echo "FAIL $2"; failed=1; fi; }
cd "$dir"

"$forge" init-model --out m --preset tiny --init-std 0.2 --seed 3 2>/dev/null
cat > r.yaml <<YAML
model:
  path: m
data:
  path: $data/capitals_train.jsonl
  max_seq_len: 96
peft:
  target_modules: all-linear
optim:
  lr: 5.0e-3
train:
  batch_size: 4
  max_steps: 10
logging:
  progress: false
checkpoint:
  resume: never
YAML

for cfg in "lora:peft.method=lora" "qlora:peft.method=qlora" "full:peft.method=none"; do
  name=${cfg%%:*}
  "$forge" train r.yaml output.dir=cpu_$name model.device=cpu ${cfg#*:} > cpu_$name.log 2>&1
  "$forge" train r.yaml output.dir=gpu_$name model.device=cuda ${cfg#*:} > gpu_$name.log 2>&1
  check $? "train $name on cuda:0 ($(grep -o 'loss [0-9.]* -> [0-9.]*' gpu_$name.log | head -1))"
  python3 - cpu_$name gpu_$name <<'PY'
import json, sys
def rows(d): return [json.loads(l) for l in open(d + "/metrics.jsonl") if "loss" in json.loads(l)]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
worst = max(abs(x["loss"] - y["loss"]) / abs(x["loss"]) for x, y in zip(a, b))
print(f"  losses: worst relative difference {worst:.2e} over {len(a)} steps; "
      f"per step h2d <= {max(l['h2d'] for l in b)}, d2h <= {max(l['d2h'] for l in b)}, "
      f"host fallbacks {sum(l['host_fallbacks'] for l in b)}, device {max(l['device_mib'] for l in b):.1f} MiB")
assert len(a) == len(b) == 10 and worst < 2e-2, "losses differ beyond bf16 tolerance"
assert all(l["host_fallbacks"] == 0 for l in b), "host fallbacks"
PY
  check $? "train $name: losses equal the CPU's within 2e-2, no host fallback"
done

"$forge" merge --base m --adapter gpu_lora/adapter --out merged > /dev/null 2>&1
check $? "merge"
for d in cpu cuda; do
  "$forge" generate --model merged --prompt "The capital of France is" --max-tokens 24 --temperature 0 --ignore-eos \
    --device $d > gen_$d.txt 2> gen_$d.log
done
cmp -s gen_cpu.txt gen_cuda.txt
check $? "greedy decode on cuda:0 equals the CPU's ($(tail -1 gen_cuda.log))"

"$forge" serve --model merged --port 0 --device cuda > serve.log 2>&1 &
pid=$!
port=""
for _ in $(seq 200); do
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' serve.log | grep -o '[0-9]*$' || true)
  [ -n "$port" ] && break
  sleep 0.1
done
python3 - "$port" "$(cat gen_cpu.txt)" <<'PY'
import json, sys, urllib.request
port, want = sys.argv[1], sys.argv[2]
def post(path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=60)
r = json.load(post("/v1/completions", {"model": "merged", "prompt": "The capital of France is", "max_tokens": 24,
                                       "temperature": 0, "ignore_eos": True}))
assert r["choices"][0]["text"] == want, (r["choices"][0]["text"], want)
r = json.load(post("/v1/chat/completions", {"model": "merged", "messages": [{"role": "user", "content": "Hi"}],
                                            "max_tokens": 8}))
assert r["usage"]["completion_tokens"] > 0
chunks = [l for l in post("/v1/completions", {"model": "merged", "prompt": "x", "max_tokens": 16, "stream": True,
                                              "ignore_eos": True}) if l.startswith(b"data: {")]
assert len(chunks) >= 16, len(chunks)
m = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
fallbacks = [l for l in m.splitlines() if l.startswith("forge_host_fallbacks_total")]
assert fallbacks == ["forge_host_fallbacks_total 0"], fallbacks
print("  " + [l for l in m.splitlines() if l.startswith("forge_device_memory_allocated_bytes ")][0])
PY
check $? "serve --device cuda: completion equal to generate's, chat, 16-chunk stream, no host fallback"
grep "forge serve: cuda" serve.log
exit $failed
