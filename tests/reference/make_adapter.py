"""Writes a random PEFT LoRA adapter (q_proj, v_proj; non-zero B) for the model in MODEL_DIR.
usage: make_adapter.py MODEL_DIR OUT_DIR RANK SEED"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import write_safetensors  # noqa: E402


def main():
    model_dir, out, rank, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    D = cfg.get("head_dim", C // H)
    kv = cfg.get("num_key_value_heads", H) * D
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(cfg["num_hidden_layers"]):
        for mod, out_dim in (("q_proj", H * D), ("v_proj", kv)):
            name = f"base_model.model.model.layers.{layer}.self_attn.{mod}"
            tensors[name + ".lora_A.weight"] = torch.randn(rank, C, generator=g) * 0.3
            tensors[name + ".lora_B.weight"] = torch.randn(out_dim, rank, generator=g) * 0.3
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "adapter_model.safetensors"), tensors, torch.float32, {"format": "pt"})
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(dict(peft_type="LORA", task_type="CAUSAL_LM", r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                       target_modules=["q_proj", "v_proj"], bias="none", use_rslora=False, fan_in_fan_out=False,
                       modules_to_save=None, base_model_name_or_path=model_dir, use_dora=False), f, indent=2)


if __name__ == "__main__":
    main()
