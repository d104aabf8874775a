// Recipe parsing: one table of keys (name, kind, member) drives reading, overrides, defaults in
// YAML output and the "did you mean" suggestions; value checks follow in validate().
#include "train/recipe.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/file_util.h"
#include "core/suggest.h"
#include "train/rewards.h"

namespace forge::train {
namespace {

enum class Kind { Str, Int, Float, Bool, Targets, Json };

struct Field {
  const char* key;
  Kind kind;
  void* member;
  std::vector<std::string> choices;  // allowed values of a Str field (empty: any)
};

std::vector<Field> fields(Recipe& r) {
  return {
      {"model.path", Kind::Str, &r.model.path, {}},
      {"model.dtype", Kind::Str, &r.model.dtype, {"f32", "bf16"}},
      {"model.device", Kind::Str, &r.model.device, {}},
      {"model.init", Kind::Str, &r.model.init, {}},
      {"data.path", Kind::Str, &r.data.path, {}},
      {"data.format", Kind::Str, &r.data.format, {"auto", "alpaca", "chat", "prompt_completion", "text", "preference"}},
      {"data.eval_path", Kind::Str, &r.data.eval_path, {}},
      {"data.eval_fraction", Kind::Float, &r.data.eval_fraction, {}},
      {"data.max_seq_len", Kind::Int, &r.data.max_seq_len, {}},
      {"data.long_examples", Kind::Str, &r.data.long_examples, {"auto", "split", "truncate"}},
      {"data.packing", Kind::Bool, &r.data.packing, {}},
      {"data.train_on_prompt", Kind::Bool, &r.data.train_on_prompt, {}},
      {"data.shuffle", Kind::Bool, &r.data.shuffle, {}},
      {"data.skip_malformed", Kind::Bool, &r.data.skip_malformed, {}},
      {"data.cache", Kind::Bool, &r.data.cache, {}},
      {"peft.method", Kind::Str, &r.peft.method, {"lora", "qlora", "none"}},
      {"peft.r", Kind::Int, &r.peft.r, {}},
      {"peft.alpha", Kind::Float, &r.peft.alpha, {}},
      {"peft.dropout", Kind::Float, &r.peft.dropout, {}},
      {"peft.target_modules", Kind::Targets, &r.peft, {}},
      {"peft.use_rslora", Kind::Bool, &r.peft.use_rslora, {}},
      {"optim.name", Kind::Str, &r.optim.name, {"adamw", "sgd"}},
      {"optim.lr", Kind::Float, &r.optim.lr, {}},
      {"optim.weight_decay", Kind::Float, &r.optim.weight_decay, {}},
      {"optim.beta1", Kind::Float, &r.optim.beta1, {}},
      {"optim.beta2", Kind::Float, &r.optim.beta2, {}},
      {"optim.eps", Kind::Float, &r.optim.eps, {}},
      {"optim.momentum", Kind::Float, &r.optim.momentum, {}},
      {"schedule.name", Kind::Str, &r.schedule.name, {"constant", "linear", "cosine"}},
      {"schedule.warmup_steps", Kind::Int, &r.schedule.warmup_steps, {}},
      {"schedule.min_lr_ratio", Kind::Float, &r.schedule.min_lr_ratio, {}},
      {"train.method", Kind::Str, &r.train.method, {"sft", "dpo", "grpo"}},
      {"train.epochs", Kind::Int, &r.train.epochs, {}},
      {"train.max_steps", Kind::Int, &r.train.max_steps, {}},
      {"train.batch_size", Kind::Int, &r.train.batch_size, {}},
      {"train.grad_accum", Kind::Int, &r.train.grad_accum, {}},
      {"train.max_grad_norm", Kind::Float, &r.train.max_grad_norm, {}},
      {"train.seed", Kind::Int, &r.train.seed, {}},
      {"train.activation_checkpointing", Kind::Bool, &r.train.activation_checkpointing, {}},
      {"dpo.beta", Kind::Float, &r.dpo.beta, {}},
      {"dpo.loss_type", Kind::Str, &r.dpo.loss_type, {"sigmoid", "hinge", "ipo", "simpo"}},
      {"dpo.label_smoothing", Kind::Float, &r.dpo.label_smoothing, {}},
      {"dpo.simpo_gamma", Kind::Float, &r.dpo.simpo_gamma, {}},
      {"dpo.rpo_alpha", Kind::Float, &r.dpo.rpo_alpha, {}},
      {"dpo.precompute_ref", Kind::Bool, &r.dpo.precompute_ref, {}},
      {"grpo.num_generations", Kind::Int, &r.grpo.num_generations, {}},
      {"grpo.max_prompt_len", Kind::Int, &r.grpo.max_prompt_len, {}},
      {"grpo.max_completion_length", Kind::Int, &r.grpo.max_completion_length, {}},
      {"grpo.temperature", Kind::Float, &r.grpo.temperature, {}},
      {"grpo.epsilon", Kind::Float, &r.grpo.epsilon, {}},
      {"grpo.epsilon_high", Kind::Float, &r.grpo.epsilon_high, {}},
      {"grpo.beta", Kind::Float, &r.grpo.beta, {}},
      {"grpo.loss_type", Kind::Str, &r.grpo.loss_type, {"grpo", "dapo", "dr_grpo"}},
      {"grpo.scale_rewards", Kind::Str, &r.grpo.scale_rewards, {"group", "batch", "none"}},
      {"grpo.iterations", Kind::Int, &r.grpo.iterations, {}},
      {"grpo.rewards", Kind::Json, &r.grpo.rewards, {}},
      {"grpo.samples_every", Kind::Int, &r.grpo.samples_every, {}},
      {"grpo.kv_cache_mb", Kind::Float, &r.grpo.kv_cache_mb, {}},
      {"parallel.dp", Kind::Int, &r.parallel.dp, {}},
      {"parallel.tp", Kind::Int, &r.parallel.tp, {}},
      {"parallel.pp", Kind::Int, &r.parallel.pp, {}},
      {"parallel.zero", Kind::Int, &r.parallel.zero, {}},
      {"parallel.timeout_s", Kind::Float, &r.parallel.timeout_s, {}},
      {"parallel.bucket_mb", Kind::Float, &r.parallel.bucket_mb, {}},
      {"parallel.schedule", Kind::Str, &r.parallel.schedule, {"1f1b", "gpipe"}},
      {"checkpoint.every", Kind::Int, &r.checkpoint.every, {}},
      {"checkpoint.keep", Kind::Int, &r.checkpoint.keep, {}},
      {"checkpoint.resume", Kind::Str, &r.checkpoint.resume, {}},
      {"logging.every", Kind::Int, &r.logging.every, {}},
      {"logging.eval_every", Kind::Int, &r.logging.eval_every, {}},
      {"logging.eval_batches", Kind::Int, &r.logging.eval_batches, {}},
      {"logging.eval_on_start", Kind::Bool, &r.logging.eval_on_start, {}},
      {"logging.progress", Kind::Bool, &r.logging.progress, {}},
      {"output.dir", Kind::Str, &r.output.dir, {}},
  };
}

struct Source {
  YAML::Node node;
  std::string where;  // "file:line" or "command line override 'k=v'"
};

std::string where_of(const std::string& file, const YAML::Node& n) {
  return file + ":" + std::to_string(n.Mark().line + 1);
}

std::string scalar_text(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

// A YAML value as JSON: scalars become booleans, numbers or strings as YAML reads them.
nlohmann::json to_json(const YAML::Node& n) {
  if (n.IsSequence()) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& e : n) a.push_back(to_json(e));
    return a;
  }
  if (n.IsMap()) {
    nlohmann::json o = nlohmann::json::object();
    for (const auto& kv : n) o[kv.first.as<std::string>()] = to_json(kv.second);
    return o;
  }
  if (!n.IsScalar()) return nullptr;
  if (n.Tag() == "!") return n.Scalar();  // quoted: a string whatever it looks like
  int64_t i;
  double d;
  bool b;
  if (YAML::convert<int64_t>::decode(n, i)) return i;
  if (YAML::convert<double>::decode(n, d)) return d;
  if (YAML::convert<bool>::decode(n, b)) return b;
  return n.Scalar();
}

void assign(const Field& f, const Source& s) {
  const YAML::Node& n = s.node;
  auto fail = [&](const std::string& expected) {
    throw Error(s.where + ": key '" + f.key + "': expected " + expected + ", got " + scalar_text(n));
  };
  switch (f.kind) {
    case Kind::Str: {
      if (!n.IsScalar()) fail("a string");
      std::string v = n.Scalar();
      auto& ch = f.choices;
      if (!ch.empty() && std::find(ch.begin(), ch.end(), v) == ch.end()) {
        std::string list;
        for (auto& c : ch) list += (list.empty() ? "" : " | ") + c;
        throw Error(s.where + ": key '" + f.key + "': '" + v + "' is not one of " + list + did_you_mean(v, ch));
      }
      *static_cast<std::string*>(f.member) = v;
      break;
    }
    case Kind::Int: {
      int64_t v = 0;
      if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, v)) fail("an integer");
      *static_cast<int64_t*>(f.member) = v;
      break;
    }
    case Kind::Float: {
      double v = 0;
      if (!n.IsScalar() || !YAML::convert<double>::decode(n, v)) fail("a number");
      *static_cast<double*>(f.member) = v;
      break;
    }
    case Kind::Bool: {
      bool v = false;
      if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) fail("true or false");
      *static_cast<bool*>(f.member) = v;
      break;
    }
    case Kind::Targets: {
      auto* p = static_cast<Recipe::Peft*>(f.member);
      p->target_modules.clear();
      p->target_regex.clear();
      if (n.IsScalar() && n.Scalar() == "all-linear") {
        p->target_modules = {"all-linear"};
      } else if (n.IsScalar()) {
        p->target_regex = n.Scalar();
      } else if (n.IsSequence() && n.size() > 0) {
        for (const auto& e : n) {
          if (!e.IsScalar()) fail("a list of module names");
          p->target_modules.push_back(e.Scalar());
        }
      } else {
        fail("a list of module names, \"all-linear\" or a regular expression");
      }
      break;
    }
    case Kind::Json: {
      if (!n.IsSequence()) fail("a list of mappings");
      for (const auto& e : n)
        if (!e.IsMap()) fail("a list of mappings");
      // Invalid UTF-8 in a YAML string becomes U+FFFD rather than a JSON error.
      *static_cast<std::string*>(f.member) = to_json(n).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      break;
    }
  }
}

using Need = std::function<void(bool, const std::string&, const std::string&)>;

// GRPO's keys; its rewards are built here once so that a bad entry names its line.
void validate_grpo(const Recipe& r, const Need& need) {
  const Recipe::Grpo& g = r.grpo;
  need(g.num_generations >= 2, "grpo.num_generations", "must be at least 2 (advantages compare a prompt's completions)");
  need(g.max_prompt_len >= 1, "grpo.max_prompt_len", "must be at least 1");
  need(g.max_completion_length >= 1, "grpo.max_completion_length", "must be at least 1");
  need(g.temperature > 0, "grpo.temperature", "must be positive (the loss takes log-probs at the sampling temperature)");
  need(g.epsilon > 0 && g.epsilon < 1, "grpo.epsilon", "must be in (0, 1)");
  need(g.epsilon_high >= 0, "grpo.epsilon_high", "must not be negative (0: epsilon)");
  need(g.beta >= 0, "grpo.beta", "must not be negative (0: no KL term)");
  need(g.iterations >= 1, "grpo.iterations", "must be at least 1");
  need(g.samples_every >= 0, "grpo.samples_every", "must not be negative (0: no samples file)");
  need(g.kv_cache_mb >= 0, "grpo.kv_cache_mb", "must not be negative (0: sized for a step's rollouts)");
  if (r.train.method != "grpo") return;
  const nlohmann::json list = nlohmann::json::parse(g.rewards);
  need(!list.empty(), "grpo.rewards", "GRPO needs at least one reward, e.g. [{type: exact, field: answer}]");
  for (size_t i = 0; i < list.size(); ++i) {
    try {
      make_reward(list[i], "grpo.rewards[" + std::to_string(i) + "]");
    } catch (const Error& e) {
      need(false, "grpo.rewards", e.what());
    }
  }
  need(r.data.format == "auto", "data.format", "GRPO reads prompts ({\"prompt\": ...}); leave data.format auto");
  need(r.data.eval_fraction == 0, "data.eval_fraction", "GRPO evaluates on held-out prompts: give data.eval_path");
  need(r.parallel.tp == 1 && r.parallel.pp == 1, "parallel.tp",
       "GRPO samples with the serving engine, which runs the whole model: tp and pp must be 1 (use dp)");
  need(r.parallel.zero <= 2, "parallel.zero", "GRPO's engine needs whole weights on each rank: ZeRO-3 is not possible");
  need(r.peft.dropout == 0, "peft.dropout",
       "GRPO samples without dropout: the loss must see the policy that sampled (set peft.dropout: 0)");
}

// Without throwing: a path too long or unreadable is "no such file", not a filesystem_error.
bool is_file(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

// Values that parse but cannot work. `where` gives the line of a key (or the file name).
void validate(const Recipe& r, const std::function<std::string(const std::string&)>& where) {
  const Need need = [&](bool ok, const std::string& key, const std::string& msg) {
    if (!ok) throw Error(where(key) + ": key '" + key + "': " + msg);
  };
  namespace fs = std::filesystem;
  need(!r.model.path.empty(), "model.path", "required (a Hugging Face model directory)");
  need(file_exists(r.model.path + "/config.json") || !r.model.init.empty(), "model.path",
       "'" + r.model.path + "' has no config.json (expected a Hugging Face model directory, or set model.init)");
  const std::string& dev = r.model.device;
  need(dev == "auto" || dev == "cpu" || dev == "cuda" ||
           (dev.size() > 5 && dev.size() <= 8 && dev.rfind("cuda:", 0) == 0 &&
            dev.find_first_not_of("0123456789", 5) == std::string::npos),
       "model.device", "expected auto, cpu, cuda or cuda:N, got '" + dev + "'");
  need(!r.data.path.empty(), "data.path", "required (a JSONL file)");
  need(is_file(r.data.path), "data.path", "no such file '" + r.data.path + "'");
  need(r.data.eval_path.empty() || is_file(r.data.eval_path), "data.eval_path",
       "no such file '" + r.data.eval_path + "'");
  need(r.data.eval_fraction >= 0 && r.data.eval_fraction < 1, "data.eval_fraction", "must be in [0, 1)");
  need(r.data.eval_path.empty() || r.data.eval_fraction == 0, "data.eval_fraction",
       "give data.eval_path or data.eval_fraction, not both");
  need(r.data.max_seq_len >= 8, "data.max_seq_len", "must be at least 8");
  need(r.peft.r >= 1, "peft.r", "must be at least 1");
  need(r.peft.alpha > 0, "peft.alpha", "must be positive");
  need(r.peft.dropout >= 0 && r.peft.dropout < 1, "peft.dropout", "must be in [0, 1)");
  need(r.optim.lr > 0, "optim.lr", "must be positive");
  need(r.optim.weight_decay >= 0, "optim.weight_decay", "must not be negative");
  need(r.optim.beta1 >= 0 && r.optim.beta1 < 1, "optim.beta1", "must be in [0, 1)");
  need(r.optim.beta2 >= 0 && r.optim.beta2 < 1, "optim.beta2", "must be in [0, 1)");
  need(r.optim.eps > 0, "optim.eps", "must be positive");
  need(r.optim.momentum >= 0 && r.optim.momentum < 1, "optim.momentum", "must be in [0, 1)");
  need(r.schedule.warmup_steps >= 0, "schedule.warmup_steps", "must not be negative");
  need(r.schedule.min_lr_ratio >= 0 && r.schedule.min_lr_ratio <= 1, "schedule.min_lr_ratio", "must be in [0, 1]");
  need(r.train.epochs >= 1, "train.epochs", "must be at least 1");
  need(r.train.max_steps >= 0, "train.max_steps", "must not be negative (0: run the epochs)");
  need(r.train.batch_size >= 1, "train.batch_size", "must be at least 1");
  need(r.train.grad_accum >= 1, "train.grad_accum", "must be at least 1");
  need(r.train.max_grad_norm >= 0, "train.max_grad_norm", "must not be negative (0: no clipping)");
  need(r.train.seed >= 0, "train.seed", "must not be negative");
  need(r.dpo.beta > 0, "dpo.beta", "must be positive");
  need(r.dpo.rpo_alpha >= 0, "dpo.rpo_alpha", "must not be negative (0: off)");
  need(r.dpo.label_smoothing >= 0 && r.dpo.label_smoothing < 0.5, "dpo.label_smoothing", "must be in [0, 0.5)");
  need(r.dpo.label_smoothing == 0 || r.dpo.loss_type == "sigmoid" || r.dpo.loss_type == "simpo", "dpo.label_smoothing",
       "applies to loss_type sigmoid or simpo, not " + r.dpo.loss_type);
  need(r.train.method != "dpo" || r.data.format == "auto" || r.data.format == "preference", "data.format",
       "train.method dpo reads preference pairs (format auto or preference), not " + r.data.format);
  need(r.train.method == "dpo" || r.data.format != "preference", "data.format",
       "preference pairs train with train.method: dpo");
  need(r.train.method != "dpo" || !r.data.train_on_prompt, "data.train_on_prompt",
       "DPO compares the replies only; it cannot train on the prompt");
  need(r.train.method != "dpo" || r.data.long_examples != "split", "data.long_examples",
       "DPO pairs are cut at max_seq_len (truncate), never split into windows");
  validate_grpo(r, need);
  for (auto [k, v] : {std::pair{"parallel.dp", r.parallel.dp}, {"parallel.tp", r.parallel.tp}, {"parallel.pp", r.parallel.pp}})
    need(v >= 1, k, "must be at least 1");
  need(r.parallel.zero >= 0 && r.parallel.zero <= 3, "parallel.zero", "must be 0, 1, 2 or 3");
  need(r.peft.method != "qlora" || r.parallel.tp == 1, "parallel.tp",
       "must be 1 with peft.method qlora (NF4 weights are not split across ranks)");
  need(r.parallel.timeout_s >= 0, "parallel.timeout_s", "must not be negative (0: wait forever)");
  need(r.parallel.bucket_mb > 0, "parallel.bucket_mb", "must be positive");
  need(r.checkpoint.every >= 0, "checkpoint.every", "must not be negative");
  need(r.checkpoint.keep >= 1, "checkpoint.keep", "must be at least 1");
  const std::string& res = r.checkpoint.resume;
  need(res == "auto" || res == "never" || is_file(res), "checkpoint.resume",
       "expected auto, never or an existing checkpoint file, got '" + res + "'");
  need(r.logging.every >= 1, "logging.every", "must be at least 1");
  need(r.logging.eval_every >= 0, "logging.eval_every", "must not be negative");
  need(r.logging.eval_batches >= 0, "logging.eval_batches", "must not be negative");
  need(!r.output.dir.empty(), "output.dir", "required (where metrics, adapters and checkpoints go)");
}

}  // namespace

std::vector<std::string> recipe_keys() {
  Recipe r;
  std::vector<std::string> keys;
  for (auto& f : fields(r)) keys.push_back(f.key);
  return keys;
}

Recipe parse_recipe(const std::string& text, const std::string& name, const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw Error(name + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  Recipe r;
  r.file = name;
  const std::vector<Field> table = fields(r);
  const std::vector<std::string> keys = recipe_keys();
  std::vector<std::string> sections;
  for (auto& k : keys) {
    std::string s = k.substr(0, k.find('.'));
    if (std::find(sections.begin(), sections.end(), s) == sections.end()) sections.push_back(s);
  }
  auto known = [&](const std::string& k) { return std::find(keys.begin(), keys.end(), k) != keys.end(); };

  std::map<std::string, Source> seen;
  if (!root.IsNull() && !root.IsMap())
    throw Error(name + ": a recipe is a mapping of sections (model, data, peft, optim, ...)");
  for (const auto& sec : root) {
    const std::string w = where_of(name, sec.first);
    if (!sec.first.IsScalar()) throw Error(w + ": a section name must be a plain word (model, data, ...)");
    const std::string s = sec.first.as<std::string>();
    if (std::find(sections.begin(), sections.end(), s) == sections.end())
      throw Error(w + ": unknown section '" + s + "'" + did_you_mean(s, sections));
    if (s == "peft" && sec.second.IsScalar()) {  // `peft: none` / `peft: lora`
      seen["peft.method"] = {sec.second, w};
      continue;
    }
    if (sec.second.IsNull()) continue;
    if (!sec.second.IsMap()) throw Error(w + ": section '" + s + "' must be a mapping of keys");
    for (const auto& kv : sec.second) {
      const std::string kw = where_of(name, kv.first);
      if (!kv.first.IsScalar()) throw Error(kw + ": a key of section '" + s + "' must be a plain word");
      const std::string k = s + "." + kv.first.as<std::string>();
      if (!known(k)) throw Error(kw + ": unknown key '" + k + "'" + did_you_mean(k, keys));
      if (seen.count(k)) throw Error(kw + ": key '" + k + "' is given twice (also at " + seen[k].where + ")");
      seen[k] = {kv.second, kw};
    }
  }
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    const std::string w = "command line override '" + o + "'";
    if (eq == std::string::npos || eq == 0) throw Error(w + ": expected section.key=value");
    std::string k = o.substr(0, eq);
    if (k == "peft") k = "peft.method";  // `peft=none`, as `peft: none` in the file
    if (!known(k)) throw Error(w + ": unknown key '" + k + "'" + did_you_mean(k, keys));
    YAML::Node v;
    try {
      v = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::ParserException&) {
      v = YAML::Node(o.substr(eq + 1));
    }
    if (v.IsNull()) v = YAML::Node(std::string());
    seen[k] = {v, w};
  }
  for (const Field& f : table)
    if (auto it = seen.find(f.key); it != seen.end()) assign(f, it->second);
  validate(r, [&](const std::string& key) {
    auto it = seen.find(key);
    return it != seen.end() ? it->second.where : name;
  });
  return r;
}

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides) {
  FORGE_CHECK(is_file(path), path, ": no such recipe file");
  return parse_recipe(read_text_file(path), path, overrides);
}

std::string recipe_to_yaml(const Recipe& r0) {
  Recipe r = r0;
  std::ostringstream os;
  std::string section;
  for (const Field& f : fields(r)) {
    std::string k = f.key;
    std::string s = k.substr(0, k.find('.')), leaf = k.substr(k.find('.') + 1);
    if (s != section) os << (section.empty() ? "" : "\n") << s << ":\n", section = s;
    YAML::Emitter e;
    e << YAML::Flow;
    switch (f.kind) {
      case Kind::Str: e << *static_cast<std::string*>(f.member); break;
      case Kind::Int: e << *static_cast<int64_t*>(f.member); break;
      case Kind::Float: e << *static_cast<double*>(f.member); break;
      case Kind::Bool: e << *static_cast<bool*>(f.member); break;
      case Kind::Targets:
        if (!r.peft.target_regex.empty()) e << r.peft.target_regex;
        else e << r.peft.target_modules;
        break;
      case Kind::Json: e << YAML::Load(*static_cast<std::string*>(f.member)); break;  // JSON is YAML
    }
    os << "  " << leaf << ": " << (e.size() ? e.c_str() : "\"\"") << "\n";
  }
  return os.str();
}

}  // namespace forge::train
