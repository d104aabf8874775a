// HF model directories in and out (see pretrained.h).
#include "models/pretrained.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "core/autograd.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/safetensors.h"
#include "models/naming.h"
#include "models/registry.h"

namespace forge::models {
using json = nlohmann::json;

namespace {
// Where a parameter sits in the checkpoint: its own name, or for the text model of a multimodal
// checkpoint the first of its layouts whose name the files hold (else the first layout's).
std::string file_name(const std::string& name, const ModelConfig& c, const WeightFiles& files) {
  const TextModelOf* mm = c.loaded_from.empty() ? nullptr : text_model_of(c.loaded_from);
  if (!mm) return name;
  std::string first;
  for (const auto& layout : mm->layouts)
    for (const auto& [from, to] : layout)
      if (name.rfind(from, 0) == 0) {
        const std::string f = to + name.substr(from.size());
        if (files.contains(f)) return f;
        if (first.empty()) first = f;
        break;
      }
  return first.empty() ? name : first;
}

// Tensors some checkpoints carry that the model does not need.
bool ignorable(const std::string& name, const ModelConfig& c, const WeightFiles& files) {
  if (name.find("rotary_emb.inv_freq") != std::string::npos) return true;
  if (const TextModelOf* mm = c.loaded_from.empty() ? nullptr : text_model_of(c.loaded_from))
    for (const std::string& p : mm->other_parts)
      if (name.rfind(p, 0) == 0) return true;  // the vision tower and projector
  return c.tie_word_embeddings && name == file_name(kHeadWeight, c, files);
}

std::string list_names(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > 8) s += ", ... (" + std::to_string(v.size()) + " in all)";
  return s;
}
}  // namespace

std::shared_ptr<CausalLM> load_model(const std::string& dir, std::optional<DType> dtype, Device device) {
  ModelConfig cfg = load_config(dir);
  const DType dt = dtype.value_or(cfg.dtype);
  FORGE_CHECK(dt == DType::F32 || dt == DType::BF16 || dt == DType::F16, dir, ": weights cannot compute in ",
              dtype_name(dt), " (f32, bf16 or f16)");
  auto model = CausalLM::unfilled(cfg, dt);  // every parameter is loaded below
  WeightFiles files(dir);

  std::vector<std::string> missing, unexpected, mismatched;
  std::map<std::string, Tensor> sd;
  std::set<std::string> wanted;
  for (auto& [name, p] : model->named_parameters()) {
    const std::string f = file_name(name, cfg, files);
    wanted.insert(f);
    if (!files.contains(f)) {
      missing.push_back(f);
      continue;
    }
    const SafetensorsEntry& e = files.entry(f);
    if (e.shape != p.shape()) {
      mismatched.push_back(f + " " + shape_str(e.shape) + " in " + files.file_of(f) + ", expected " +
                           shape_str(p.shape()));
      continue;
    }
    FORGE_CHECK(is_floating(e.dtype), files.file_of(f), ": tensor '", f, "' must be floating point");
    sd[name] = files.tensor(f);
  }
  for (auto& n : files.names())
    if (!wanted.count(n) && !ignorable(n, cfg, files)) unexpected.push_back(n);
  std::string err;
  if (!missing.empty()) err += "missing tensors: " + list_names(missing) + ". ";
  if (!unexpected.empty()) err += "unexpected tensors: " + list_names(unexpected) + ". ";
  if (!mismatched.empty()) err += "shape mismatches: " + list_names(mismatched) + ". ";
  FORGE_CHECK(err.empty(), dir, ": weights do not match config.json: ", err);

  if (device.is_cpu()) {
    model->load_state_dict(sd, /*strict=*/true, /*share=*/true);
    return model;
  }
  // Straight to the device, one tensor at a time: the mapped file's bytes (converted on the host
  // only when the dtype differs) are copied over and the unfilled host parameter, never touched,
  // is let go, so no full host copy of the model is made.
  NoGradGuard ng;
  for (auto& [name, p] : model->named_parameters()) p.set_data(sd.at(name).to(dt).to(device));
  return model;
}

void save_model(const CausalLM& model, const std::string& dir, size_t max_shard_bytes) {
  std::filesystem::create_directories(dir);
  ModelConfig cfg = model.config();  // a multimodal checkpoint's text model saves as its text architecture
  cfg.dtype = model.dtype();
  write_file_atomic(dir + "/config.json", config_to_json(cfg).dump(2) + "\n");
  NamedTensors tensors;
  for (auto& [name, p] : model.named_parameters()) tensors.emplace_back(name, p.detach());
  save_weights(dir, tensors, max_shard_bytes);
  json g = json::object();
  if (cfg.bos_token_id >= 0) g["bos_token_id"] = cfg.bos_token_id;
  if (cfg.eos_token_ids.size() == 1) g["eos_token_id"] = cfg.eos_token_ids[0];
  else if (!cfg.eos_token_ids.empty()) g["eos_token_id"] = cfg.eos_token_ids;
  if (!file_exists(dir + "/generation_config.json"))
    write_file_atomic(dir + "/generation_config.json", g.dump(2) + "\n");
}

void copy_model_files(const std::string& from, const std::string& to) {
  std::filesystem::create_directories(to);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                        "chat_template.jinja", "generation_config.json"})
    if (file_exists(from + "/" + f)) write_file_atomic(to + "/" + f, read_text_file(from + "/" + f));
}

GenerationDefaults generation_defaults(const std::string& dir) {
  GenerationDefaults d;
  const std::string path = dir + "/generation_config.json";
  if (!file_exists(path)) return d;
  const json g = read_json_file(path);
  FORGE_CHECK(g.is_object(), path, ": expected a JSON object");
  auto real = [&](const char* key, double lo, double hi) -> std::optional<double> {
    if (!g.contains(key) || g[key].is_null()) return std::nullopt;
    FORGE_CHECK(g[key].is_number(), path, ": '", key, "' must be a number, got ", g[key].dump());
    const double x = g[key].get<double>();
    FORGE_CHECK(x >= lo && x <= hi, path, ": '", key, "' must be between ", lo, " and ", hi, ", got ", x);
    return x;
  };
  auto integer = [&](const char* key, int64_t lo) -> std::optional<int64_t> {
    if (!g.contains(key) || g[key].is_null()) return std::nullopt;
    FORGE_CHECK(g[key].is_number_integer() && g[key].get<int64_t>() >= lo, path, ": '", key,
                "' must be an integer of at least ", lo, ", got ", g[key].dump());
    return g[key].get<int64_t>();
  };
  // The ranges a request may give (openai_api.cpp).
  d.temperature = real("temperature", 0, 2);
  d.top_p = real("top_p", 1e-9, 1);
  d.min_p = real("min_p", 0, 1);
  d.repetition_penalty = real("repetition_penalty", 1e-6, 100);
  d.top_k = integer("top_k", -1);
  d.max_new_tokens = integer("max_new_tokens", 1);
  return d;
}

GenerationDefaults generation_defaults(const std::string& choice, const std::string& model_dir) {
  if (choice == "none") return {};
  if (choice == "auto") return generation_defaults(model_dir);
  FORGE_CHECK(file_exists(choice + "/generation_config.json"), "--generation-config ", choice,
              ": no generation_config.json there (expected auto, none or a directory holding one)");
  return generation_defaults(choice);
}

std::string GenerationDefaults::describe() const {
  std::string out;
  auto add = [&](const char* k, const std::string& v) { out += (out.empty() ? "" : ", ") + std::string(k) + " " + v; };
  auto num = [](double x) {
    char b[32];
    std::snprintf(b, sizeof(b), "%g", x);
    return std::string(b);
  };
  if (temperature) add("temperature", num(*temperature));
  if (top_p) add("top_p", num(*top_p));
  if (top_k) add("top_k", std::to_string(*top_k));
  if (min_p) add("min_p", num(*min_p));
  if (repetition_penalty) add("repetition_penalty", num(*repetition_penalty));
  if (max_new_tokens) add("max_tokens", std::to_string(*max_new_tokens));
  return out;
}

std::vector<int64_t> stop_token_ids(const std::string& dir, const ModelConfig& cfg) {
  std::vector<int64_t> ids;
  auto add = [&](int64_t id) {
    if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  const std::string path = dir + "/generation_config.json";
  if (file_exists(path)) {
    const json g = read_json_file(path);
    if (g.contains("eos_token_id")) {
      const json& e = g["eos_token_id"];
      if (e.is_array())
        for (auto& x : e) {
          FORGE_CHECK(x.is_number_integer(), path, ": eos_token_id must be an id or a list of ids, got ", x.dump());
          add(x.get<int64_t>());
        }
      else if (e.is_number_integer())
        add(e.get<int64_t>());
    }
  }
  for (int64_t id : cfg.eos_token_ids) add(id);
  return ids;
}

}  // namespace forge::models
