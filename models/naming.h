// The weight-name conventions of Hugging Face causal LMs and PEFT adapters, in one place: where a
// parameter sits (embedding, decoder layer i, final norm, head) and how PEFT prefixes adapters.
#pragma once
#include <string>

namespace forge::models {

inline const std::string kPeftPrefix = "base_model.model.";   // PEFT tensor names: prefix + module + ".lora_A.weight"
inline const std::string kEmbedWeight = "model.embed_tokens.weight";
inline const std::string kHeadWeight = "lm_head.weight";

std::string strip_peft_prefix(const std::string& name);
// The decoder layer of a parameter by model or PEFT name ("model.layers.3.mlp.up_proj.weight",
// "base_model.model.model.layers.3...."), or -1 (embedding, final norm, head).
int layer_of(const std::string& name);
bool is_embedding(const std::string& name);        // model.embed_tokens.*
bool is_final_norm_or_head(const std::string& name);  // model.norm.*, lm_head.*

}  // namespace forge::models
