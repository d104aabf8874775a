// The built-in rewards and the outside reward command (see rewards.h).
#include "train/rewards.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "data/unicode.h"
#include "infer/json_matcher.h"
#include "infer/json_schema.h"

namespace forge::train {
using json = nlohmann::json;

std::string answer_of(const std::string& completion) {
  const size_t close = completion.rfind("</think>");
  std::string s = close == std::string::npos ? completion : completion.substr(close + 8);
  const size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

namespace {

// A field of the prompt row as text: a string as it is, anything else as its JSON.
std::string field_text(const Completion& c, const std::string& field) {
  auto it = c.row->find(field);
  FORGE_CHECK(it != c.row->end(), "reward: the prompt row has no field '", field, "' (prompt: ", c.prompt.substr(0, 80), ")");
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// The last number in s (integers, decimals, exponents, thousands separators dropped), if any.
bool last_number(const std::string& s, double* out) {
  static const data::Regex number(R"([-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)");
  const auto m = number.find_all(s);
  if (m.empty()) return false;
  std::string t = s.substr(m.back().first, m.back().second - m.back().first);
  std::erase(t, ',');
  char* end = nullptr;
  *out = std::strtod(t.c_str(), &end);
  return end != t.c_str();
}

// Runs each completion through test(c) -> score.
template <typename F>
struct Each : RewardFunction {
  explicit Each(F f) : f(std::move(f)) {}
  std::vector<double> score(const std::vector<Completion>& batch) override {
    std::vector<double> out;
    for (const Completion& c : batch) out.push_back(f(c));
    return out;
  }
  F f;
};
template <typename F>
std::unique_ptr<RewardFunction> each(F f) {
  return std::make_unique<Each<F>>(std::move(f));
}

// The outside program (see rewards.h).
class CommandReward : public RewardFunction {
 public:
  CommandReward(std::string command, double timeout_s) : command_(std::move(command)), timeout_s_(timeout_s) {}
  std::vector<double> score(const std::vector<Completion>& batch) override {
    std::string input;
    for (const Completion& c : batch)
      input += json{{"prompt", c.prompt}, {"completion", c.text}, {"row", *c.row}}.dump() + "\n";
    const std::string output = run(input, batch);
    std::vector<double> out;
    std::istringstream lines(output);
    std::string line;
    for (size_t i = 0; i < batch.size(); ++i) {
      FORGE_CHECK(std::getline(lines, line), where(batch[i]), ": printed ", i, " lines for ", batch.size(), " completions");
      char* end = nullptr;
      const double v = std::strtod(line.c_str(), &end);
      while (end && (*end == ' ' || *end == '\t' || *end == '\r')) ++end;
      FORGE_CHECK(end != line.c_str() && *end == '\0', where(batch[i]), ": line ", i + 1, " is not a number: '",
                  line.substr(0, 60), "'");
      FORGE_CHECK(std::isfinite(v), where(batch[i]), ": line ", i + 1, " is ", line, " (rewards must be finite)");
      out.push_back(v);
    }
    return out;
  }

 private:
  std::string where(const Completion& c) const {
    return "reward command '" + command_ + "' (prompt: " + c.prompt.substr(0, 80) + ")";
  }

  // sh -c command, input on stdin, stdout returned; stdin and stdout are served together (poll),
  // so a program that answers while it reads cannot deadlock on a full pipe.
  std::string run(const std::string& input, const std::vector<Completion>& batch) {
    int in[2], out[2];
    FORGE_CHECK(pipe(in) == 0 && pipe(out) == 0, "reward command: cannot make pipes");
    const pid_t pid = fork();
    FORGE_CHECK(pid >= 0, "reward command: cannot fork");
    if (pid == 0) {
      // The command starts as from a shell: no blocked signals (the trainer blocks its stop signals,
      // see stop_request.h) and SIGPIPE's default action (the trainer ignores it).
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      signal(SIGPIPE, SIG_DFL);
      setpgid(0, 0);  // its own process group: a timeout ends the programs it started too
      dup2(in[0], 0);
      dup2(out[1], 1);
      close(in[0]), close(in[1]), close(out[0]), close(out[1]);
      execl("/bin/sh", "sh", "-c", command_.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    setpgid(pid, pid);  // as the child does, whichever runs first
    close(in[0]);
    close(out[1]);
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    signal(SIGPIPE, SIG_IGN);  // a program that stops reading must not kill the trainer
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
    std::string output;
    size_t sent = 0;
    int to_child = in[1];
    if (input.empty()) close(to_child), to_child = -1;
    bool timed_out = false;
    for (;;) {
      pollfd fds[2] = {{out[0], POLLIN, 0}, {to_child, POLLOUT, 0}};
      const double left = std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) {
        timed_out = true;
        break;
      }
      if (poll(fds, to_child >= 0 ? 2 : 1, int(std::ceil(left * 1000))) < 0) continue;
      if (to_child >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
        const ssize_t n = write(to_child, input.data() + sent, input.size() - sent);
        if (n > 0) sent += size_t(n);
        if (n < 0 && errno != EAGAIN) sent = input.size();  // it closed its stdin: read what it says
        if (sent == input.size()) close(to_child), to_child = -1;
      }
      if (fds[0].revents & (POLLIN | POLLHUP)) {
        char buf[4096];
        const ssize_t n = read(out[0], buf, sizeof buf);
        if (n <= 0) break;  // end of its output
        output.append(buf, size_t(n));
      }
    }
    if (to_child >= 0) close(to_child);
    close(out[0]);
    if (timed_out) kill(-pid, SIGKILL);  // the shell and what it started (`sleep` would hold stderr open)
    int status = 0;
    waitpid(pid, &status, 0);
    const std::string w = where(batch.front());
    FORGE_CHECK(!timed_out, w, ": no answer within ", timeout_s_, " s (grpo reward timeout_s)");
    FORGE_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, w, ": ",
                WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                  : "killed by signal " + std::to_string(WTERMSIG(status)));
    return output;
  }

  std::string command_;
  double timeout_s_;
};

}  // namespace

std::unique_ptr<RewardFunction> make_reward(const json& spec, const std::string& where) {
  FORGE_CHECK(spec.is_object() && spec.contains("type") && spec["type"].is_string(), where,
              ": a reward needs a 'type' (exact, number, regex, json_schema, length, think_format or command)");
  const std::string type = spec["type"];
  auto str = [&](const char* key) {
    FORGE_CHECK(spec.contains(key) && spec[key].is_string() && !spec[key].get<std::string>().empty(), where, ": reward ",
                type, " needs a string '", key, "'");
    return spec[key].get<std::string>();
  };
  auto num = [&](const char* key, double dflt) {
    if (!spec.contains(key)) return dflt;
    FORGE_CHECK(spec[key].is_number(), where, ": reward ", type, ": '", key, "' must be a number");
    return spec[key].get<double>();
  };
  std::unique_ptr<RewardFunction> f;
  if (type == "exact") {
    f = each([field = str("field")](const Completion& c) { return answer_of(c.text) == answer_of(field_text(c, field)) ? 1.0 : 0.0; });
  } else if (type == "contains") {
    f = each([field = str("field")](const Completion& c) {
      const std::string want = answer_of(field_text(c, field));
      return !want.empty() && answer_of(c.text).find(want) != std::string::npos ? 1.0 : 0.0;
    });
  } else if (type == "number") {
    const double tol = num("tolerance", 1e-6);
    f = each([field = str("field"), tol](const Completion& c) {
      double want = 0, got = 0;
      FORGE_CHECK(last_number(field_text(c, field), &want), "reward number: field '", field, "' holds no number (prompt: ",
                  c.prompt.substr(0, 80), ")");
      if (!last_number(answer_of(c.text), &got)) return 0.0;
      return std::abs(got - want) <= tol * std::max(1.0, std::abs(want)) ? 1.0 : 0.0;
    });
  } else if (type == "regex") {
    auto re = std::make_shared<data::Regex>(str("pattern"));
    f = each([re](const Completion& c) { return re->find_all(answer_of(c.text)).empty() ? 0.0 : 1.0; });
  } else if (type == "json_schema") {
    FORGE_CHECK(spec.contains("schema") && spec["schema"].is_object(), where, ": reward json_schema needs a 'schema' object");
    std::shared_ptr<const infer::JsonSchema> schema = infer::JsonSchema::compile(spec["schema"]);
    f = each([schema](const Completion& c) {
      infer::JsonMatcher m(schema);
      return m.feed(answer_of(c.text)) && m.complete() ? 1.0 : 0.0;
    });
  } else if (type == "length") {
    const double max_chars = num("max_chars", 0);
    FORGE_CHECK(max_chars >= 1, where, ": reward length needs 'max_chars' >= 1");
    f = each([max_chars](const Completion& c) { return -std::max(0.0, double(c.text.size()) - max_chars) / max_chars; });
  } else if (type == "think_format") {
    f = each([](const Completion& c) {
      const std::string& t = c.text;
      const size_t open = t.find_first_not_of(" \t\r\n");
      const size_t close = t.find("</think>");
      return open != std::string::npos && t.compare(open, 7, "<think>") == 0 && close != std::string::npos &&
                     close > open && t.find("<think>", open + 7) > close && !answer_of(t).empty()
                 ? 1.0
                 : 0.0;
    });
  } else if (type == "command") {
    const double timeout = num("timeout_s", 60);
    FORGE_CHECK(timeout > 0, where, ": reward command: 'timeout_s' must be positive");
    f = std::make_unique<CommandReward>(str("command"), timeout);
  } else {
    throw Error(where + ": unknown reward type '" + type +
                "' (expected exact, contains, number, regex, json_schema, length, think_format or command)");
  }
  f->name = spec.value("name", type);
  f->weight = num("weight", 1.0);
  for (auto& [k, v] : spec.items()) {
    static const std::vector<std::string> known = {"type", "name", "weight", "field", "tolerance", "pattern", "schema",
                                                   "max_chars", "command", "timeout_s"};
    FORGE_CHECK(std::find(known.begin(), known.end(), k) != known.end(), where, ": reward ", type, ": unknown key '", k, "'");
  }
  return f;
}

}  // namespace forge::train
