#!/bin/bash
# The bundled end-to-end example (`make quickstart`), offline on a laptop CPU in well under a
# minute of compute: make a small model, pretrain it on sentences about capital cities, measure
# how well it answers chat questions about them (exact match on held-out phrasings), finetune
# with LoRA, merge, measure again, and chat with the merged model; then DPO towards answers in a
# full sentence, and chat again; then GRPO on the SFT model, rewarded for exact answers.
# usage: recipes/quickstart.sh [FORGE_BINARY]   (run from the repository root)
set -euo pipefail
forge="${1:-build/forge}"
out=runs/quickstart
eval_data=recipes/data/capitals_eval.jsonl
stage() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$out"
stage "1/9 a small random Llama-style model with its own byte-level BPE tokenizer"
"$forge" init-model --out "$out/init" --preset tiny --seed 1

stage "2/9 continued pretraining on plain text (full finetune): recipes/quickstart_pretrain.yaml"
"$forge" train recipes/quickstart_pretrain.yaml

stage "3/9 before finetuning: chat questions about the facts it read"
"$forge" eval --model "$out/pretrain/model" --data "$eval_data" | tee "$out/eval_before.txt"

stage "4/9 LoRA SFT on chat questions: recipes/quickstart.yaml"
"$forge" train recipes/quickstart.yaml

stage "5/9 merge the adapter into the base and evaluate the merged model"
"$forge" merge --base "$out/pretrain/model" --adapter "$out/sft/adapter" --out "$out/merged"
"$forge" eval --model "$out/merged" --data "$eval_data" | tee "$out/eval_after.txt"

stage "6/9 chat with the merged model"
for q in "What is the capital of Japan?" "Which city is the capital of Kenya?"; do
  printf '> %s\n' "$q"
  "$forge" generate --model "$out/merged" --chat --temperature 0 --max-tokens 16 --prompt "$q" 2>/dev/null
done

stage "7/9 DPO: full-sentence answers preferred over bare names: recipes/dpo_quickstart.yaml"
"$forge" train recipes/dpo_quickstart.yaml
"$forge" merge --base "$out/merged" --adapter "$out/dpo/adapter" --out "$out/dpo_merged"

stage "8/9 chat with the DPO model"
for q in "Which city is the capital of Kenya?" "Name the capital city of France."; do
  printf '> %s\n' "$q"
  "$forge" generate --model "$out/dpo_merged" --chat --temperature 0 --max-tokens 48 --prompt "$q" 2>/dev/null
done

stage "9/9 GRPO: sampled answers rewarded when exact: recipes/grpo_quickstart.yaml"
"$forge" train recipes/grpo_quickstart.yaml
pref() {  # the share of eval pairs whose chosen reply the model prefers: step 0, then the end
  grep -o '"eval_logps/accuracies":[0-9.e-]*' "$out/dpo/metrics.jsonl" | cut -d: -f2 | sed -n '1p;$p' |
    awk '{printf "%s%.0f%%", (NR > 1 ? " -> " : ""), 100 * $1}'
}
printf '\nexact match before: %s\nexact match after:  %s\n' "$(cut -d' ' -f3- "$out/eval_before.txt")" \
  "$(cut -d' ' -f3- "$out/eval_after.txt")"
printf 'held-out pairs preferring the full sentence, before -> after DPO: %s\n' "$(pref)"
reward() {  # GRPO's mean reward on the held-out questions: step 0, then the end
  grep -o '"eval_reward":[0-9.e-]*' "$out/grpo/metrics.jsonl" | cut -d: -f2 | sed -n '1p;$p' |
    awk '{printf "%s%.0f%%", (NR > 1 ? " -> " : ""), 100 * $1}'
}
printf 'held-out questions answered exactly (GRPO, samples at temperature 1.3), before -> after: %s\n' "$(reward)"
printf 'loss curves: %s/pretrain/loss_curve.svg, %s/sft/loss_curve.svg, %s/dpo/loss_curve.svg, %s/grpo/reward_curve.svg; metrics: %s/*/metrics.jsonl\n' \
  "$out" "$out" "$out" "$out" "$out"
