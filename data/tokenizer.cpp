// Tokenizer loading, encode and decode (see tokenizer.h).
#include "data/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "core/file_util.h"

namespace forge::data {
using json = nlohmann::json;

namespace {
// tokenizer_config.json writes tokens as a string or as {"content": ...}.
std::string token_string(const json& cfg, const char* key) {
  if (!cfg.contains(key) || cfg[key].is_null()) return "";
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return "";
}

bool is_word_char(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

std::string cleanup_spaces(std::string s) {
  static const std::pair<const char*, const char*> rules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (auto [from, to] : rules) {
    std::string out;
    const std::string f = from;
    size_t pos = 0;
    for (size_t i = s.find(f); i != std::string::npos; i = s.find(f, pos)) {
      out.append(s, pos, i - pos);
      out += to;
      pos = i + f.size();
    }
    out.append(s, pos);
    s.swap(out);
  }
  return s;
}
}  // namespace

std::shared_ptr<Tokenizer> Tokenizer::from_dir(const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  FORGE_CHECK(file_exists(path), dir, ": no tokenizer.json (Forge reads HF fast-tokenizer files)");
  json cfg = file_exists(dir + "/tokenizer_config.json") ? read_json_file(dir + "/tokenizer_config.json") : json::object();
  auto tok = std::make_shared<Tokenizer>(read_json_file(path), cfg, path);
  // transformers (4.47 on) saves the template as chat_template.jinja beside the config, and reads
  // that file first.
  if (file_exists(dir + "/chat_template.jinja")) tok->set_chat_template(read_text_file(dir + "/chat_template.jinja"));
  return tok;
}

Tokenizer::Tokenizer(const json& j, const json& cfg, const std::string& where) : config_(cfg) {
  // nlohmann's errors (a missing key, a wrong type) become Errors naming the file.
  try {
    model_ = std::make_unique<BpeModel>(j.at("model"));
    normalizer_ = parse_normalizer(j.value("normalizer", json()));
    pre_tokenizer_ = parse_pre_tokenizer(j.value("pre_tokenizer", json()));
    decoder_ = parse_decoder(j.value("decoder", json()));
    read_added_tokens(j.value("added_tokens", json::array()));
    index_tokens();
    read_post_processor(j.value("post_processor", json()));
  } catch (const json::exception& e) {
    throw Error(where + ": unexpected structure (" + e.what() + ")");
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  try {
    bos_token_ = token_string(cfg, "bos_token");
    eos_token_ = token_string(cfg, "eos_token");
    if (cfg.contains("chat_template")) {
      const json& ct = cfg["chat_template"];
      if (ct.is_string()) {
        chat_template_ = ct.get<std::string>();
      } else if (ct.is_array()) {
        for (auto& t : ct)
          if (t.value("name", std::string()) == "default") chat_template_ = t.value("template", std::string());
      }
    }
    cleanup_spaces_ = cfg.value("clean_up_tokenization_spaces", false);
  } catch (const json::exception& e) {
    throw Error(where + ": tokenizer_config.json: unexpected structure (" + e.what() + ")");
  }
}

void Tokenizer::read_added_tokens(const json& list) {
  for (auto& a : list) {
    AddedToken t;
    t.content = a.at("content").get<std::string>();
    FORGE_CHECK(a.at("id").is_number_integer(), "added token '", t.content, "' has id ", a["id"].dump(), ", not an integer");
    t.id = a.at("id").get<int64_t>();
    FORGE_CHECK(t.id >= 0 && t.id < kMaxVocab, "added token '", t.content, "' has id ", t.id, ", outside [0, ",
                kMaxVocab, ")");
    FORGE_CHECK(!t.content.empty(), "added token ", t.id, " is empty");
    t.special = a.value("special", false);
    t.lstrip = a.value("lstrip", false);
    t.rstrip = a.value("rstrip", false);
    t.single_word = a.value("single_word", false);
    t.normalized = a.value("normalized", !t.special);
    added_ids_[t.content] = t.id;
    if (t.special) special_ids_.insert(t.id);
    added_.push_back(t);
  }
}

// id -> token for the vocabulary and the added tokens, and the trie that finds added tokens in text.
void Tokenizer::index_tokens() {
  int64_t n = 0;
  for (auto& [tok, id] : model_->vocab()) n = std::max<int64_t>(n, id + 1);
  for (auto& t : added_) n = std::max(n, t.id + 1);
  id_to_token_.assign(size_t(n), "");
  for (auto& [tok, id] : model_->vocab()) id_to_token_[size_t(id)] = tok;
  for (auto& t : added_) id_to_token_[size_t(t.id)] = t.content;

  trie_.emplace_back();
  for (size_t i = 0; i < added_.size(); ++i) {
    int node = 0;
    for (unsigned char c : added_[i].content) {
      auto it = trie_[node].next.find(c);
      if (it == trie_[node].next.end()) {
        trie_.emplace_back();
        it = trie_[node].next.emplace(c, int(trie_.size() - 1)).first;
      }
      node = it->second;
    }
    trie_[node].token = int(i);
  }
}

// The post-processor: the ids it puts before and after a single sequence.
void Tokenizer::read_post_processor(const json& p) {
  if (p.is_null()) return;
  auto add = [&](std::vector<int64_t>& to, const json& id) {
    FORGE_CHECK(id.is_number_integer(), "post_processor id ", id.dump(), " is not an integer");
    const int64_t v = id.get<int64_t>();
    FORGE_CHECK(v >= 0 && v < vocab_size(), "post_processor id ", v, " is outside the vocabulary of ", vocab_size());
    to.push_back(v);
  };
  const std::string type = p.at("type").get<std::string>();
  if (type == "Sequence") {
    for (auto& q : p.at("processors")) read_post_processor(q);
  } else if (type == "TemplateProcessing") {
    bool seen_a = false;
    for (auto& item : p.at("single")) {
      if (item.contains("Sequence")) {
        seen_a = true;
        continue;
      }
      const std::string name = item.at("SpecialToken").at("id").get<std::string>();
      FORGE_CHECK(p.at("special_tokens").contains(name), "post_processor token '", name, "' undefined");
      for (auto& id : p["special_tokens"][name].at("ids")) add(seen_a ? suffix_ids_ : prefix_ids_, id);
    }
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    add(prefix_ids_, p.at("cls").at(1));
    add(suffix_ids_, p.at("sep").at(1));
  } else if (type != "ByteLevel") {
    throw Error("post_processor '" + type + "' is not supported");
  }
}

int64_t Tokenizer::token_to_id(const std::string& token) const {
  if (token.empty()) return -1;
  auto it = added_ids_.find(token);
  if (it != added_ids_.end()) return it->second;
  return model_->token_to_id(token);
}

std::string Tokenizer::id_to_token(int64_t id) const {
  return id >= 0 && id < vocab_size() ? id_to_token_[size_t(id)] : std::string();
}

std::vector<Tokenizer::Piece> Tokenizer::split_added(std::string_view text) const {
  std::vector<Piece> out;
  size_t start = 0, i = 0;
  while (i < text.size()) {
    // Longest added token starting at i.
    int node = 0, found = -1;
    size_t found_end = 0;
    for (size_t k = i; k < text.size(); ++k) {
      auto it = trie_[node].next.find(static_cast<unsigned char>(text[k]));
      if (it == trie_[node].next.end()) break;
      node = it->second;
      if (trie_[node].token >= 0) found = trie_[node].token, found_end = k + 1;
    }
    if (found < 0) {
      ++i;
      continue;
    }
    const AddedToken& t = added_[size_t(found)];
    if (t.single_word && ((i > 0 && is_word_char(text[i - 1])) ||
                          (found_end < text.size() && is_word_char(text[found_end])))) {
      ++i;
      continue;
    }
    size_t b = i, e = found_end;
    if (t.lstrip)
      while (b > start && std::isspace(static_cast<unsigned char>(text[b - 1]))) --b;
    if (t.rstrip)
      while (e < text.size() && std::isspace(static_cast<unsigned char>(text[e]))) ++e;
    if (b > start) out.push_back({text.substr(start, b - start), -1});
    out.push_back({text.substr(b, e - b), t.id});
    start = i = e;
  }
  if (start < text.size()) out.push_back({text.substr(start), -1});
  return out;
}

void Tokenizer::encode_text(std::string_view text, bool first_section, std::vector<int64_t>& out) const {
  const std::string norm = normalize(normalizer_, std::string(text));
  std::vector<int32_t> ids;
  for (const std::string& word : pre_tokenize(pre_tokenizer_, norm, first_section)) model_->encode_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
}

void Tokenizer::post_process(std::vector<int64_t>& ids) const {
  ids.insert(ids.begin(), prefix_ids_.begin(), prefix_ids_.end());
  ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
}

std::vector<int64_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  // HF tokenizers only ever see valid UTF-8 (a Rust str), and the split regex assumes it; other
  // bytes become U+FFFD, as Python's errors="replace" would make them.
  std::string repaired;
  if (!utf8_valid(text)) text = repaired = utf8_lossy(text);
  std::vector<int64_t> ids;
  bool first = true;
  for (const Piece& p : split_added(text)) {
    if (p.added_id >= 0) ids.push_back(p.added_id);
    else encode_text(p.text, first, ids);
    first = false;
  }
  if (add_special_tokens) post_process(ids);
  return ids;
}

std::string Tokenizer::decode_bytes(const int64_t* ids, size_t n, bool skip_special_tokens) const {
  std::vector<std::string> toks;
  for (size_t i = 0; i < n; ++i) {
    FORGE_CHECK(ids[i] >= 0 && ids[i] < vocab_size(), "decode: token id ", ids[i], " is outside [0, ", vocab_size(), ")");
    if (skip_special_tokens && is_special(ids[i])) continue;
    toks.push_back(id_to_token_[size_t(ids[i])]);
  }
  if (decoder_.empty()) {
    std::string s;
    for (size_t i = 0; i < toks.size(); ++i) s += (i ? " " : "") + toks[i];
    return s;
  }
  std::string s;
  for (auto& part : run_decoders(decoder_, std::move(toks))) s += part;
  return s;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens, bool cleanup) const {
  std::string s = utf8_lossy(decode_bytes(ids.data(), ids.size(), skip_special_tokens));
  return cleanup && cleanup_spaces_ ? cleanup_spaces(std::move(s)) : s;
}

// ---- streaming ------------------------------------------------------------------------------

std::string StreamDecoder::push(int64_t id) {
  ids_.push_back(id);
  const std::string prefix = tok_.decode_bytes(ids_.data() + prefix_, read_ - prefix_, skip_);
  const std::string full = tok_.decode_bytes(ids_.data() + prefix_, ids_.size() - prefix_, skip_);
  const bool held = utf8_incomplete_tail(full) > 0 ||
                    (full.size() >= 3 && full.compare(full.size() - 3, 3, "\xEF\xBF\xBD") == 0);
  if (held || full.size() <= prefix.size() || full.compare(0, prefix.size(), prefix) != 0) return "";
  prefix_ = read_;
  read_ = ids_.size();
  return utf8_lossy(std::string_view(full).substr(prefix.size()));
}

std::string StreamDecoder::finish() {
  const std::string prefix = tok_.decode_bytes(ids_.data() + prefix_, read_ - prefix_, skip_);
  const std::string full = tok_.decode_bytes(ids_.data() + prefix_, ids_.size() - prefix_, skip_);
  prefix_ = read_ = ids_.size();
  if (full.size() <= prefix.size()) return "";
  return utf8_lossy(std::string_view(full).substr(prefix.size()));
}

}  // namespace forge::data
