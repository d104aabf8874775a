#!/bin/bash
# The bundled end-to-end example (`make quickstart`), offline on a laptop CPU in well under a
# minute of compute: make a small model, pretrain it on sentences about capital cities, measure
# how well it answers chat questions about them (exact match on held-out phrasings), finetune
# with LoRA, merge, measure again, and chat with the merged model.
# usage: recipes/quickstart.sh [FORGE_BINARY]   (run from the repository root)
set -euo pipefail
forge="${1:-build/forge}"
out=runs/quickstart
eval_data=recipes/data/capitals_eval.jsonl
stage() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$out"
stage "1/6 a small random Llama-style model with its own byte-level BPE tokenizer"
"$forge" init-model --out "$out/init" --preset tiny --seed 1

stage "2/6 continued pretraining on plain text (full finetune): recipes/quickstart_pretrain.yaml"
"$forge" train recipes/quickstart_pretrain.yaml

stage "3/6 before finetuning: chat questions about the facts it read"
"$forge" eval --model "$out/pretrain/model" --data "$eval_data" | tee "$out/eval_before.txt"

stage "4/6 LoRA SFT on chat questions: recipes/quickstart.yaml"
"$forge" train recipes/quickstart.yaml

stage "5/6 merge the adapter into the base and evaluate the merged model"
"$forge" merge --base "$out/pretrain/model" --adapter "$out/sft/adapter" --out "$out/merged"
"$forge" eval --model "$out/merged" --data "$eval_data" | tee "$out/eval_after.txt"

stage "6/6 chat with the merged model"
for q in "What is the capital of Japan?" "Which city is the capital of Kenya?"; do
  printf '> %s\n' "$q"
  "$forge" generate --model "$out/merged" --chat --temperature 0 --max-tokens 16 --prompt "$q" 2>/dev/null
done

printf '\nexact match before: %s\nexact match after:  %s\n' "$(cut -d' ' -f3- "$out/eval_before.txt")" \
  "$(cut -d' ' -f3- "$out/eval_after.txt")"
printf 'loss curves: %s/pretrain/loss_curve.svg, %s/sft/loss_curve.svg; metrics: %s/*/metrics.jsonl\n' "$out" "$out" "$out"
