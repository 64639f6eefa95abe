// ROUGE-L as pycocoevalcap's Rouge computes it (rouge.py).
//
//   double r = clipcap::rouge_l("a dog runs", {"a dog is running", "dogs run"});
//
// Tokens are split on single spaces (Python's split(" "), so "" is one empty token); LCS
// precision and recall are maximised independently over the references, then
// F = (1 + b^2) P R / (R + b^2 P) with b = 1.2, or 0 when either maximum is 0.
#pragma once

#include <string>
#include <vector>

namespace clipcap {

double rouge_l(const std::string& candidate, const std::vector<std::string>& references);

}  // namespace clipcap
