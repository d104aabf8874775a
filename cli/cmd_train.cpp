// `forge train RECIPE [key=value ...]`: validates the recipe (and overrides) and runs it.
#include <cstdio>

#include "cli/commands.h"
#include "parallel/comm.h"
#include "train/recipe.h"
#include "train/stop_request.h"
#include "train/trainer.h"

namespace forge::cli {

int cmd_train(const Args& args) {
  if (args.empty() || has_flag(args, "--help")) {
    std::printf(
        "usage: forge train RECIPE.yaml [section.key=value ...] [--check]\n\n"
        "Finetunes a model as the recipe says (LoRA, QLoRA or full; train.method sft, dpo on preference\n"
        "pairs, or grpo on prompts with rewards, sampling from the live weights), writing into output.dir:\n"
        "metrics.jsonl, loss_curve.svg, recipe.yaml (as resolved), data/ (token caches), checkpoints/,\n"
        "and adapter/ (LoRA, PEFT format) or model/ (full finetune); grpo adds samples.jsonl and\n"
        "reward_curve.svg.\n"
        "A run resumes from its newest valid checkpoint (checkpoint.resume: auto). --check validates the\n"
        "recipe, prints it resolved, and stops.\n"
        "Ctrl-C, SIGTERM or SIGUSR1 (Slurm's --signal; mpirun forwards it) stop the run after its current\n"
        "step with a checkpoint; a second Ctrl-C or SIGTERM quits at once.\n"
        "Distributed: mpirun -np N forge train RECIPE parallel.dp=N [parallel.zero=1|2] (docs/distributed.md).\n"
        "Keys (docs/recipes.md explains each):\n");
    for (auto& k : train::recipe_keys()) std::printf("  %s\n", k.c_str());
    return args.empty() ? 1 : 0;
  }
  check_flags(args, {"--check"}, -1);
  train::watch_stop_signals();  // before any thread starts (see stop_request.h)
  std::vector<std::string> overrides;
  for (size_t i = 1; i < args.size(); ++i)
    if (args[i] != "--check") overrides.push_back(args[i]);
  train::Recipe r = train::load_recipe(args[0], overrides);
  if (has_flag(args, "--check")) {
    std::printf("%s", train::recipe_to_yaml(r).c_str());
    return 0;
  }
  train::TrainSummary s = train::run_training(r);
  if (s.stopped_by) return 128 + s.stopped_by;  // the shell's code for death by that signal
  if (parallel::world().rank() != 0) return 0;  // rank 0 speaks for a parallel run
  std::printf("steps %lld, loss %.4f -> %.4f, %.0f tokens/s", (long long)s.steps, s.first_loss, s.last_loss,
              s.tokens_per_s);
  if (s.eval_loss == s.eval_loss) std::printf(", eval loss %.4f", s.eval_loss);
  std::printf("\n%s\n", (s.adapter_dir.empty() ? s.model_dir : s.adapter_dir).c_str());
  return 0;
}

}  // namespace forge::cli
