// "Did you mean" hints for misspelt names (recipe keys, command-line flags).
#pragma once
#include <string>
#include <vector>

namespace forge {

// " (did you mean 'x'?)" for the candidate closest to `got` by edit distance, or "" when none is
// close. A candidate that is `got` with a "section." in front ("lr" for "optim.lr") counts as close.
std::string did_you_mean(const std::string& got, const std::vector<std::string>& candidates);

}  // namespace forge
