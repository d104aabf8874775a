// Normalizers, pre-tokenizers and decoders of tokenizer.json (see text_pipeline.h), with the
// semantics of HF tokenizers.
#include "data/text_pipeline.h"

#include <algorithm>

#include "core/error.h"

namespace forge::data {
using json = nlohmann::json;

namespace {
const char* kGpt2Split =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

std::string lower_ascii(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_space_char(const std::string& ch) {
  return ch == " " || ch == "\t" || ch == "\n" || ch == "\r" || ch == "\v" || ch == "\f";
}

// Splits s by the matches of p according to an HF SplitDelimiterBehavior.
std::vector<std::string> split_by(const Pattern& p, const std::string& s,
                                  const std::string& behavior, bool invert) {
  struct Seg {
    size_t b, e;
    bool match;
  };
  std::vector<Seg> segs;
  size_t pos = 0;
  for (auto [b, e] : p.find_all(s)) {
    if (b > pos) segs.push_back({pos, b, false});
    segs.push_back({b, e, true});
    pos = e;
  }
  if (pos < s.size()) segs.push_back({pos, s.size(), false});
  if (invert)
    for (auto& g : segs) g.match = !g.match;
  std::vector<std::string> out;
  std::vector<Seg> merged;
  if (behavior == "removed") {
    for (auto& g : segs)
      if (!g.match) merged.push_back(g);
  } else if (behavior == "isolated") {
    merged = segs;
  } else if (behavior == "mergedwithprevious") {
    for (auto& g : segs) {
      if (g.match && !merged.empty() && !merged.back().match)
        merged.back().e = g.e, merged.back().match = true;
      else
        merged.push_back(g);
    }
  } else if (behavior == "mergedwithnext") {
    bool pending = false;
    for (auto& g : segs) {
      if (pending) {
        merged.back().e = g.e;
        merged.back().match = g.match;
        pending = g.match;
        continue;
      }
      merged.push_back(g);
      pending = g.match;
    }
  } else if (behavior == "contiguous") {
    for (auto& g : segs) {
      if (g.match && !merged.empty() && merged.back().match)
        merged.back().e = g.e;
      else
        merged.push_back(g);
    }
  } else {
    throw Error("tokenizer.json: Split behavior '" + behavior + "' is not supported");
  }
  for (auto& g : merged)
    if (g.e > g.b) out.push_back(s.substr(g.b, g.e - g.b));
  return out;
}
// A step list from a tokenizer.json object: a "Sequence" (its items under list_key) is flattened,
// anything else is one step made by `one`.
template <class Step, class One>
std::vector<Step> parse_steps(const json& j, const char* list_key, One one) {
  std::vector<Step> steps;
  if (j.is_null()) return steps;
  const std::string type = j.at("type").get<std::string>();
  if (type != "Sequence") {
    steps.push_back(one(j, type));
    return steps;
  }
  for (auto& n : j.at(list_key)) {
    auto sub = parse_steps<Step>(n, list_key, one);
    steps.insert(steps.end(), sub.begin(), sub.end());
  }
  return steps;
}
}  // namespace

Pattern Pattern::from_json(const json& j, const char* where) {
  Pattern p;
  if (j.contains("String"))
    p.literal = j["String"].get<std::string>();
  else if (j.contains("Regex"))
    p.regex = std::make_shared<Regex>(j["Regex"].get<std::string>());
  else
    throw Error(std::string("tokenizer.json: ") + where + " pattern needs String or Regex");
  return p;
}

std::vector<std::pair<size_t, size_t>> Pattern::find_all(std::string_view s) const {
  if (regex) return regex->find_all(s);
  std::vector<std::pair<size_t, size_t>> out;
  if (literal.empty()) return out;
  for (size_t i = s.find(literal); i != std::string_view::npos;
       i = s.find(literal, i + literal.size()))
    out.emplace_back(i, i + literal.size());
  return out;
}

std::string Pattern::replace_all(std::string_view s, const std::string& with) const {
  std::string out;
  size_t pos = 0;
  for (auto [b, e] : find_all(s)) {
    out.append(s.substr(pos, b - pos));
    out += with;
    pos = e;
  }
  out.append(s.substr(pos));
  return out;
}

// ---- normalizers ------------------------------------------------------------------------------

std::vector<NormalizerStep> parse_normalizer(const json& j) {
  return parse_steps<NormalizerStep>(j, "normalizers", [](const json& j, const std::string& type) {
    NormalizerStep s;
    s.type = type;
    if (type == "Prepend")
      s.text = j.at("prepend").get<std::string>();
    else if (type == "Replace")
      s.pattern = Pattern::from_json(j.at("pattern"), "Replace"),
      s.text = j.at("content").get<std::string>();
    else if (type == "Strip")
      s.left = j.value("strip_left", true), s.right = j.value("strip_right", true);
    else if (type != "NFC" && type != "NFD" && type != "NFKC" && type != "NFKD" &&
             type != "Lowercase")
      throw Error("tokenizer.json: normalizer '" + type + "' is not supported");
    return s;
  });
}

std::string normalize(const std::vector<NormalizerStep>& steps, std::string s) {
  for (auto& st : steps) {
    if (st.type == "NFC")
      s = normalize_unicode(s, NormalForm::NFC);
    else if (st.type == "NFD")
      s = normalize_unicode(s, NormalForm::NFD);
    else if (st.type == "NFKC")
      s = normalize_unicode(s, NormalForm::NFKC);
    else if (st.type == "NFKD")
      s = normalize_unicode(s, NormalForm::NFKD);
    else if (st.type == "Lowercase")
      s = to_lower(s);
    else if (st.type == "Prepend")
      s = s.empty() ? s : st.text + s;
    else if (st.type == "Replace")
      s = st.pattern.replace_all(s, st.text);
    else if (st.type == "Strip") {
      size_t b = 0, e = s.size();
      if (st.left)
        while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
      if (st.right)
        while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
      s = s.substr(b, e - b);
    }
  }
  return s;
}

// ---- pre-tokenizers ---------------------------------------------------------------------------

std::vector<PreTokenizerStep> parse_pre_tokenizer(const json& j) {
  return parse_steps<PreTokenizerStep>(
      j, "pretokenizers", [](const json& j, const std::string& type) {
        PreTokenizerStep s;
        s.type = type;
        if (type == "Split") {
          s.pattern = Pattern::from_json(j.at("pattern"), "Split");
          s.behavior = lower_ascii(j.at("behavior").get<std::string>());
          s.invert = j.value("invert", false);
        } else if (type == "ByteLevel") {
          s.add_prefix_space = j.value("add_prefix_space", true);
          if (j.value("use_regex", true)) s.regex = std::make_shared<Regex>(kGpt2Split);
        } else if (type == "Metaspace") {
          s.replacement = j.value("replacement", std::string("\xE2\x96\x81"));
          s.prepend_scheme =
              j.value("prepend_scheme",
                      std::string(j.value("add_prefix_space", true) ? "always" : "never"));
          s.split = j.value("split", true);
        } else if (type == "Digits") {
          s.individual_digits = j.value("individual_digits", false);
          s.regex = std::make_shared<Regex>(s.individual_digits ? "\\p{Nd}" : "\\p{Nd}+");
        } else if (type == "Whitespace") {
          s.regex = std::make_shared<Regex>("\\w+|[^\\w\\s]+");
        } else if (type != "WhitespaceSplit") {
          throw Error("tokenizer.json: pre_tokenizer '" + type + "' is not supported");
        }
        return s;
      });
}

std::vector<std::string> pre_tokenize(const std::vector<PreTokenizerStep>& steps,
                                      const std::string& text, bool first_section) {
  std::vector<std::string> parts{text};
  for (auto& st : steps) {
    std::vector<std::string> next;
    for (size_t pi = 0; pi < parts.size(); ++pi) {
      const std::string& p = parts[pi];
      if (st.type == "Split") {
        auto v = split_by(st.pattern, p, st.behavior, st.invert);
        next.insert(next.end(), v.begin(), v.end());
      } else if (st.type == "ByteLevel") {
        std::string s = st.add_prefix_space && !p.empty() && p[0] != ' ' ? " " + p : p;
        std::vector<std::string> words;
        if (st.regex) {
          for (auto [b, e] : st.regex->find_all(s)) words.push_back(s.substr(b, e - b));
        } else {
          words.push_back(s);
        }
        for (auto& w : words) {
          std::string m;
          for (unsigned char c : w) m += byte_to_unicode(c);
          next.push_back(m);
        }
      } else if (st.type == "Metaspace") {
        std::string s = Pattern::of_literal(" ").replace_all(p, st.replacement);
        const bool prepend = st.prepend_scheme == "always" ||
                             (st.prepend_scheme == "first" && first_section && pi == 0);
        if (prepend && s.compare(0, st.replacement.size(), st.replacement) != 0)
          s = st.replacement + s;
        if (st.split) {
          auto v = split_by(Pattern::of_literal(st.replacement), s, "mergedwithnext", false);
          next.insert(next.end(), v.begin(), v.end());
        } else {
          next.push_back(s);
        }
      } else if (st.type == "Digits") {
        Pattern d;
        d.regex = st.regex;
        auto v = split_by(d, p, "isolated", false);
        next.insert(next.end(), v.begin(), v.end());
      } else if (st.type == "Whitespace") {
        for (auto [b, e] : st.regex->find_all(p)) next.push_back(p.substr(b, e - b));
      } else if (st.type == "WhitespaceSplit") {
        std::string cur;
        for (auto& ch : utf8_chars(p)) {
          if (is_space_char(ch)) {
            if (!cur.empty()) next.push_back(cur);
            cur.clear();
          } else {
            cur += ch;
          }
        }
        if (!cur.empty()) next.push_back(cur);
      }
    }
    parts.swap(next);
  }
  return parts;
}

// ---- decoders ---------------------------------------------------------------------------------

std::vector<DecoderStep> parse_decoder(const json& j) {
  return parse_steps<DecoderStep>(j, "decoders", [](const json& j, const std::string& type) {
    DecoderStep s;
    s.type = type;
    if (type == "Replace") {
      s.pattern = Pattern::from_json(j.at("pattern"), "Replace");
      s.content = j.at("content").get<std::string>();
    } else if (type == "Strip") {
      s.content = j.at("content").get<std::string>();
      s.start = j.value("start", 0);
      s.stop = j.value("stop", 0);
    } else if (type == "Metaspace") {
      s.content = j.value("replacement", std::string("\xE2\x96\x81"));
      s.prepend =
          j.value("prepend_scheme",
                  std::string(j.value("add_prefix_space", true) ? "always" : "never")) != "never";
    } else if (type != "ByteLevel" && type != "ByteFallback" && type != "Fuse") {
      throw Error("tokenizer.json: decoder '" + type + "' is not supported");
    }
    return s;
  });
}

std::vector<std::string> run_decoders(const std::vector<DecoderStep>& steps,
                                      std::vector<std::string> toks) {
  for (auto& st : steps) {
    std::vector<std::string> out;
    if (st.type == "ByteLevel") {
      std::string bytes;
      for (auto& t : toks) {
        std::string b;
        bool ok = true;
        for (auto& ch : utf8_chars(t)) {
          const int byte = unicode_to_byte(utf8_codepoint(ch));
          if (byte < 0) {
            ok = false;
            break;
          }
          b += char(byte);
        }
        bytes += ok ? b : t;
      }
      out.push_back(bytes);
    } else if (st.type == "Replace") {
      for (auto& t : toks) out.push_back(st.pattern.replace_all(t, st.content));
    } else if (st.type == "ByteFallback") {
      std::string pending;
      size_t count = 0;
      auto flush = [&] {
        if (!count) return;
        if (utf8_valid(pending))
          out.push_back(pending);
        else
          for (size_t i = 0; i < count; ++i) out.push_back("\xEF\xBF\xBD");
        pending.clear();
        count = 0;
      };
      for (auto& t : toks) {
        if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
            std::isxdigit(static_cast<unsigned char>(t[3])) &&
            std::isxdigit(static_cast<unsigned char>(t[4]))) {
          pending += char(std::stoi(t.substr(3, 2), nullptr, 16));
          ++count;
        } else {
          flush();
          out.push_back(t);
        }
      }
      flush();
    } else if (st.type == "Fuse") {
      std::string all;
      for (auto& t : toks) all += t;
      out.push_back(all);
    } else if (st.type == "Strip") {
      for (auto& t : toks) {
        std::vector<std::string> ch = utf8_chars(t);
        size_t b = 0, e = ch.size();
        for (int i = 0; i < st.start && b < e && ch[b] == st.content; ++i) ++b;
        for (int i = 0; i < st.stop && e > b && ch[e - 1] == st.content; ++i) --e;
        std::string s;
        for (size_t i = b; i < e; ++i) s += ch[i];
        out.push_back(s);
      }
    } else if (st.type == "Metaspace") {
      const Pattern rep = Pattern::of_literal(st.content);
      for (size_t i = 0; i < toks.size(); ++i) {
        std::string s = rep.replace_all(toks[i], " ");
        if (i == 0 && st.prepend && !s.empty() && s[0] == ' ') s.erase(0, 1);
        out.push_back(s);
      }
    }
    toks.swap(out);
  }
  return toks;
}

}  // namespace forge::data
