// Training recipes: YAML files (yaml-cpp) validated key by key into a Recipe, plus command-line
// overrides (`optim.lr=1e-4`). Every error names the file, the line and the key, and suggests the
// closest valid key. docs/recipes.md documents each key.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace forge::train {

struct Recipe {
  std::string file;  // the YAML file it came from ("" when built in code)

  struct Model {
    std::string path;            // Hugging Face model directory
    std::string dtype = "f32";   // compute dtype of the weights: f32 | bf16 (bf16 keeps f32 masters)
    std::string device = "auto";  // auto (cuda when present) | cpu | cuda (cuda:<local rank>) | cuda:N
    std::string init;            // a preset name: make a random model (seeded by train.seed) at
                                 // `path` when it has none yet (smoke tests, cluster checks)
  } model;

  struct Data {
    std::string path;                 // JSONL training data
    std::string format = "auto";      // auto | alpaca | chat | prompt_completion | text | preference
    std::string eval_path;            // JSONL eval data (or use eval_fraction)
    double eval_fraction = 0.0;       // held out from `path` when eval_path is empty
    int64_t max_seq_len = 512;        // row length; longer examples are split or truncated
    std::string long_examples = "auto";  // auto (split text, truncate the rest) | split | truncate
    bool packing = true;              // several examples per row, attention kept per document
    bool train_on_prompt = false;     // loss on prompt tokens too (default: responses only)
    bool shuffle = true;              // seeded by train.seed, a new order each epoch
    bool skip_malformed = false;      // skip and count bad lines instead of stopping
    bool cache = true;                // tokenised dataset cached in HDF5 beside the output dir
  } data;

  struct Peft {
    std::string method = "lora";  // lora | qlora (LoRA on an NF4-quantised base) | none (full finetune)
    int64_t r = 8;
    double alpha = 16.0;
    double dropout = 0.0;
    // Module names (suffix match, e.g. q_proj), "all-linear", or one regular expression
    // (full match on the dotted name) when given as a plain string.
    std::vector<std::string> target_modules{"q_proj", "k_proj", "v_proj", "o_proj"};
    std::string target_regex;
    bool use_rslora = false;
  } peft;

  struct Optim {
    std::string name = "adamw";  // adamw | sgd
    double lr = 2e-4, weight_decay = 0.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, momentum = 0.0;
  } optim;

  struct Schedule {
    std::string name = "cosine";  // constant | linear | cosine
    int64_t warmup_steps = 0;
    double min_lr_ratio = 0.0;    // the floor of linear/cosine decay, as a fraction of optim.lr
  } schedule;

  struct Train {
    std::string method = "sft";   // sft (next-token cross-entropy) | dpo (preference pairs, train/dpo.h)
                                  // | grpo (rewarded rollouts of prompts, train/grpo.h)
    int64_t epochs = 1;
    int64_t max_steps = 0;        // 0: as many as the epochs give
    int64_t batch_size = 4;       // rows per micro-batch (dpo: pairs, two rows each; grpo: prompts
                                  // per step and rank, each with grpo.num_generations completions)
    int64_t grad_accum = 1;       // micro-batches per optimiser step (grpo: a step's completions
                                  // are split into this many)
    double max_grad_norm = 1.0;   // 0 turns clipping off
    int64_t seed = 42;
    bool activation_checkpointing = false;
  } train;

  struct Dpo {
    double beta = 0.1;                  // strength of the pull towards the reference
    std::string loss_type = "sigmoid";  // sigmoid (DPO) | hinge | ipo | simpo (reference-free)
    double label_smoothing = 0.0;       // cDPO: the share of pairs assumed mislabelled (sigmoid, simpo)
    double simpo_gamma = 0.5;           // SimPO's target reward margin
    double rpo_alpha = 0.0;             // RPO: weight of the chosen reply's NLL added to the loss
    bool precompute_ref = false;        // reference log-probs computed once (output.dir/data/ref_logps.h5):
                                        // no reference pass per step, no frozen copy for a full finetune
  } dpo;

  struct Grpo {
    int64_t num_generations = 8;        // completions sampled per prompt (a group)
    int64_t max_prompt_len = 512;       // longer prompts keep their last tokens
    int64_t max_completion_length = 256;
    double temperature = 1.0;           // sampling; the loss takes log-probs at the same temperature
    double epsilon = 0.2;               // the ratio is clipped to [1 - epsilon, 1 + epsilon_high]
    double epsilon_high = 0.0;          // 0: epsilon (DAPO raises it, e.g. 0.28)
    double beta = 0.0;                  // KL penalty to the reference (the adapter off); 0: no reference pass
    std::string loss_type = "grpo";     // grpo (sequence mean) | dapo (token mean) | dr_grpo (constant)
    std::string scale_rewards = "group";  // advantages divided by the group's std (GRPO), the whole
                                          // batch's (batch), or not at all (none: Dr. GRPO)
    int64_t iterations = 1;             // optimiser steps per batch of rollouts (mu)
    std::string rewards = "[]";         // JSON list of reward functions (train/rewards.h), as the recipe's YAML list
    int64_t samples_every = 10;         // steps between lines of output.dir/samples.jsonl; 0: none
    double kv_cache_mb = 0;             // the rollout engine's KV cache; 0: one step's rollouts at once
  } grpo;

  struct Parallel {
    int64_t dp = 1, tp = 1, pp = 1, zero = 0;
    double timeout_s = 600;       // a collective waiting longer stops the run, naming the missing rank
    double bucket_mb = 25;        // gradient all-reduce bucket size
    std::string schedule = "1f1b";  // pipeline schedule: 1f1b or gpipe
  } parallel;

  struct Checkpoint {
    int64_t every = 0;            // optimiser steps between checkpoints; 0: only at the end
    int64_t keep = 2;             // newest K kept
    std::string resume = "auto";  // auto | never | a checkpoint file
  } checkpoint;

  struct Logging {
    int64_t every = 1;            // steps between metrics.jsonl lines
    int64_t eval_every = 0;       // steps between evals; 0: only at the end (if there is eval data)
    int64_t eval_batches = 0;     // 0: the whole eval set
    bool eval_on_start = false;   // also evaluate before the first step (the starting point, as step 0)
    bool progress = true;         // progress bar on stderr
  } logging;

  struct Output {
    std::string dir;              // metrics.jsonl, adapter/, checkpoints/, model/ go here
  } output;
};

// Reads a recipe file and applies overrides ("section.key=value", value parsed as YAML).
// Throws forge::Error "FILE:LINE: key 'a.b': ..." on any problem, before anything runs.
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides = {});
Recipe parse_recipe(const std::string& yaml_text, const std::string& name,
                    const std::vector<std::string>& overrides = {});
// The resolved recipe as YAML (saved as <output>/recipe.yaml so a run says what it did).
std::string recipe_to_yaml(const Recipe& r);
// Every valid dotted key, for --help and docs.
std::vector<std::string> recipe_keys();

}  // namespace forge::train
