// config.json parsing and writing: the common fields (see config.h); each architecture adds its own.
#include "models/config.h"

#include <cmath>

#include "core/error.h"
#include "core/file_util.h"
#include "models/registry.h"

namespace forge::models {
using json = nlohmann::json;

int64_t ConfigReader::get_int(const char* key, int64_t fallback, bool required) const {
  if (!has(key)) {
    FORGE_CHECK(!required, path, ": missing required field '", key, "'");
    return fallback;
  }
  FORGE_CHECK(j[key].is_number_integer(), path, ": '", key, "' must be an integer, got ", j[key].dump());
  return j[key].get<int64_t>();
}
double ConfigReader::get_num(const char* key, double fallback) const {
  if (!has(key)) return fallback;
  FORGE_CHECK(j[key].is_number(), path, ": '", key, "' must be a number, got ", j[key].dump());
  return j[key].get<double>();
}
bool ConfigReader::get_bool(const char* key, bool fallback) const {
  if (!has(key)) return fallback;
  FORGE_CHECK(j[key].is_boolean(), path, ": '", key, "' must be true or false, got ", j[key].dump());
  return j[key].get<bool>();
}
std::string ConfigReader::get_str(const char* key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  FORGE_CHECK(j[key].is_string(), path, ": '", key, "' must be a string, got ", j[key].dump());
  return j[key].get<std::string>();
}
void ConfigReader::require_act(const std::string& want) const {
  const std::string act = get_str("hidden_act", want);
  FORGE_CHECK(act == want, path, ": hidden_act '", act, "' is not supported for this architecture (", want, ")");
}

void ConfigReader::read_layer_types(ModelConfig& c, const std::function<bool(int64_t)>& sliding) const {
  c.layer_types.clear();
  FORGE_CHECK(c.sliding_window >= 0, path, ": 'sliding_window' must be positive or null, got ", c.sliding_window);
  if (has("layer_types")) {
    const nlohmann::json& t = j["layer_types"];
    FORGE_CHECK(t.is_array() && int64_t(t.size()) == c.num_hidden_layers, path,
                ": 'layer_types' must list one type per layer (", c.num_hidden_layers, "), got ", t.dump());
    for (const auto& x : t) {
      FORGE_CHECK(x == "full_attention" || x == "sliding_attention", path, ": layer_types entry ", x.dump(),
                  " is not supported (full_attention, sliding_attention are)");
      c.layer_types.push_back(x.get<std::string>());
    }
  } else if (c.sliding_window > 0) {
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
      c.layer_types.push_back(sliding(i) ? "sliding_attention" : "full_attention");
  }
  if (c.sliding_window == 0) c.layer_types.clear();  // no window: every layer sees everything
}

int64_t ModelConfig::window(int64_t layer) const {
  return !layer_types.empty() && layer_types[size_t(layer)] == "sliding_attention" ? sliding_window : 0;
}

bool ModelConfig::has_sliding_layers() const {
  for (int64_t i = 0; i < num_hidden_layers; ++i)
    if (window(i) > 0) return true;
  return false;
}

namespace {
void check_positive(const std::string& path, const char* key, int64_t v) {
  FORGE_CHECK(v > 0, path, ": '", key, "' must be positive, got ", v);
}

// One rope description into c (rope_theta too when it has one).
void read_rope_into(const json& s, const std::string& path, const std::string& where, ModelConfig& c) {
  read_rope(s, path + ": " + where, c.rope_theta, c.rope_scaling);
  if (s.contains("partial_rotary_factor") && s["partial_rotary_factor"].is_number())
    c.partial_rotary_factor = s["partial_rotary_factor"].get<double>();
}

// rope_theta and rope_scaling, or transformers 5's rope_parameters: one description, or one per
// layer type ({"full_attention": ..., "sliding_attention": ...}: the sliding layers' theta, unscaled).
void read_ropes(const json& j, const std::string& path, ModelConfig& c) {
  ConfigReader r{j, path};
  c.rope_theta = r.get_num("rope_theta", 10000.0);
  if (r.has("rope_scaling")) read_rope_into(j["rope_scaling"], path, "rope_scaling", c);
  if (!r.has("rope_parameters")) return;
  const json& p = j["rope_parameters"];
  if (!p.is_object() || !(p.contains("full_attention") || p.contains("sliding_attention"))) {
    read_rope_into(p, path, "rope_parameters", c);
    return;
  }
  if (p.contains("full_attention")) read_rope_into(p["full_attention"], path, "rope_parameters.full_attention", c);
  if (p.contains("sliding_attention")) {
    ModelConfig local;
    read_rope_into(p["sliding_attention"], path, "rope_parameters.sliding_attention", local);
    FORGE_CHECK(local.rope_scaling.type == "default", path,
                ": rope_parameters.sliding_attention must be rope_type default, got ", local.rope_scaling.type);
    c.rope_local_theta = local.rope_theta;
  }
}
}  // namespace

namespace {
// A multimodal config's text model: its text_config over transformers' defaults, with the
// top-level dtype and token ids where text_config has none.
ModelConfig parse_text_config(const json& j, const std::string& path, const TextModelOf& mm) {
  FORGE_CHECK(j.contains("text_config") && j["text_config"].is_object(), path, ": ", mm.name,
              " needs a 'text_config' object");
  json t = json::parse(mm.text_defaults);
  for (auto& [k, v] : j["text_config"].items()) t[k] = v;
  for (const char* k : {"torch_dtype", "dtype", "bos_token_id", "eos_token_id"})
    if (j.contains(k) && !j["text_config"].contains(k)) t[k] = j[k];
  t["architectures"] = {mm.text_arch};
  ModelConfig c = parse_config(t, path + " (text_config)");
  c.loaded_from = mm.name;
  return c;
}
}  // namespace

namespace {
ModelConfig parse_config_fields(const json& j, const std::string& path) {
  FORGE_CHECK(j.is_object(), path, ": must be a JSON object");
  ConfigReader r{j, path};
  ModelConfig c;
  FORGE_CHECK(j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
                  j["architectures"][0].is_string(),
              path, ": no 'architectures' list naming the model class (e.g. [\"LlamaForCausalLM\"]); supported: ",
              architecture_list());
  c.architecture = j["architectures"][0].get<std::string>();
  if (const TextModelOf* mm = text_model_of(c.architecture)) return parse_text_config(j, path, *mm);
  const Architecture& arch = architecture(c.architecture, path);
  c.model_type = arch.model_type;

  c.hidden_size = r.get_int("hidden_size", 0, true);
  c.intermediate_size = r.get_int("intermediate_size", 0, true);
  c.num_hidden_layers = r.get_int("num_hidden_layers", 0, true);
  c.num_attention_heads = r.get_int("num_attention_heads", 0, true);
  c.num_key_value_heads = r.get_int("num_key_value_heads", c.num_attention_heads);
  c.vocab_size = r.get_int("vocab_size", 0, true);
  for (auto [k, v] : {std::pair{"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
                      {"num_hidden_layers", c.num_hidden_layers}, {"num_attention_heads", c.num_attention_heads},
                      {"num_key_value_heads", c.num_key_value_heads}, {"vocab_size", c.vocab_size}})
    check_positive(path, k, v);
  FORGE_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, path, ": num_attention_heads (",
              c.num_attention_heads, ") must be a multiple of num_key_value_heads (", c.num_key_value_heads, ")");
  c.head_dim = r.get_int("head_dim", 0);
  if (c.head_dim == 0) {
    FORGE_CHECK(c.hidden_size % c.num_attention_heads == 0, path, ": hidden_size ", c.hidden_size,
                " is not divisible by num_attention_heads ", c.num_attention_heads, " and no head_dim is given");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  FORGE_CHECK(c.head_dim % 2 == 0, path, ": head_dim must be even for rotary embeddings, got ", c.head_dim);
  c.partial_rotary_factor = r.get_num("partial_rotary_factor", 1.0);
  c.max_position_embeddings = r.get_int("max_position_embeddings", 2048);
  c.rms_norm_eps = r.get_num("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", false);
  read_ropes(j, path, c);
  FORGE_CHECK(c.partial_rotary_factor > 0 && c.partial_rotary_factor <= 1 && c.rotary_dim() >= 2 &&
                  c.rotary_dim() % 2 == 0,
              path, ": partial_rotary_factor ", c.partial_rotary_factor, " must turn an even number of head_dim's ",
              c.head_dim, " dims");
  if (c.rope_scaling.type == "longrope")
    FORGE_CHECK(int64_t(c.rope_scaling.short_factor.size()) * 2 == c.rotary_dim(), path,
                ": rope_scaling.short_factor has ", c.rope_scaling.short_factor.size(), " entries; the ",
                c.rotary_dim(), " rotary dims need ", c.rotary_dim() / 2);

  c.bos_token_id = r.get_int("bos_token_id", -1);
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const json& e = j["eos_token_id"];
    if (e.is_array())
      for (auto& x : e) {
        FORGE_CHECK(x.is_number_integer(), path, ": eos_token_id must be an id or a list of ids, got ", x.dump());
        c.eos_token_ids.push_back(x.get<int64_t>());
      }
    else
      c.eos_token_ids.push_back(r.get_int("eos_token_id", -1));
  }
  const std::string td = r.get_str("torch_dtype", r.get_str("dtype", "float32"));
  if (td == "float32") c.dtype = DType::F32;
  else if (td == "bfloat16") c.dtype = DType::BF16;
  else if (td == "float16") c.dtype = DType::F16;
  else throw Error(path + ": torch_dtype '" + td + "' is not supported (float32, bfloat16, float16 are)");
  arch.parse(r, c);  // the architecture's own fields and the decoder's options
  return c;
}

}  // namespace

ModelConfig parse_config(const json& j, const std::string& path) {
  try {
    return parse_config_fields(j, path);
  } catch (const json::exception& e) {  // a field of a type the reader did not check
    throw Error(path + ": unexpected structure (" + std::string(e.what()) + ")");
  }
}

ModelConfig load_config(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  return parse_config(read_json_file(path), path);
}

int64_t ModelConfig::rotary_dim() const { return int64_t(double(head_dim) * partial_rotary_factor); }

std::vector<float> ModelConfig::inv_freq(bool long_context) const {
  return rope_inv_freq(rope_theta, rotary_dim(), rope_scaling, max_position_embeddings, long_context);
}

double ModelConfig::rope_attention_factor() const {
  return models::rope_attention_factor(rope_scaling, max_position_embeddings);
}

std::vector<float> ModelConfig::local_inv_freq() const {
  return rope_inv_freq(rope_local_theta, rotary_dim(), RopeScaling{}, max_position_embeddings);
}

int64_t ModelConfig::num_parameters() const {
  const int64_t C = hidden_size, F = intermediate_size;
  int64_t attn = C * q_dim() + 2 * C * kv_dim() + q_dim() * C + (attention_bias ? q_dim() + 2 * kv_dim() : 0) +
                 (o_proj_bias ? C : 0) + (qk_norm ? 2 * head_dim : 0);
  int64_t mlp = 3 * C * F + (mlp_bias ? 2 * F + C : 0);
  int64_t layer = attn + mlp + (sandwich_norms ? 4 : 2) * C;
  return vocab_size * C * (tie_word_embeddings ? 1 : 2) + num_hidden_layers * layer + C;
}

json config_to_json(const ModelConfig& c) {
  json j = {{"architectures", {c.architecture}},
            {"model_type", c.model_type},
            {"hidden_size", c.hidden_size},
            {"intermediate_size", c.intermediate_size},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_attention_heads", c.num_attention_heads},
            {"num_key_value_heads", c.num_key_value_heads},
            {"head_dim", c.head_dim},
            {"vocab_size", c.vocab_size},
            {"max_position_embeddings", c.max_position_embeddings},
            {"rms_norm_eps", c.rms_norm_eps},
            {"rope_theta", c.rope_theta},
            {"tie_word_embeddings", c.tie_word_embeddings},
            {"torch_dtype", c.dtype == DType::BF16 ? "bfloat16" : c.dtype == DType::F16 ? "float16" : "float32"}};
  architecture(c.architecture, "config").write(c, j);
  j["rope_scaling"] = rope_to_json(c.rope_scaling);
  if (c.partial_rotary_factor != 1.0) j["partial_rotary_factor"] = c.partial_rotary_factor;
  if (!c.layer_types.empty()) j["layer_types"] = c.layer_types;
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  else if (!c.eos_token_ids.empty()) j["eos_token_id"] = c.eos_token_ids;
  return j;
}

}  // namespace forge::models
