// Serving engine: request bookkeeping, the packed model step and output processing (see engine.h).
#include "infer/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "infer/stop_strings.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge::infer {

int64_t kv_bytes_per_token(const models::ModelConfig& c, DType dtype) {
  return 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * (dtype == DType::F32 ? 4 : 2);
}

int64_t device_kv_cache_bytes(const models::ModelConfig& c, const EngineConfig& cfg, int device, double utilization) {
  size_t free_b = 0, total_b = 0;
  cuda::memory_info(device, &free_b, &total_b);
  const double used = double(total_b - free_b);
  const double reserve = double(cfg.max_num_batched_tokens) * double(6 * c.hidden_size + 3 * c.intermediate_size) * 4 +
                         double(cfg.max_num_seqs) * double(c.vocab_size) * 8;
  const double kv = utilization * double(total_b) - used - reserve;
  auto mib = [](double b) { return std::to_string(int64_t(b / double(1 << 20))) + " MiB"; };
  FORGE_CHECK(kv >= double(cfg.block_size * kv_bytes_per_token(c, cfg.kv_cache_dtype)), "cuda:", device,
              ": no room for a KV cache: --gpu-memory-utilization ", utilization, " of ", mib(double(total_b)),
              " is ", mib(utilization * double(total_b)), ", of which ", mib(used), " is in use (the weights) and ",
              mib(reserve), " is kept for a step's activations (--max-num-batched-tokens, --max-num-seqs)");
  return int64_t(kv);
}

struct Engine::Live {
  Live(const data::Tokenizer& tok, bool skip) : dec(tok, skip) {}
  int64_t id = 0;
  Request req;
  EventFn fn;
  std::shared_ptr<SeqState> seq;
  Rng rng{0};
  data::StreamDecoder dec;
  StopMatcher stops;
  std::vector<int64_t> output;
  bool scheduled = false;
  std::optional<JsonMatcher> json;  // guided JSON: what the output has read so far
  std::optional<ToolGuide> tools;   // tool calls in free text: where the output is
  std::optional<ReasoningSplitter> think;  // guided output of a reasoning model: where the answer starts
};

Engine::Engine(std::shared_ptr<models::CausalLM> model, std::shared_ptr<data::Tokenizer> tok,
               std::vector<int64_t> eos_ids, const EngineConfig& cfg)
    : model_(std::move(model)), tok_(std::move(tok)), eos_ids_(std::move(eos_ids)), cfg_(cfg), lora_(*model_),
      seed_rng_(uint64_t(std::chrono::steady_clock::now().time_since_epoch().count())) {
  const models::ModelConfig& c = model_->config();
  const bool len_given = cfg_.max_model_len > 0;
  if (!len_given) cfg_.max_model_len = c.max_position_embeddings;
  FORGE_CHECK(cfg_.max_model_len <= c.max_position_embeddings, "--max-model-len ", cfg_.max_model_len,
              " exceeds the model's context of ", c.max_position_embeddings, " tokens (max_position_embeddings)");
  FORGE_CHECK(cfg_.kv_cache_dtype == DType::F32 || cfg_.kv_cache_dtype == DType::BF16,
              "--kv-cache-dtype must be bf16 or f32, got ", dtype_name(cfg_.kv_cache_dtype));
  const int64_t block_bytes = cfg_.block_size * kv_bytes_per_token(c, cfg_.kv_cache_dtype);
  num_blocks_ = cfg_.kv_cache_bytes / block_bytes + 1;  // + the reserved null block
  // Unless asked for, the context is what the model allows and the cache can hold.
  if (!len_given) cfg_.max_model_len = std::min(cfg_.max_model_len, (num_blocks_ - 1) * cfg_.block_size);
  FORGE_CHECK(cfg_.max_model_len >= 1, "the KV cache of ", cfg_.kv_cache_bytes, " bytes holds no block of ",
              cfg_.block_size, " tokens (", block_bytes, " bytes each): raise --kv-cache-memory");
  const int64_t need = (cfg_.max_model_len + cfg_.block_size - 1) / cfg_.block_size;
  FORGE_CHECK(num_blocks_ - 1 >= need, "the KV cache of ", cfg_.kv_cache_bytes / (1 << 20), " MiB holds ",
              (num_blocks_ - 1) * cfg_.block_size, " tokens (", num_blocks_ - 1, " blocks of ", cfg_.block_size,
              "), less than one sequence of --max-model-len ", cfg_.max_model_len,
              ": raise --kv-cache-memory or lower --max-model-len");
  if (cfg_.inference_layouts && model_->lm_head_weight().device().is_cpu()) {
    model_->store_weights_transposed();
    model_->pack_for_decode();
  }
  kv_ = models::PagedKV::create(c, num_blocks_, cfg_.block_size, cfg_.kv_cache_dtype,
                                model_->lm_head_weight().device());
  SchedulerConfig sc;
  sc.block_size = cfg_.block_size;
  sc.num_blocks = num_blocks_;
  sc.max_num_seqs = cfg_.max_num_seqs;
  sc.max_num_batched_tokens = cfg_.max_num_batched_tokens;
  sc.prefix_caching = cfg_.prefix_caching;
  bool all_slide = c.num_hidden_layers > 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) all_slide &= c.window(l) > 0;
  sc.window = all_slide ? c.sliding_window : 0;
  sched_ = std::make_unique<Scheduler>(sc);
}

Engine::~Engine() { stop(); }

int64_t Engine::add_adapter(const std::string& dir) { return lora_.add(dir, cfg_.max_lora_rank); }

std::string Engine::check(const Request& r) const {
  if (r.prompt.empty()) return "the prompt is empty";
  const int64_t V = model_->config().vocab_size;
  for (int64_t t : r.prompt)
    if (t < 0 || t >= V) return "prompt token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                                std::to_string(V) + ")";
  if (r.max_tokens < 1) return "max_tokens must be at least 1";
  if (int64_t(r.prompt.size()) + r.max_tokens > cfg_.max_model_len)
    return "this model's maximum context length is " + std::to_string(cfg_.max_model_len) + " tokens; the prompt has " +
           std::to_string(r.prompt.size()) + " and max_tokens asks for " + std::to_string(r.max_tokens) + " more";
  if (r.min_tokens < 0 || r.min_tokens > r.max_tokens)
    return "min_tokens (" + std::to_string(r.min_tokens) + ") must be between 0 and max_tokens (" +
           std::to_string(r.max_tokens) + ")";
  for (auto [t, b] : r.sampling.logit_bias)
    if (t < 0 || t >= V || !std::isfinite(b))
      return "logit_bias token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(V) +
             ") or its bias is not finite";
  if (r.adapter < 0 || r.adapter > lora_.size()) return "unknown adapter";
  return "";
}

int64_t Engine::add(Request r, EventFn fn) {
  std::string why = check(r);
  FORGE_CHECK(why.empty(), "request: ", why);
  auto l = std::make_unique<Live>(*tok_, r.skip_special_tokens);
  l->fn = std::move(fn);
  l->stops = StopMatcher(r.stop);
  l->seq = std::make_shared<SeqState>();
  l->seq->adapter = r.adapter;
  l->seq->tokens = r.prompt;
  if (r.json_schema) l->json.emplace(r.json_schema);
  if (r.tool_tag) l->tools.emplace(r.tool_tag);
  if (r.reasoning && (r.json_schema || r.tool_tag)) l->think = r.reasoning;
  l->req = std::move(r);
  std::lock_guard<std::mutex> g(mu_);
  l->id = l->seq->id = next_id_++;
  l->rng = Rng(l->req.seed ? *l->req.seed : seed_rng_.next());
  ++counters_.requests;
  const int64_t id = l->id;
  inbox_.push_back(std::move(l));
  waiting_ += 1;
  cv_.notify_all();
  return id;
}

void Engine::abort(int64_t id) {
  std::lock_guard<std::mutex> g(mu_);
  aborts_.push_back(id);
  cv_.notify_all();
}

void Engine::drain_inbox() {
  std::vector<std::unique_ptr<Live>> in;
  std::vector<int64_t> ab;
  {
    std::lock_guard<std::mutex> g(mu_);
    in.swap(inbox_);
    ab.swap(aborts_);
  }
  for (auto& l : in) {
    sched_->add(l->seq);
    live_[l->id] = std::move(l);
  }
  for (int64_t id : ab) {
    auto it = live_.find(id);
    if (it == live_.end()) continue;
    Event ev;
    finish(*it->second, "abort", ev);
  }
}

void Engine::finish(Live& l, const std::string& reason, Event& ev, bool flush_text) {
  if (flush_text) ev.text += l.stops.flush(l.dec.finish());
  ev.finished = true;
  ev.finish_reason = reason;
  ev.prompt_tokens = int64_t(l.req.prompt.size());
  ev.completion_tokens = int64_t(l.output.size());
  ev.cached_tokens = l.seq->cached_prompt_tokens;
  sched_->finish(l.id);
  {
    std::lock_guard<std::mutex> g(mu_);
    ++counters_.finished;
    if (reason == "abort") ++counters_.aborted;
  }
  const int64_t id = l.id;
  if (l.fn) l.fn(ev);
  live_.erase(id);  // destroys l
}

void Engine::emit_token(Live& l, int64_t token, const float* logits) {
  Event ev;
  const int64_t V = model_->config().vocab_size;
  l.output.push_back(token);
  {
    std::lock_guard<std::mutex> g(mu_);
    ++counters_.generation_tokens;
  }
  ev.tokens.push_back(token);
  if (l.req.logprobs >= 0) ev.logprobs.push_back(token_logprob(logits, V, token, l.req.logprobs));
  const bool is_eos = !l.req.ignore_eos && std::find(eos_ids_.begin(), eos_ids_.end(), token) != eos_ids_.end();
  const bool is_stop_id =
      std::find(l.req.stop_token_ids.begin(), l.req.stop_token_ids.end(), token) != l.req.stop_token_ids.end();
  if (is_eos || is_stop_id) return finish(l, "stop", ev);
  bool hit = false;
  // Stop strings count from min_tokens on, as vLLM checks none before.
  ev.text = l.stops.push(l.dec.push(token), &hit, int64_t(l.output.size()) >= l.req.min_tokens);
  if (hit) return finish(l, "stop", ev, /*flush_text=*/false);  // the rest is cut off with the stop string
  if (l.json || l.tools) {
    // Guides read the answer only: a reasoning model's thinking is free.
    std::string_view bytes = token_bytes_.texts[size_t(token)];
    std::string thought, answer;
    if (l.think) {
      l.think->push(bytes, thought, answer);
      bytes = answer;
    }
    if (l.json) {  // the mask let only this token's bytes through, so they continue the JSON
      l.json->feed(bytes);
      if (l.json->done()) return finish(l, "stop", ev);
    }
    if (l.tools) {  // free text, or a call that the mask kept well formed
      l.tools->feed(bytes);
      if (l.tools->closed()) return finish(l, "stop", ev);
    }
  }
  l.seq->tokens.push_back(token);
  if (int64_t(l.output.size()) >= l.req.max_tokens || int64_t(l.seq->tokens.size()) >= cfg_.max_model_len)
    return finish(l, "length", ev);
  if (l.fn) l.fn(ev);
}

void Engine::run_chunks(const std::vector<ScheduledChunk>& chunks_in) {
  // Rows of one adapter sit together so each LoRA layer sees contiguous segments.
  std::vector<ScheduledChunk> chunks = chunks_in;
  std::stable_sort(chunks.begin(), chunks.end(),
                   [](const ScheduledChunk& a, const ScheduledChunk& b) { return a.seq->adapter < b.seq->adapter; });
  const int64_t S = int64_t(chunks.size()), bs = cfg_.block_size;
  int64_t N = 0, max_blocks = 1;
  for (auto& c : chunks) {
    N += c.n;
    max_blocks = std::max<int64_t>(max_blocks, int64_t(c.seq->blocks.size()));
  }
  std::vector<int64_t> ids, pos, slots;
  std::vector<int32_t> tables(size_t(S * max_blocks), 0), qstart{0}, ctx, row_seq;
  std::vector<int64_t> sample_rows;
  std::vector<peft::LoraSegment> segs;
  for (int64_t s = 0; s < S; ++s) {
    const ScheduledChunk& c = chunks[size_t(s)];
    const int64_t row0 = int64_t(ids.size());
    for (int64_t t = c.start; t < c.start + c.n; ++t) {
      ids.push_back(c.seq->tokens[size_t(t)]);
      pos.push_back(t);
      slots.push_back(int64_t(c.seq->blocks[size_t(t / bs)]) * bs + t % bs);
      row_seq.push_back(int32_t(s));
    }
    std::copy(c.seq->blocks.begin(), c.seq->blocks.end(), tables.begin() + s * max_blocks);
    qstart.push_back(int32_t(ids.size()));
    ctx.push_back(int32_t(c.start + c.n));
    if (c.samples()) sample_rows.push_back(int64_t(ids.size()) - 1);
    if (!segs.empty() && segs.back().adapter == c.seq->adapter) segs.back().end = int64_t(ids.size());
    else segs.push_back({row0, int64_t(ids.size()), c.seq->adapter});
  }
  const Device dev = model_->lm_head_weight().device();
  kv_.batch.slots = Tensor::from_vector(slots, {N}, dev);
  kv_.batch.block_tables = Tensor::from_vector(tables, {S, max_blocks}, dev);
  kv_.batch.query_start = Tensor::from_vector(qstart, {S + 1}, dev);
  kv_.batch.context_lens = Tensor::from_vector(ctx, {S}, dev);
  kv_.batch.row_seq = Tensor::from_vector(row_seq, {N}, dev);
  lora_.route(segs);
  models::ForwardOptions fo;
  fo.paged = &kv_;
  fo.positions = Tensor::from_vector(pos, {N}, dev);
  // ids and the sampled rows stay on the host: the embedding checks them there, then copies once.
  Tensor h = model_->hidden_states(Tensor::from_vector(ids, {1, N}), fo);  // [1, N, C]
  Tensor logits_t;  // [M, V] f32 on the host, sampled in place (no copy: 4 MB a step at 32 rows)
  if (!sample_rows.empty()) {
    const int64_t M = int64_t(sample_rows.size());
    // Gather the rows that draw a token (an embedding lookup is a row gather), then the LM head.
    Tensor rows = embedding(h.view({N, h.size(2)}), Tensor::from_vector(sample_rows, {M}));
    logits_t = model_->logits(rows).to(DType::F32).to(Device::cpu()).contiguous();
  }
  float* logits = logits_t.defined() ? logits_t.data<float>() : nullptr;
  sched_->commit(chunks);
  // Penalties and draws are per sequence (each has its own generator), so rows are sampled in
  // parallel; tokens are emitted in order afterwards.
  const int64_t V = model_->config().vocab_size;
  std::vector<Live*> rows_of;
  for (const ScheduledChunk& c : chunks)
    if (c.samples()) rows_of.push_back(live_.at(c.seq->id).get());
  const int64_t M = int64_t(rows_of.size());
  std::vector<int64_t> drawn(static_cast<size_t>(M));
  std::vector<std::vector<float>> raw(static_cast<size_t>(M));
  for (Live* l : rows_of)
    if ((l->json || l->tools) && token_bytes_.texts.empty()) token_bytes_ = token_bytes(*tok_, V);
#pragma omp parallel for schedule(dynamic) if (M > 1)
  for (int64_t m = 0; m < M; ++m) {
    Live& l = *rows_of[size_t(m)];
    float* row = logits + m * V;
    if (l.req.logprobs >= 0) {
      raw[size_t(m)].assign(row, row + V);
      if (l.req.logprob_temperature > 0) {
        const float inv = float(1.0 / l.req.logprob_temperature);
        for (float& v : raw[size_t(m)]) v *= inv;
      }
    }
    apply_penalties(row, V, l.req.sampling, l.req.prompt, l.output);
    if (int64_t(l.output.size()) < l.req.min_tokens) {  // vLLM's min_tokens: no token that would end it
      if (!l.req.ignore_eos)
        for (int64_t t : eos_ids_)
          if (t >= 0 && t < V) row[t] = -INFINITY;
      for (int64_t t : l.req.stop_token_ids)
        if (t >= 0 && t < V) row[t] = -INFINITY;
    }
    const bool thinking = l.think && !l.think->answering();
    const bool in_call = l.tools && l.tools->constrained();
    std::vector<uint8_t> ok;  // guided output: the tokens that may come (empty: any)
    auto mark = [&](const std::vector<int64_t>& ids, uint8_t v) {
      for (int64_t t : ids)
        if (t >= 0 && t < V) ok[size_t(t)] = v;
    };
    if (thinking && l.json) {  // reasoning before a guided answer: it may not end before the answer
      reasoning_allowed(*l.think, *l.json, token_bytes_, ok);
      mark(eos_ids_, 0);
      mark(l.req.stop_token_ids, 0);
    } else if (l.json || in_call) {  // guided JSON: every token that would break the document (or call) is out
      if (l.json) allowed_tokens(*l.json, token_bytes_, ok);
      else l.tools->allowed(token_bytes_, ok);
      // A whole document that more could still extend (a top-level number) may end at eos, and so
      // may one that no token continues (a schema nested past the matcher's depth).
      const bool stuck = std::find(ok.begin(), ok.end(), 1) == ok.end();
      if ((l.json && l.json->complete() && !l.req.ignore_eos) || stuck) mark(eos_ids_, 1);
    }
    for (size_t t = 0; t < ok.size(); ++t)
      if (!ok[t]) row[t] = -INFINITY;
    drawn[size_t(m)] = sample_token(row, V, l.req.sampling, l.rng);
  }
  for (int64_t m = 0; m < M; ++m)
    emit_token(*rows_of[size_t(m)], drawn[size_t(m)],
               raw[size_t(m)].empty() ? logits + m * V : raw[size_t(m)].data());
}

bool Engine::step() {
  NoGradGuard ng;
  const auto t0 = std::chrono::steady_clock::now();
  drain_inbox();
  StepStats st;
  std::vector<ScheduledChunk> chunks = sched_->schedule(&st);
  if (chunks.empty()) {  // (the inbox may have held aborts: their blocks are free now)
    publish_gauges();
    return false;
  }
  int64_t prefill = 0, queried = 0;
  for (auto& c : chunks) {
    Live& l = *live_.at(c.seq->id);
    if (!l.scheduled) {
      l.scheduled = true;
      queried += int64_t(l.req.prompt.size());
    }
    if (c.start + c.n <= int64_t(l.req.prompt.size())) prefill += c.n;
  }
  run_chunks(chunks);
  {
    std::lock_guard<std::mutex> g(mu_);
    counters_.steps += 1;
    counters_.step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    counters_.prefill_tokens += prefill;
    counters_.prefix_hit_tokens += st.prefix_hit_tokens;
    counters_.prompt_tokens += queried;
    counters_.preemptions += st.preempted;
  }
  publish_gauges();
  return true;
}

void Engine::publish_gauges() {
  {
    std::lock_guard<std::mutex> g(mu_);
    waiting_ = int64_t(sched_->num_waiting()) + int64_t(inbox_.size());
  }
  running_ = int64_t(sched_->num_running());
  kv_usage_ = sched_->pool().usage();
}

void Engine::reset_prefix_cache() {
  drain_inbox();
  sched_->reset_prefix_cache();
}

void Engine::run_until_idle() {
  while (true) {
    bool worked = step();
    if (!worked && live_.empty()) {
      std::lock_guard<std::mutex> g(mu_);
      if (inbox_.empty() && aborts_.empty()) return;
    }
  }
}

void Engine::run() {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (stopping_) return;
    in_run_ = true;
  }
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !inbox_.empty() || !aborts_.empty() || !live_.empty(); });
      if (stopping_) break;
    }
    try {
      step();
    } catch (const std::exception& e) {
      // A failed step must not take the server down: end every request it touched with an error.
      std::fprintf(stderr, "forge engine: step failed: %s\n", e.what());
      abort_all_live();
    }
  }
  drain_inbox();
  abort_all_live();
  std::lock_guard<std::mutex> g(mu_);
  in_run_ = false;
  cv_.notify_all();
}

void Engine::start() {
  if (!loop_.joinable()) loop_ = std::thread([this] { run(); });
}

void Engine::stop() {
  {
    std::unique_lock<std::mutex> lk(mu_);
    stopping_ = true;
    cv_.notify_all();
    if (!loop_.joinable()) cv_.wait(lk, [&] { return !in_run_; });  // run() on another thread
  }
  if (loop_.joinable()) loop_.join();
  drain_inbox();  // what arrived while no loop ran
  abort_all_live();
}

void Engine::abort_all_live() {
  std::vector<int64_t> ids;
  for (auto& [id, l] : live_) ids.push_back(id);
  for (int64_t id : ids) {
    Event ev;
    finish(*live_.at(id), "abort", ev);
  }
}

EngineCounters Engine::counters() const {
  std::lock_guard<std::mutex> g(mu_);
  return counters_;
}

}  // namespace forge::infer
