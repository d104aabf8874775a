// UTF-8, byte-level alphabet, ICU normalisation and PCRE2 regexes (see unicode.h).
#include "data/unicode.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <array>

#include "core/error.h"

namespace forge::data {

int utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 0x6) return 2;
  if ((c >> 4) == 0xE) return 3;
  if ((c >> 3) == 0x1E) return 4;
  return 1;
}

std::string utf8_encode(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xF0 | (cp >> 18));
    s += char(0x80 | ((cp >> 12) & 0x3F));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

namespace {
// Decodes one code point at s[i]; returns its length, or 0 if the sequence is invalid.
int decode_at(std::string_view s, size_t i, uint32_t& cp) {
  const unsigned char c = s[i];
  const int n = utf8_len(c);
  if (n == 1) {
    cp = c;
    return c < 0x80 ? 1 : 0;
  }
  if (i + n > s.size()) return 0;
  cp = c & (0x7F >> n);
  for (int k = 1; k < n; ++k) {
    const unsigned char d = s[i + k];
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3F);
  }
  static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}
}  // namespace

std::vector<std::string> utf8_chars(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    int n = decode_at(s, i, cp);
    if (n == 0) n = 1;
    out.emplace_back(s.substr(i, n));
    i += n;
  }
  return out;
}

uint32_t utf8_codepoint(std::string_view ch) {
  uint32_t cp = 0xFFFD;
  return !ch.empty() && decode_at(ch, 0, cp) > 0 ? cp : 0xFFFD;
}

bool utf8_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    int n = decode_at(s, i, cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

size_t utf8_incomplete_tail(std::string_view s) {
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const unsigned char c = s[s.size() - back];
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const int n = utf8_len(c);
    return n > int(back) && c >= 0xC0 ? back : 0;
  }
  return 0;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    int n = decode_at(s, i, cp);
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    // Skip the maximal invalid prefix (a lead byte and the continuation bytes it claims).
    size_t j = i + 1;
    const int want = utf8_len(static_cast<unsigned char>(s[i]));
    while (j < s.size() && j < i + want && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) ++j;
    out += "\xEF\xBF\xBD";
    i = j;
  }
  return out;
}

namespace {
struct ByteTables {
  std::array<std::string, 256> to_unicode;
  std::array<int, 324> to_byte;  // code points used are below 324
  ByteTables() {
    to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + n++);
      to_unicode[b] = utf8_encode(cp);
      to_byte[cp] = b;
    }
  }
};
const ByteTables& byte_tables() {
  static const ByteTables t;
  return t;
}
}  // namespace

const std::string& byte_to_unicode(unsigned char b) { return byte_tables().to_unicode[b]; }

int unicode_to_byte(uint32_t cp) { return cp < 324 ? byte_tables().to_byte[cp] : -1; }

std::string normalize_unicode(std::string_view s, NormalForm form) {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalForm::NFC: n = icu::Normalizer2::getNFCInstance(err); break;
    case NormalForm::NFD: n = icu::Normalizer2::getNFDInstance(err); break;
    case NormalForm::NFKC: n = icu::Normalizer2::getNFKCInstance(err); break;
    case NormalForm::NFKD: n = icu::Normalizer2::getNFKDInstance(err); break;
  }
  FORGE_CHECK(U_SUCCESS(err), "ICU normaliser unavailable: ", u_errorName(err));
  icu::UnicodeString in = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), int32_t(s.size())));
  icu::UnicodeString out = n->normalize(in, err);
  FORGE_CHECK(U_SUCCESS(err), "Unicode normalisation failed: ", u_errorName(err));
  std::string r;
  out.toUTF8String(r);
  return r;
}

std::string to_lower(std::string_view s) {
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), int32_t(s.size())));
  u.toLower();
  std::string r;
  u.toUTF8String(r);
  return r;
}

Regex::Regex(const std::string& pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                        &off, nullptr);
  if (!code_) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error("regex '" + pattern + "' does not compile at offset " + std::to_string(off) + ": " +
                reinterpret_cast<char*>(msg));
  }
  pcre2_jit_compile(static_cast<pcre2_code*>(code_), PCRE2_JIT_COMPLETE);  // best effort
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view s) const {
  std::vector<std::pair<size_t, size_t>> out;
  auto* code = static_cast<pcre2_code*>(code_);
  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> holder(
      pcre2_match_data_create_from_pattern(code, nullptr), pcre2_match_data_free);
  pcre2_match_data* md = holder.get();
  size_t start = 0;
  while (start <= s.size()) {
    int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t b = ov[0], e = ov[1];
    if (e == b) {  // empty match: step one code point
      start = e + (e < s.size() ? utf8_len(static_cast<unsigned char>(s[e])) : 1);
      continue;
    }
    out.emplace_back(b, e);
    start = e;
  }
  return out;
}

}  // namespace forge::data
