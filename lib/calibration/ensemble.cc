#include "lib/calibration/ensemble.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace clm::calibration {
namespace {

struct Accumulator {
  uint64_t count = 0;
  double sum_sq = 0.0;   // sum (confidence - label)^2
  double sum_y = 0.0;    // sum label
  double sum_y2 = 0.0;   // sum label^2, so the base-rate Brier is exact for labels of 0.5 too
};

}  // namespace

clm::v1::EnsembleCheck CheckEnsemble(absl::Span<const LabelledTrade> trades, const EnsembleWeights& current,
                                     double threshold) {
  clm::v1::EnsembleCheck check;
  check.set_threshold(threshold);
  check.set_weight_rule(kWeightRule);

  std::map<std::string, Accumulator> acc;
  for (const LabelledTrade& lt : trades) {
    for (const auto& [model, confidence] : lt.trade->model_confidences) {
      if (!std::isfinite(confidence)) continue;
      Accumulator& a = acc[model];
      ++a.count;
      a.sum_sq += (confidence - lt.label) * (confidence - lt.label);
      a.sum_y += lt.label;
      a.sum_y2 += lt.label * lt.label;
    }
  }
  if (acc.empty()) {
    check.set_has_model_data(false);
    check.set_note("no labelled trade carries per-model confidences: ensemble members cannot be scored, "
                   "weights unchanged");
    return check;
  }
  check.set_has_model_data(true);

  // Current weights over the scored models; weights for models that never appear are reported, not used.
  std::vector<double> cur;
  double cur_sum = 0.0;
  for (const auto& [model, a] : acc) {
    auto it = current.find(model);
    const double w = (it != current.end() && std::isfinite(it->second) && it->second > 0) ? it->second : 0.0;
    cur.push_back(w);
    cur_sum += w;
  }
  const double m = static_cast<double>(acc.size());
  for (double& w : cur) w = cur_sum > 0.0 ? w / cur_sum : 1.0 / m;
  std::vector<std::string> unscored;
  for (const auto& [model, w] : current) {
    if (acc.find(model) == acc.end()) unscored.push_back(model);
  }

  double positive_sum = 0.0;
  for (const auto& [model, a] : acc) {
    const double n = static_cast<double>(a.count);
    const double base = a.sum_y / n;
    const double base_brier = a.sum_y2 / n - base * base;  // mean (base - label)^2
    auto* s = check.add_models();
    s->set_model(model);
    s->set_count(a.count);
    s->set_brier(a.sum_sq / n);
    s->set_base_rate(base);
    s->set_base_rate_brier(std::max(base_brier, 0.0));
    // With a single outcome the reference is perfect and skill is undefined: score it as no skill.
    s->set_skill(s->base_rate_brier() > 0.0 ? 1.0 - s->brier() / s->base_rate_brier() : 0.0);
    positive_sum += std::max(s->skill(), 0.0);
  }
  double change = 0.0;
  for (int i = 0; i < check.models_size(); ++i) {
    auto* s = check.mutable_models(i);
    s->set_current_weight(cur[i]);
    s->set_proposed_weight(positive_sum > 0.0 ? std::max(s->skill(), 0.0) / positive_sum : 1.0 / m);
    change += std::fabs(s->proposed_weight() - s->current_weight());
  }
  check.set_total_weight_change(change);
  check.set_rebalance_recommended(change > threshold);
  std::string note = check.rebalance_recommended()
                         ? absl::StrFormat("rebalance recommended: total weight change %.4f (above %.2f threshold)",
                                           change, threshold)
                         : absl::StrFormat("no rebalancing needed: total weight change %.4f (below %.2f threshold)",
                                           change, threshold);
  if (positive_sum == 0.0) absl::StrAppend(&note, "; no model beats the base rate");
  if (current.empty()) absl::StrAppend(&note, "; current weights unknown, assumed equal");
  if (!unscored.empty()) {
    absl::StrAppend(&note, "; no per-model data for ", absl::StrJoin(unscored, ", "), " (not scored)");
  }
  check.set_note(note);
  return check;
}

}  // namespace clm::calibration
