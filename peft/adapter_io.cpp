// PEFT adapter files (see adapter_io.h).
#include "peft/adapter_io.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/safetensors.h"
#include "models/naming.h"

namespace forge::peft {
namespace {
const std::string& kPrefix = models::kPeftPrefix;

// PEFT pattern dicts: the value of the first key that the module name ends with.
bool pattern_value(const nlohmann::json& patterns, const std::string& module, double& out) {
  if (!patterns.is_object()) return false;
  for (auto& [k, v] : patterns.items())
    if (module_matches(module, k)) {
      out = v.get<double>();
      return true;
    }
  return false;
}
}  // namespace

void save_adapter(const LoraModel& lora, const std::string& dir) {
  std::filesystem::create_directories(dir);
  const LoraConfig& c = lora.config;
  nlohmann::ordered_json j;
  j["peft_type"] = "LORA";
  j["task_type"] = "CAUSAL_LM";
  j["base_model_name_or_path"] = c.base_model_name_or_path;
  j["r"] = c.r;
  j["lora_alpha"] = c.alpha;
  j["lora_dropout"] = c.dropout;
  j["use_rslora"] = c.use_rslora;
  if (!c.target_regex.empty()) {
    j["target_modules"] = c.target_regex;
  } else {
    // The module names actually adapted, as PEFT writes them (a set of leaf names).
    std::vector<std::string> leaves;
    for (auto& [name, a] : lora.adapters) {
      std::string leaf = name.substr(name.rfind('.') + 1);
      if (std::find(leaves.begin(), leaves.end(), leaf) == leaves.end()) leaves.push_back(leaf);
    }
    j["target_modules"] = leaves;
  }
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["modules_to_save"] = nullptr;
  j["rank_pattern"] = nlohmann::json::object();
  j["alpha_pattern"] = nlohmann::json::object();
  j["use_dora"] = false;
  j["revision"] = nullptr;
  NamedTensors tensors;
  for (auto& [name, t] : lora.named_parameters()) tensors.emplace_back(name, t.detach().to(DType::F32).contiguous());
  save_safetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  write_file_atomic(dir + "/adapter_config.json", j.dump(2) + "\n");
}

LoraConfig read_adapter_config(const std::string& dir) {
  const std::string path = dir + "/adapter_config.json";
  FORGE_CHECK(file_exists(path), dir, ": no adapter_config.json (expected a PEFT adapter directory)");
  nlohmann::json j = read_json_file(path);
  auto field = [&](const char* k) -> const nlohmann::json& {
    static const nlohmann::json null;
    auto it = j.find(k);
    return it == j.end() ? null : *it;
  };
  auto bad = [&](const std::string& k, const std::string& why) { return Error(path + ": '" + k + "' " + why); };
  if (field("peft_type") != "LORA") throw bad("peft_type", "is " + field("peft_type").dump() + ", only LORA adapters load");
  if (field("use_dora").is_boolean() && field("use_dora").get<bool>()) throw bad("use_dora", "is true; DoRA is not supported");
  if (field("fan_in_fan_out").is_boolean() && field("fan_in_fan_out").get<bool>())
    throw bad("fan_in_fan_out", "is true (GPT-2 Conv1D layout); Llama-family adapters have it false");
  if (field("bias").is_string() && field("bias") != "none")
    throw bad("bias", "is " + field("bias").dump() + "; adapters with trained biases are not supported");
  if (!field("modules_to_save").is_null() && !field("modules_to_save").empty())
    throw bad("modules_to_save", "is set; adapters that replace whole modules are not supported");
  LoraConfig c;
  try {
    c.r = field("r").get<int64_t>();
    c.alpha = field("lora_alpha").get<double>();
    c.dropout = field("lora_dropout").is_number() ? field("lora_dropout").get<double>() : 0.0;
    c.use_rslora = field("use_rslora").is_boolean() && field("use_rslora").get<bool>();
    const nlohmann::json& t = field("target_modules");
    if (t.is_string()) c.target_regex = t.get<std::string>();
    else if (t.is_array()) c.target_modules = t.get<std::vector<std::string>>();
    if (field("base_model_name_or_path").is_string()) c.base_model_name_or_path = field("base_model_name_or_path");
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": 'r', 'lora_alpha' must be numbers and 'target_modules' a list or a string (" + e.what() + ")");
  }
  FORGE_CHECK(c.r >= 1, path, ": 'r' must be at least 1");
  return c;
}

LoraModel load_adapter(nn::Module& model, const std::string& dir) {
  LoraModel lora;
  lora.config = read_adapter_config(dir);
  const nlohmann::json j = read_json_file(dir + "/adapter_config.json");
  const std::string file = dir + "/adapter_model.safetensors";
  FORGE_CHECK(file_exists(file), dir, ": no adapter_model.safetensors");
  SafetensorsFile st(file);
  std::map<std::string, std::shared_ptr<nn::Module>> mods;
  for (auto& [n, m] : model.named_modules()) mods[n] = m;
  // module name -> (A, B), from names like base_model.model.<module>.lora_A[.default].weight
  std::map<std::string, std::pair<Tensor, Tensor>> found;
  for (const std::string& name : st.names()) {
    std::string n = name;
    if (n.rfind(kPrefix, 0) == 0) n = n.substr(kPrefix.size());
    const size_t at = n.find(".lora_");
    FORGE_CHECK(at != std::string::npos, file, ": tensor '", name, "' is not a LoRA weight (lora_A / lora_B)");
    const std::string module = n.substr(0, at), rest = n.substr(at + 1);
    const DType dt = st.entry(name).dtype;
    FORGE_CHECK(dt == DType::F32 || dt == DType::BF16 || dt == DType::F16, file, ": tensor '", name, "' has dtype ",
                dtype_name(dt), " (expected F32, BF16 or F16)");
    Tensor t = st.tensor(name).to(DType::F32).contiguous();
    if (rest == "lora_A.weight" || rest == "lora_A.default.weight") found[module].first = t;
    else if (rest == "lora_B.weight" || rest == "lora_B.default.weight") found[module].second = t;
    else throw Error(file + ": tensor '" + name + "' is not a LoRA weight (lora_A / lora_B)");
  }
  FORGE_CHECK(!found.empty(), file, ": no LoRA tensors");
  for (auto& p : model.parameters()) p.requires_grad_(false);
  NoGradGuard ng;
  for (auto& [module, ab] : found) {
    auto it = mods.find(module);
    FORGE_CHECK(it != mods.end(), file, ": the model has no module '", module, "' (is this adapter for another model?)");
    auto lin = std::dynamic_pointer_cast<nn::Linear>(it->second);
    FORGE_CHECK(lin, file, ": '", module, "' is not a Linear layer");
    auto& [A, B] = ab;
    FORGE_CHECK(A.defined() && B.defined(), file, ": '", module, "' needs both lora_A and lora_B");
    const int64_t r = A.size(0);
    FORGE_CHECK(A.dim() == 2 && B.dim() == 2 && A.size(1) == lin->in_features && B.size(0) == lin->out_features &&
                    B.size(1) == r,
                file, ": '", module, "' has lora_A ", shape_str(A.shape()), " and lora_B ", shape_str(B.shape()),
                "; the layer needs [r, ", lin->in_features, "] and [", lin->out_features, ", r]");
    double alpha = lora.config.alpha;
    pattern_value(j.value("alpha_pattern", nlohmann::json()), module, alpha);
    LoraConfig c = lora.config;
    c.alpha = alpha;
    auto a = std::make_shared<LoraAdapter>(lin->in_features, lin->out_features, r, c.scale(r), c.dropout, lora.gen.get());
    a->A.copy_(A);
    a->B.copy_(B);
    if (lin->weight.defined() && !lin->weight.device().is_cpu()) {  // beside the base weight
      a->A.set_data(a->A.detach().to(lin->weight.device()));
      a->B.set_data(a->B.detach().to(lin->weight.device()));
    }
    lin->adapter = a;
    lora.adapters.emplace_back(module, a);
  }
  return lora;
}

}  // namespace forge::peft
