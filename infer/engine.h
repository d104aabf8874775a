// The serving engine: requests in, streamed tokens and text out. Each step the scheduler picks
// chunks of several sequences, the model runs them as one packed batch over the paged KV cache,
// and every sequence whose known tokens are all computed draws its next token. The same engine
// backs `forge serve` (on a background thread) and `forge generate` (run to completion).
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/tokenizer.h"
#include "infer/reasoning.h"
#include "infer/token_mask.h"
#include "infer/tool_guide.h"
#include "infer/sampler.h"
#include "infer/scheduler.h"
#include "models/causal_lm.h"
#include "peft/multi_lora.h"

namespace forge::infer {

struct Request {
  std::vector<int64_t> prompt;
  SamplingParams sampling;          // sampling.seed is used only when `seed` is set
  std::optional<uint64_t> seed;     // unset: the engine draws one
  int64_t max_tokens = 16;
  int64_t min_tokens = 0;           // eos and stop_token_ids cannot be drawn, nor stop strings end it, before this many tokens
  std::vector<std::string> stop;    // stop strings: generation ends before them, never emitted
  std::vector<int64_t> stop_token_ids;
  bool ignore_eos = false;
  bool skip_special_tokens = true;
  int64_t logprobs = -1;            // -1: none; k >= 0: the chosen token's logprob and the top k
  // > 0: logprobs of the logits divided by it (the distribution sampled at that temperature, as
  // GRPO's trainer computes it, TRL-style); 0: of the raw logits, as OpenAI's API reports them.
  double logprob_temperature = 0;
  int64_t adapter = 0;              // 0: base model; i: the i-th added LoRA adapter
  // Guided JSON (JSON mode is the schema of any object): only tokens that keep the output a prefix
  // of a document the schema admits; ends ("stop") when nothing more may follow.
  std::shared_ptr<const JsonSchema> json_schema;
  // Tool calls in free text ("auto"): a call the model opens is held to the tag's schema and end;
  // the request ends ("stop") once the tag's max_calls are written.
  std::shared_ptr<const ToolTag> tool_tag;
  // A reasoning model's reply, where its prompt left it: guided JSON and tool calls hold only the
  // answer after the reasoning (nothing when unset).
  std::optional<ReasoningSplitter> reasoning;
};

// Streamed to the request's callback on the engine thread, at most one per step.
struct Event {
  std::string text;                   // new text (complete UTF-8; stop strings cut off)
  std::vector<int64_t> tokens;        // new token ids
  std::vector<TokenLogprob> logprobs;  // one per new token when asked
  bool finished = false;
  std::string finish_reason;  // "stop" | "length" | "abort"
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};
using EventFn = std::function<void(const Event&)>;

struct EngineConfig {
  int64_t block_size = 16;
  int64_t kv_cache_bytes = int64_t(1) << 30;
  // f32 or bf16 whatever the model's dtype: decode at batch is bound by reading the cache, and bf16
  // halves that and doubles the tokens a budget holds (llama.cpp keeps f16 by default too).
  DType kv_cache_dtype = DType::BF16;
  int64_t max_model_len = 0;  // 0: the model's max_position_embeddings, capped to what the cache holds
  int64_t max_num_seqs = 64;
  int64_t max_num_batched_tokens = 2048;
  bool prefix_caching = true;
  int64_t max_lora_rank = 64;
  // On the CPU, re-store the weights column-major and pack decode twins of them (CausalLM's
  // store_weights_transposed, pack_for_decode): faster decode, but the weights are frozen from then
  // on. Off for an engine over weights that an optimiser updates (GRPO's full finetune).
  bool inference_layouts = true;
};

struct EngineCounters {
  int64_t requests = 0, finished = 0, aborted = 0;
  int64_t prompt_tokens = 0;      // prompt tokens of admitted requests (the prefix cache's queries)
  int64_t prefill_tokens = 0;     // prompt tokens actually computed (after prefix hits, incl. recompute)
  int64_t prefix_hit_tokens = 0;  // tokens taken from the prefix cache
  int64_t generation_tokens = 0;
  int64_t preemptions = 0, steps = 0;
  double step_seconds = 0;        // time inside steps (model and sampling): busy time of the engine
};

// KV cache bytes one token takes in a model (keys and values of every layer).
int64_t kv_bytes_per_token(const models::ModelConfig& c, DType dtype);
// What the KV cache gets on a GPU by default, as vLLM's --gpu-memory-utilization: that fraction of
// the device's memory, less what is already allocated there (the weights) and a reserve for one
// step's activations and logits (max_num_batched_tokens rows through the layers, max_num_seqs
// rows of logits). Throws with the sizes when nothing is left.
int64_t device_kv_cache_bytes(const models::ModelConfig& c, const EngineConfig& cfg, int device, double utilization);

class Engine {
 public:
  Engine(std::shared_ptr<models::CausalLM> model, std::shared_ptr<data::Tokenizer> tok,
         std::vector<int64_t> eos_ids, const EngineConfig& cfg);
  ~Engine();

  // Loads a PEFT adapter (`model` name -> index for Request::adapter); errors name what cannot be served.
  int64_t add_adapter(const std::string& dir);

  // Why the request cannot run ("" when it can): empty prompt, too long for the context, ids out of vocab.
  std::string check(const Request& r) const;
  // Thread-safe. Returns the request id; events arrive on fn.
  int64_t add(Request r, EventFn fn);
  void abort(int64_t id);  // thread-safe; the request ends with finish_reason "abort"

  bool step();            // one scheduling step; false when there was nothing to do
  void run_until_idle();  // steps until no request is left (offline use)
  // The weights changed under the engine (a training step on the model it serves, GRPO): no KV
  // block cached before is reused. Between generations only (no request left).
  void reset_prefix_cache();
  // Serves on the calling thread until stop() is called from another one. Call it on the thread
  // that loaded the model: OpenMP keeps a pool of workers per thread that opened a parallel region,
  // and once libgomp manages more threads than there are cores it stops spinning between regions,
  // so every region pays a futex wake-up (~12 us here; a decode step runs ~100 regions).
  void run();
  void start();  // run() on a background thread (tests, embedding)
  void stop();   // ends run() (waits for it) and aborts what is left

  EngineCounters counters() const;
  int64_t num_running() const { return running_.load(); }
  int64_t num_waiting() const { return waiting_.load(); }
  double kv_usage() const { return kv_usage_.load(); }
  const EngineConfig& config() const { return cfg_; }
  int64_t max_model_len() const { return cfg_.max_model_len; }
  Device device() const { return model_->device(); }  // where the weights and the KV cache are
  int64_t num_blocks() const { return num_blocks_; }
  const data::Tokenizer& tokenizer() const { return *tok_; }

 private:
  struct Live;
  void drain_inbox();
  void abort_all_live();  // ends every request (shutdown, a failed step)
  void publish_gauges();   // running, waiting and KV usage for other threads (/metrics)
  void run_chunks(const std::vector<ScheduledChunk>& chunks);
  void emit_token(Live& l, int64_t token, const float* logits);
  void finish(Live& l, const std::string& reason, Event& ev, bool flush_text = true);

  std::shared_ptr<models::CausalLM> model_;
  std::shared_ptr<data::Tokenizer> tok_;
  std::vector<int64_t> eos_ids_;
  EngineConfig cfg_;
  int64_t num_blocks_ = 0;
  models::PagedKV kv_;
  std::unique_ptr<Scheduler> sched_;
  peft::MultiLora lora_;
  std::map<int64_t, std::unique_ptr<Live>> live_;  // engine thread only
  TokenBytes token_bytes_;                          // guided JSON's vocabulary, made on first use
  Rng seed_rng_;

  mutable std::mutex mu_;  // guards inbox_, aborts_, counters_, next_id_
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Live>> inbox_;
  std::vector<int64_t> aborts_;
  EngineCounters counters_;
  int64_t next_id_ = 1;
  std::atomic<int64_t> running_{0}, waiting_{0};
  std::atomic<double> kv_usage_{0};
  std::thread loop_;
  bool stopping_ = false, in_run_ = false;
};

}  // namespace forge::infer
