// The serving engine on a tiny random model: batched outputs equal one-at-a-time outputs (also
// under preemption), the paged path equals contiguous generation, prefix caching skips work,
// seeded sampling ignores batch composition, stop strings and multi-LoRA.
#include <gtest/gtest.h>

#include <latch>
#include <nlohmann/json.hpp>
#include <map>
#include <thread>

#include "core/autograd.h"
#include "infer/engine.h"
#include "infer/generate.h"
#include "infer/json_matcher.h"
#include "infer/stop_strings.h"
#include "infer/tool_parser.h"
#include "kernels/cpu/packed_gemm.h"
#include "models/presets.h"
#include "models/pretrained.h"
#include "peft/adapter_io.h"
#include "peft/lora.h"
#include "tests/support/test_util.h"

namespace forge::infer {
namespace {

struct Result {
  std::vector<int64_t> tokens;
  std::string text, finish;
  std::vector<TokenLogprob> logprobs;
  int64_t cached = 0;
};

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::fresh_temp_dir("forge_engine_model");
    testing::make_tiny_model_dir(dir_, 7, 0.2);
  }
  std::unique_ptr<Engine> make_engine(EngineConfig cfg = {}, DType weights = DType::F32) {
    model_ = models::load_model(dir_, weights);
    tok_ = data::Tokenizer::from_dir(dir_);
    if (cfg.max_model_len == 0) cfg.max_model_len = 256;
    return std::make_unique<Engine>(model_, tok_, models::stop_token_ids(dir_, model_->config()), cfg);
  }
  // Adds every request, runs the engine to completion, returns results in request order.
  static std::vector<Result> run(Engine& e, const std::vector<Request>& reqs) {
    std::vector<Result> out(reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i)
      e.add(reqs[i], [&out, i](const Event& ev) {
        Result& r = out[i];
        r.tokens.insert(r.tokens.end(), ev.tokens.begin(), ev.tokens.end());
        r.logprobs.insert(r.logprobs.end(), ev.logprobs.begin(), ev.logprobs.end());
        r.text += ev.text;
        if (ev.finished) {
          r.finish = ev.finish_reason;
          r.cached = ev.cached_tokens;
        }
      });
    e.run_until_idle();
    return out;
  }
  std::vector<int64_t> prompt(int i, int len) const {
    std::vector<int64_t> p;
    const int64_t V = model_->config().vocab_size;
    for (int t = 0; t < len; ++t) p.push_back((i * 131 + t * 17 + t * t) % (V - 1) + 1);
    return p;
  }
  Request greedy(int i, int len, int max_tokens) const {
    Request r;
    r.prompt = prompt(i, len);
    r.sampling.temperature = 0;
    r.max_tokens = max_tokens;
    r.ignore_eos = true;
    return r;
  }
  // Request i sampled at temperature 1 with its own seed (guided-output tests draw many of these).
  Request sampled(int i, int max_tokens, uint64_t seed) const {
    Request r = greedy(i, 6, max_tokens);
    r.sampling.temperature = 1.0;
    r.seed = seed;
    return r;
  }
  // Raises the logits of these texts' tokens by 4, so a random model closes guided JSON sooner.
  void nudge(Request& r, std::initializer_list<const char*> texts) const {
    for (const char* t : texts)
      if (int64_t id = tok_->token_to_id(t); id >= 0) r.sampling.logit_bias.emplace_back(id, 4.0f);
  }
  // The tokens contiguous generation (infer::generate over a KV cache) gives a greedy request.
  static std::vector<int64_t> contiguous(models::CausalLM& m, const Request& r) {
    GenerateOptions opt;
    opt.max_new_tokens = r.max_tokens;
    opt.sampling.temperature = 0;
    return generate(m, r.prompt, opt).tokens;
  }
  // Runs six greedy requests of 20-65 prompt tokens through engines that chunk the prefills, hit
  // the prefix cache and (with 9 blocks) preempt, and checks each against contiguous generation.
  void expect_engine_matches_generate(const std::shared_ptr<models::CausalLM>& m) {
    std::vector<Request> reqs;
    for (int i = 0; i < 6; ++i) reqs.push_back(greedy(i, 20 + 9 * i, 24));
    std::vector<std::vector<int64_t>> want;
    for (auto& r : reqs) want.push_back(contiguous(*m, r));
    const int64_t block_bytes = 16 * kv_bytes_per_token(m->config(), DType::F32);
    for (int64_t cache_blocks : {int64_t(64), int64_t(9)}) {  // 9 blocks: too few for all six at once
      EngineConfig cfg;
      cfg.kv_cache_dtype = DType::F32;
      cfg.max_model_len = 128;
      cfg.max_num_batched_tokens = 40;  // prompts of up to 65 tokens prefill in chunks
      cfg.kv_cache_bytes = cache_blocks * block_bytes;
      Engine e(m, tok_, {}, cfg);
      auto got = run(e, reqs);
      for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(got[i].tokens, want[i]) << "request " << i;
      if (cache_blocks == 9) {
        EXPECT_GT(e.counters().preemptions, 0);
      }
      auto again = run(e, {reqs[5]});  // its prompt's blocks come from the prefix cache
      if (cache_blocks == 64) {  // (in 9 blocks, a model whose every layer slides frees and reuses them)
        EXPECT_GE(again[0].cached, 48);
      }
      EXPECT_EQ(again[0].tokens, want[5]);
    }
  }
  static std::string dir_;
  std::shared_ptr<models::CausalLM> model_;
  std::shared_ptr<data::Tokenizer> tok_;
};
std::string EngineTest::dir_;

TEST_F(EngineTest, PagedGreedyEqualsContiguousGeneration) {
  EngineConfig cfg;
  cfg.kv_cache_dtype = DType::F32;  // the contiguous path keeps the f32 model's keys unrounded
  auto e = make_engine(cfg);
  Request r = greedy(3, 37, 20);
  auto got = run(*e, {r});
  EXPECT_EQ(got[0].tokens, contiguous(*model_, r));
  EXPECT_EQ(got[0].finish, "length");
}

TEST_F(EngineTest, Bf16CacheStaysCloseToTheF32Cache) {
  // The default bf16 cache rounds keys and values; the next-token distribution must barely move.
  EngineConfig f32;
  f32.kv_cache_dtype = DType::F32;
  auto ef = make_engine(f32), eb = make_engine();
  Request r = greedy(4, 60, 1);
  r.logprobs = 5;
  auto a = run(*ef, {r})[0];
  auto b = run(*eb, {r})[0];
  ASSERT_EQ(a.logprobs.size(), 1u);
  ASSERT_EQ(b.logprobs.size(), 1u);
  const auto& la = a.logprobs[0].top;
  const auto& lb = b.logprobs[0].top;
  ASSERT_EQ(la.size(), lb.size());
  bool differs = false;
  for (size_t i = 0; i < la.size(); ++i) {
    EXPECT_EQ(la[i].first, lb[i].first) << "rank " << i;
    EXPECT_NEAR(la[i].second, lb[i].second, 0.02) << "rank " << i;
    differs |= la[i].second != lb[i].second;
  }
  EXPECT_TRUE(differs) << "the bf16 cache should round something";
}

TEST_F(EngineTest, ConcurrentRequestsEqualOneAtATimeAlsoUnderPreemption) {
  auto solo_engine = make_engine();
  std::vector<Request> reqs;
  for (int i = 0; i < 32; ++i) reqs.push_back(greedy(i, 5 + (i * 7) % 40, 8 + i % 9));
  std::vector<Result> solo;
  for (auto& r : reqs) solo.push_back(run(*solo_engine, {r})[0]);
  {
    EngineConfig cfg;
    cfg.max_num_batched_tokens = 64;  // forces chunked prefill
    auto e = make_engine(cfg);
    auto batched = run(*e, reqs);
    for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(batched[i].tokens, solo[i].tokens) << "request " << i;
    EXPECT_GT(e->counters().steps, 0);
  }
  {
    EngineConfig cfg;
    const int64_t block_bytes = 16 * kv_bytes_per_token(model_->config(), cfg.kv_cache_dtype);
    cfg.max_model_len = 64;
    cfg.kv_cache_bytes = 12 * block_bytes;  // 192 tokens for 32 sequences of up to 56
    auto e = make_engine(cfg);
    auto batched = run(*e, reqs);
    for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(batched[i].tokens, solo[i].tokens) << "request " << i;
    EXPECT_GT(e->counters().preemptions, 0) << "the KV budget was meant to force preemption";
  }
}

// bf16 weights decode on their packed bf16 twins (steps of up to 64 rows): each row's sums are
// its own, so a batch of 16 gives each request the tokens it gets alone.
TEST_F(EngineTest, Bf16WeightsConcurrentRequestsEqualOneAtATime) {
  EngineConfig cfg;
  cfg.max_num_batched_tokens = 64;  // every step within the packed path's 64 rows
  auto solo_engine = make_engine(cfg, DType::BF16);
  std::vector<Request> reqs;
  for (int i = 0; i < 16; ++i) reqs.push_back(greedy(i, 5 + (i * 7) % 40, 8 + i % 9));
  std::vector<Result> solo;
  for (auto& r : reqs) solo.push_back(run(*solo_engine, {r})[0]);
  auto e = make_engine(cfg, DType::BF16);
  auto batched = run(*e, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(batched[i].tokens, solo[i].tokens) << "request " << i;
  int twins = 0;  // the engine gave the model its decode twins, in bf16
  for (auto& [name, m] : model_->named_modules())
    if (auto lin = std::dynamic_pointer_cast<nn::Linear>(m); lin && lin->packed.defined())
      twins += lin->packed.dtype() == DType::BF16;
  EXPECT_EQ(twins > 0, cpu::packed_bf16_fast());
}

// forge serve runs the engine on the thread that loaded the model (see Engine::run): requests come
// from other threads, every event is delivered on the running thread, and stop() from another
// thread ends run() after the work in hand.
TEST_F(EngineTest, RunServesOnTheCallingThreadUntilStopped) {
  auto ref_engine = make_engine();
  std::vector<Request> reqs;
  for (int i = 0; i < 8; ++i) reqs.push_back(greedy(i, 6 + i, 5 + i));
  const std::vector<Result> want = run(*ref_engine, reqs);

  auto e = make_engine();
  std::vector<std::vector<int64_t>> got(reqs.size());
  std::latch finished(std::ptrdiff_t(reqs.size()));
  bool off_thread_event = false;
  const std::thread::id runner = std::this_thread::get_id();
  std::thread client([&] {
    for (size_t i = 0; i < reqs.size(); ++i)
      e->add(reqs[i], [&, i](const Event& ev) {
        if (std::this_thread::get_id() != runner) off_thread_event = true;
        got[i].insert(got[i].end(), ev.tokens.begin(), ev.tokens.end());
        if (ev.finished) finished.count_down();
      });
    finished.wait();
    e->stop();
  });
  e->run();  // returns once the client has called stop()
  client.join();
  EXPECT_FALSE(off_thread_event);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(got[i], want[i].tokens) << "request " << i;
  const EngineCounters c = e->counters();
  EXPECT_GT(c.steps, 0);
  EXPECT_GT(c.step_seconds, 0.0);

  // stop() before run(): run() returns at once, and a request still queued is aborted, not lost.
  auto idle = make_engine();
  std::string finish;
  idle->add(reqs[0], [&](const Event& ev) {
    if (ev.finished) finish = ev.finish_reason;
  });
  idle->stop();
  idle->run();
  EXPECT_EQ(finish, "abort");
}

TEST_F(EngineTest, RepeatedPromptPrefillsFewerTokens) {
  auto e = make_engine();
  Request r = greedy(5, 100, 4);
  auto first = run(*e, {r});
  const int64_t prefilled_once = e->counters().prefill_tokens;
  EXPECT_EQ(prefilled_once, 100);
  auto second = run(*e, {r});
  const int64_t prefilled_twice = e->counters().prefill_tokens - prefilled_once;
  EXPECT_EQ(second[0].cached, 96) << "6 full blocks of 16 come from the cache";
  EXPECT_EQ(prefilled_twice, 4);
  EXPECT_EQ(second[0].tokens, first[0].tokens);
  EXPECT_EQ(e->counters().prefix_hit_tokens, 96);
}

TEST_F(EngineTest, SeededSamplingIgnoresTheRestOfTheBatch) {
  auto e = make_engine();
  Request r = greedy(9, 12, 24);
  r.sampling.temperature = 1.0;
  r.sampling.top_p = 0.9;
  r.sampling.top_k = 50;
  r.seed = 1234;
  auto alone = run(*e, {r});
  std::vector<Request> crowd;
  for (int i = 0; i < 7; ++i) {
    Request o = greedy(20 + i, 3 + i * 5, 30);
    o.sampling.temperature = 0.8;
    crowd.push_back(o);
  }
  crowd.insert(crowd.begin() + 3, r);
  auto together = run(*e, crowd);
  EXPECT_EQ(together[3].tokens, alone[0].tokens);
  Request other = r;
  other.seed = 99;
  EXPECT_NE(run(*e, {other})[0].tokens, alone[0].tokens) << "a different seed should draw differently";
}

TEST_F(EngineTest, StopStringsEndTheTextAndAreNeverEmitted) {
  auto e = make_engine();
  Request r = greedy(11, 9, 40);
  auto full = run(*e, {r})[0];
  ASSERT_GE(full.text.size(), 12u) << full.text;
  // A stop string from the middle of the text (it may span tokens).
  const std::string stop = full.text.substr(6, 4);
  r.stop = {stop, "never-appears"};
  auto cut = run(*e, {r})[0];
  EXPECT_EQ(cut.finish, "stop");
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(cut.text.find(stop), std::string::npos);
}

TEST_F(EngineTest, MinTokensHoldsBackStopTokensAndLogitBiasSteersTheDraw) {
  auto e = make_engine();
  const Request r = greedy(13, 10, 12);
  const auto full = run(*e, {r})[0];
  ASSERT_EQ(full.tokens.size(), 12u);
  // The first greedy token as a stop id ends the request at once; min_tokens 5 forbids it for
  // the first five draws (the model then takes its next best), not after.
  Request stop = r;
  stop.stop_token_ids = {full.tokens[0]};
  const auto early = run(*e, {stop})[0];
  EXPECT_EQ(early.tokens, std::vector<int64_t>{full.tokens[0]});
  EXPECT_EQ(early.finish, "stop");
  stop.min_tokens = 5;
  const auto held = run(*e, {stop})[0];
  ASSERT_GE(held.tokens.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_NE(held.tokens[i], full.tokens[0]) << i;
  if (held.finish == "stop") {
    EXPECT_EQ(held.tokens.back(), full.tokens[0]);
  }
  // A stop string of the first token's text ends the request at its first token; with min_tokens 5
  // it cannot end it before the fifth.
  Request stop_text = r;
  stop_text.stop = {full.text.substr(0, 1)};
  ASSERT_FALSE(stop_text.stop[0].empty());
  EXPECT_LE(run(*e, {stop_text})[0].tokens.size(), 1u);
  stop_text.min_tokens = 5;
  const auto late = run(*e, {stop_text})[0];
  EXPECT_GE(late.tokens.size(), 5u);
  EXPECT_EQ(late.text.substr(0, 1), stop_text.stop[0]) << "the stop string before min_tokens stays text";
  // logit_bias: -100 bans the greedy choice, +100 forces another token everywhere.
  Request ban = r;
  ban.sampling.logit_bias = {{full.tokens[0], -100.0f}};
  EXPECT_NE(run(*e, {ban})[0].tokens[0], full.tokens[0]);
  Request force = r;
  const int64_t forced = (full.tokens[0] + 7) % model_->config().vocab_size;
  force.sampling.logit_bias = {{forced, 100.0f}};
  EXPECT_EQ(run(*e, {force})[0].tokens, std::vector<int64_t>(12, forced));
  // Checked before anything runs.
  Request bad = r;
  bad.min_tokens = 13;
  EXPECT_NE(e->check(bad).find("min_tokens"), std::string::npos);
  bad = r;
  bad.sampling.logit_bias = {{model_->config().vocab_size, 1.0f}};
  EXPECT_NE(e->check(bad).find("logit_bias"), std::string::npos);
}

// JSON mode on a random model: whatever it draws, every output is a JSON object's prefix; one
// that ends "stop" closed its object and parses; the same without JSON mode is not JSON at all.
TEST_F(EngineTest, JsonModeOutputsAreJsonObjects) {
  auto e = make_engine();
  std::vector<Request> reqs;
  for (int i = 0; i < 12; ++i) {
    Request r = sampled(i, 96, uint64_t(100 + i));
    r.json_schema = JsonSchema::any_object();
    // Nudges toward the structural tokens so that some objects close within 96 tokens.
    nudge(r, {"}", "\"", ":", "1"});
    reqs.push_back(r);
  }
  int closed = 0;
  for (const Result& res : run(*e, reqs)) {
    JsonMatcher m(JsonSchema::any_object());
    EXPECT_TRUE(m.feed(res.text)) << res.text;
    if (res.finish == "stop") {
      ++closed;
      EXPECT_TRUE(m.done()) << res.text;
      EXPECT_NO_THROW(EXPECT_TRUE(nlohmann::json::parse(res.text).is_object())) << res.text;
    } else {
      EXPECT_EQ(res.finish, "length");
      EXPECT_FALSE(m.done()) << res.text;
    }
  }
  EXPECT_GE(closed, 3) << "of 12 requests";
  Request plain = reqs[0];
  plain.json_schema = nullptr;
  JsonMatcher m(JsonSchema::any_object());
  EXPECT_FALSE(m.feed(run(*e, {plain})[0].text)) << "a random model should not write JSON unasked";
}

// Structured outputs on a random model: every finished output parses and has the schema's keys,
// types and lengths, whatever the model would have drawn.
TEST_F(EngineTest, JsonSchemaOutputsFollowTheSchema) {
  auto e = make_engine();
  auto schema = JsonSchema::compile(nlohmann::json::parse(R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 4}, "n": {"type": "integer"}, "ok": {"type": "boolean"},
      "tag": {"enum": ["x", "yz"]}}, "required": ["name", "n", "ok", "tag"], "additionalProperties": false})"));
  std::vector<Request> reqs;
  for (int i = 0; i < 10; ++i) {
    Request r = sampled(i, 128, uint64_t(200 + i));
    r.json_schema = schema;
    nudge(r, {"}", "\"", ","});
    reqs.push_back(r);
  }
  int closed = 0;
  for (const Result& res : run(*e, reqs)) {
    if (res.finish != "stop") continue;
    ++closed;
    const nlohmann::json j = nlohmann::json::parse(res.text);
    ASSERT_EQ(j.size(), 4u) << res.text;
    ASSERT_TRUE(j["name"].is_string()) << res.text;
    const std::string name = j["name"].get<std::string>();
    EXPECT_LE(std::count_if(name.begin(), name.end(), [](char c) { return (c & 0xc0) != 0x80; }), 4) << res.text;
    EXPECT_TRUE(j["n"].is_number_integer()) << res.text;
    EXPECT_TRUE(j["ok"].is_boolean()) << res.text;
    EXPECT_TRUE(j["tag"] == "x" || j["tag"] == "yz") << res.text;
  }
  EXPECT_GE(closed, 5) << "of 10 requests";
}

// tool_choice "auto" in Llama 3's format on a random model: pushed to open its reply with '{', it
// writes a whole call to a given function with valid arguments and the request ends there; left
// alone it writes the same text as without tools (nothing is masked before a call opens).
TEST_F(EngineTest, AutoToolCallsAreHeldOnceOpened) {
  auto e = make_engine();
  auto call = JsonSchema::compile(nlohmann::json::parse(R"({"anyOf": [
      {"type": "object", "properties": {"name": {"const": "add"}, "parameters": {"type": "object",
         "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"],
         "additionalProperties": false}}, "required": ["name", "parameters"], "additionalProperties": false},
      {"type": "object", "properties": {"name": {"const": "now"}, "parameters": {"type": "object", "properties": {}}},
       "required": ["name", "parameters"], "additionalProperties": false}]})"));
  const auto tag = tool_tag(ToolFormat::Llama3Json, call, 0);
  const int64_t brace = tok_->token_to_id("{");
  ASSERT_GE(brace, 0);
  std::vector<Request> reqs;
  for (int i = 0; i < 8; ++i) {
    Request r = sampled(i, 200, uint64_t(300 + i));
    r.tool_tag = tag;
    r.sampling.logit_bias = {{brace, 30.0f}};
    nudge(r, {"}", "\"", ","});
    reqs.push_back(r);
  }
  int called = 0;
  for (const Result& res : run(*e, reqs)) {
    if (res.finish != "stop") continue;  // a call cut by max_tokens is text
    ++called;
    ToolCallParser p(ToolFormat::Llama3Json, {"add", "now"});
    std::string content;
    std::vector<ParsedCall> calls;
    p.push(res.text, content, calls);
    p.finish(content, calls);
    ASSERT_EQ(calls.size(), 1u) << res.text;
    EXPECT_EQ(content, "") << res.text;
    const nlohmann::json args = nlohmann::json::parse(calls[0].arguments);
    if (calls[0].name == "add") {
      EXPECT_TRUE(args.size() == 2 && args["a"].is_number_integer() && args["b"].is_number_integer()) << res.text;
    } else {
      EXPECT_EQ(args, nlohmann::json::object()) << res.text;
    }
  }
  EXPECT_GE(called, 5) << "of 8 requests";
  // Words: the same tokens as without a tag.
  Request words = greedy(3, 6, 24);
  Request tagged = words;
  tagged.tool_tag = tag;
  EXPECT_EQ(run(*e, {tagged})[0].tokens, run(*e, {words})[0].tokens);
}

TEST(StopMatcher, CatchesStopsSplitAcrossPiecesAndHoldsBackOnlyWhatItMust) {
  StopMatcher m({"</end>", "xyz"});
  bool hit = false;
  std::string out = m.push("hello </e", &hit);
  EXPECT_FALSE(hit);
  EXPECT_EQ(out, "hell");  // "o </e" could still start "</end>"
  out = m.push("nd> tail", &hit);
  EXPECT_TRUE(hit);
  EXPECT_EQ(out, "o ");
  StopMatcher plain;
  EXPECT_EQ(plain.push("abc", &hit), "abc");
  StopMatcher utf({"abcd"});
  EXPECT_EQ(utf.push("x\xC3\xA9", &hit), "") << "never split a UTF-8 character";
  EXPECT_EQ(utf.flush(""), "x\xC3\xA9");
}

// Before min_tokens no stop string counts (vLLM checks none); after, only one that ends in text
// pushed since, including one that began before.
TEST(StopMatcher, UnarmedTextStopsNothing) {
  bool hit = false;
  StopMatcher m({"ab"});
  EXPECT_EQ(m.push("xab", &hit, /*armed=*/false), "xa");
  EXPECT_FALSE(hit);
  EXPECT_EQ(m.push("cab", &hit), "bc");  // the old "ab" is text; the new one stops
  EXPECT_TRUE(hit);
  StopMatcher straddle({"ab"});
  EXPECT_EQ(straddle.push("xa", &hit, false), "x");
  EXPECT_EQ(straddle.push("b", &hit), "");
  EXPECT_TRUE(hit);
  StopMatcher never({"ab"});
  EXPECT_EQ(never.push("ab", &hit, false), "a");
  EXPECT_EQ(never.flush(""), "b");  // ends while unarmed text alone holds the stop string
}

TEST_F(EngineTest, LogprobsAreTheLogSoftmaxOfTheModel) {
  EngineConfig cfg;
  cfg.kv_cache_dtype = DType::F32;  // compared with the model's own f32 forward
  auto e = make_engine(cfg);
  Request r = greedy(2, 10, 3);
  r.logprobs = 3;
  auto res = run(*e, {r})[0];
  ASSERT_EQ(res.logprobs.size(), 3u);
  NoGradGuard ng;
  Tensor ids = Tensor::from_vector(r.prompt, {1, int64_t(r.prompt.size())});
  std::vector<float> logits = model_->forward(ids).narrow(1, ids.size(1) - 1, 1).to_float_vector();
  TokenLogprob want = token_logprob(logits.data(), int64_t(logits.size()), res.tokens[0], 3);
  EXPECT_NEAR(res.logprobs[0].logprob, want.logprob, 1e-4);
  ASSERT_EQ(res.logprobs[0].top.size(), 3u);
  EXPECT_EQ(res.logprobs[0].top[0].first, res.tokens[0]) << "greedy picks the likeliest";
  EXPECT_GE(res.logprobs[0].top[0].second, res.logprobs[0].top[1].second);
}

TEST_F(EngineTest, RejectsRequestsThatCannotRunAndCacheTooSmallForOneSequence) {
  auto e = make_engine();
  Request r = greedy(1, 250, 10);
  EXPECT_NE(e->check(r).find("maximum context length is 256"), std::string::npos) << e->check(r);
  r.prompt = {};
  EXPECT_NE(e->check(r), "");
  EngineConfig tiny;
  tiny.kv_cache_bytes = 1024;
  EXPECT_THROW(make_engine(tiny), Error);
}

// Sliding windows of 12 tokens, on every layer (Mistral) or on the first only (Qwen2's
// max_window_layers, Gemma's mixes), with prompts and outputs far longer than the window: the
// engine's paged, chunked, prefix-cached and preempted runs give what contiguous generation gives.
TEST_F(EngineTest, SlidingWindowsMatchContiguousGenerationChunkedCachedAndPreempted) {
  make_engine();  // loads tok_
  const std::vector<std::vector<std::string>> layer_types = {{"sliding_attention", "sliding_attention"},
                                                             {"sliding_attention", "full_attention"}};
  for (const auto& types : layer_types) {
    SCOPED_TRACE(types[1]);
    auto full = models::load_model(dir_);
    models::ModelConfig c = full->config();
    c.sliding_window = 12;
    c.layer_types = types;
    auto windowed = std::make_shared<models::CausalLM>(c);
    windowed->load_state_dict(full->state_dict());
    int differs = 0;
    for (int i = 0; i < 6; ++i) {
      const Request r = greedy(i, 20 + 9 * i, 24);
      differs += contiguous(*windowed, r) != contiguous(*full, r);
    }
    EXPECT_GT(differs, 0) << "the window should change some outputs";
    expect_engine_matches_generate(windowed);
  }
}

// On a model whose every layer slides (Mistral), a sequence keeps only the blocks its window still
// sees: 20 + 90 tokens with a window of 12 hold at most 3 blocks of 16 (7 without freeing), and
// the tokens are still contiguous generation's.
TEST_F(EngineTest, AllSlidingModelsFreeBlocksBehindTheWindow) {
  make_engine();  // loads tok_
  auto full = models::load_model(dir_);
  models::ModelConfig c = full->config();
  c.sliding_window = 12;
  c.layer_types = {"sliding_attention", "sliding_attention"};
  auto m = std::make_shared<models::CausalLM>(c);
  m->load_state_dict(full->state_dict());
  Request r = greedy(2, 20, 90);
  const std::vector<int64_t> want = contiguous(*m, r);
  EngineConfig cfg;
  cfg.kv_cache_dtype = DType::F32;
  cfg.max_model_len = 128;
  cfg.kv_cache_bytes = 32 * 16 * kv_bytes_per_token(c, DType::F32);  // 32 blocks
  Engine e(m, tok_, {}, cfg);
  double peak = 0;
  std::vector<int64_t> got;
  e.add(r, [&](const Event& ev) {
    got.insert(got.end(), ev.tokens.begin(), ev.tokens.end());
    peak = std::max(peak, e.kv_usage());
  });
  e.run_until_idle();
  EXPECT_EQ(got, want);
  EXPECT_GT(peak, 0.0);
  EXPECT_LE(peak * 32, 3.0 + 1e-9) << "blocks in use at the peak";
}

// Each architecture's options through the engine's paged attention as the contiguous path has
// them: Gemma 2 (soft-capped scores and logits, its query scale, windows of 12 on alternate
// layers), Gemma 3 (QK-norm, its sliding layers' own rope theta), Phi-3 (fused qkv_proj and
// gate_up_proj, RoPE on 12 of 16 dims, yarn's factor on cos and sin), SmolLM3 (layers without RoPE).
TEST_F(EngineTest, ArchitectureOptionsMatchContiguousGeneration) {
  make_engine();  // loads tok_
  for (const char* arch : {"gemma2", "gemma3_text", "phi3", "smollm3"}) {
    SCOPED_TRACE(arch);
    models::ModelConfig c = models::preset_config(arch, "tiny");
    c.num_hidden_layers = 3;
    c.sliding_window = 12;
    c.layer_types = {"sliding_attention", "full_attention", "sliding_attention"};
    if (c.attn_logit_softcapping > 0) {  // small enough to bite on a random model
      c.attn_logit_softcapping = 0.5;
      c.final_logit_softcapping = 2.0;
    }
    if (c.fused_qkv) {
      c.rope_scaling.type = "yarn";
      c.rope_scaling.factor = 4;
      c.rope_scaling.original_max_position_embeddings = 64;
    }
    if (!c.skip_rope.empty()) c.skip_rope = {false, true, false};
    auto m = std::make_shared<models::CausalLM>(c);
    m->init_weights(0.2, 5);
    expect_engine_matches_generate(m);
  }
}

TEST_F(EngineTest, MultiLoraBatchMatchesEachAdapterAlone) {
  // Two adapters with non-zero B, saved in PEFT layout.
  std::vector<std::string> adirs;
  for (int a = 0; a < 2; ++a) {
    auto m = models::load_model(dir_);
    peft::LoraConfig lc;
    lc.r = 4 + 4 * a;
    lc.target_modules = a == 0 ? std::vector<std::string>{"q_proj", "v_proj"} : std::vector<std::string>{"all-linear"};
    peft::LoraModel lm = peft::apply_lora(*m, lc, 5 + a);
    Generator g(77 + a);
    for (auto& [name, ad] : lm.adapters) {
      NoGradGuard ng;
      ad->B.copy_(mul(randn(ad->B.shape(), DType::F32, &g), 0.3));
    }
    adirs.push_back(testing::fresh_temp_dir("forge_engine_lora" + std::to_string(a)));
    peft::save_adapter(lm, adirs.back());
  }
  EngineConfig cfg;
  cfg.kv_cache_dtype = DType::F32;  // compared with the contiguous f32 path
  auto e = make_engine(cfg);
  ASSERT_EQ(e->add_adapter(adirs[0]), 1);
  ASSERT_EQ(e->add_adapter(adirs[1]), 2);
  std::vector<Request> reqs;
  for (int i = 0; i < 6; ++i) {
    Request r = greedy(i, 6 + i * 3, 10);
    r.adapter = i % 3;
    reqs.push_back(r);
  }
  auto mixed = run(*e, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto m = models::load_model(dir_);
    if (reqs[i].adapter > 0) peft::load_adapter(*m, adirs[size_t(reqs[i].adapter - 1)]);
    EXPECT_EQ(mixed[i].tokens, contiguous(*m, reqs[i])) << "request " << i << " adapter " << reqs[i].adapter;
  }
  EXPECT_NE(mixed[1].tokens, run(*e, {[&] { Request r = reqs[1]; r.adapter = 0; return r; }()})[0].tokens)
      << "the adapter should change the output";
}

}  // namespace
}  // namespace forge::infer
