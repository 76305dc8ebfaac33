#include "lib/calibration/guard.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/math/special_functions/beta.hpp"
#include "lib/calibration/metrics.h"

namespace clm::calibration {
namespace {

// A run of pooled segments [first, last] with its weighted mean.
struct Pool {
  size_t first;
  size_t last;
  double value;
  double weight;
};

// Pool-adjacent-violators over (values, weights); returns the pools in order.
std::vector<Pool> Pools(const std::vector<double>& values, const std::vector<double>& weights) {
  std::vector<Pool> pools;
  pools.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    pools.push_back({i, i, values[i], weights[i]});
    while (pools.size() > 1 && pools[pools.size() - 2].value >= pools.back().value) {
      Pool top = pools.back();
      pools.pop_back();
      Pool& prev = pools.back();
      const double w = prev.weight + top.weight;
      prev.value = (prev.value * prev.weight + top.value * top.weight) / w;
      prev.weight = w;
      prev.last = top.last;
    }
  }
  return pools;
}

struct Prior {
  double a0;
  double b0;
  double mean;
};

Prior MakePrior(absl::Span<const double> label, double prior_trades) {
  double wins = 0.0;
  for (double y : label) wins += y;
  const double pi = (wins + 0.5) / (static_cast<double>(label.size()) + 1.0);
  return {std::max(prior_trades * pi, 0.5), std::max(prior_trades * (1.0 - pi), 0.5), pi};
}

// One segment's evidence: trades (label weight) and wins.
struct Evidence {
  double n = 0.0;
  double s = 0.0;
};

void SetGuard(const std::vector<double>& knots, const std::vector<Evidence>& evidence,
              std::vector<double> lower, std::vector<double> upper, const std::vector<double>& weights,
              const Prior& prior, double prior_trades, double level, clm::v1::CalibrationMap* map) {
  PoolAdjacentViolators(lower, weights);
  PoolAdjacentViolators(upper, weights);
  map->clear_guard_x();
  map->clear_guard_lower();
  map->clear_guard_upper();
  map->clear_guard_trades();
  for (size_t i = 0; i < knots.size(); ++i) {
    map->add_guard_x(knots[i]);
    map->add_guard_lower(lower[i]);
    map->add_guard_upper(upper[i]);
    map->add_guard_trades(evidence[i].n);
  }
  map->set_prior_trades(prior_trades);
  map->set_prior_mean(prior.mean);
  map->set_interval_level(level);
}

absl::Status GuardIsotonic(absl::Span<const double> confidence, absl::Span<const double> label,
                           double prior_trades, double level, clm::v1::CalibrationMap* map) {
  // The flat runs of the sklearn thresholds: a run keeps its first and last confidence.
  std::vector<double> run_first, run_last, run_y;
  for (int i = 0; i < map->x_thresholds_size(); ++i) {
    const double x = map->x_thresholds(i), y = map->y_thresholds(i);
    if (!run_y.empty() && y == run_y.back()) {
      run_last.back() = x;
    } else {
      run_first.push_back(x);
      run_last.push_back(x);
      run_y.push_back(y);
    }
  }
  const size_t runs = run_first.size();
  if (runs == 0) return absl::InvalidArgumentError("map.x_thresholds: must not be empty");
  // Each point belongs to the last run starting at or below it (sklearn merges near-ties into the first
  // confidence of their run, so a point may sit a hair above its run's first threshold).
  std::vector<Evidence> evidence(runs);
  for (size_t i = 0; i < confidence.size(); ++i) {
    const auto it = std::upper_bound(run_first.begin(), run_first.end(), confidence[i]);
    const size_t r = it == run_first.begin() ? 0 : static_cast<size_t>(it - run_first.begin()) - 1;
    evidence[r].n += 1.0;
    evidence[r].s += label[i];
  }
  const Prior prior = MakePrior(label, prior_trades);
  const double m = prior.a0 + prior.b0;
  std::vector<double> shrunk(runs), weights(runs);
  for (size_t r = 0; r < runs; ++r) {
    shrunk[r] = (evidence[r].s + prior.a0) / (evidence[r].n + m);
    weights[r] = evidence[r].n + m;
  }
  std::vector<double> knots, values, lower, upper, knot_weights;
  std::vector<Evidence> knot_evidence;
  for (const Pool& pool : Pools(shrunk, weights)) {
    Evidence e;
    for (size_t r = pool.first; r <= pool.last; ++r) {
      e.n += evidence[r].n;
      e.s += evidence[r].s;
    }
    const double k = static_cast<double>(pool.last - pool.first + 1);
    const double a = e.s + k * prior.a0, b = std::max(e.n - e.s, 0.0) + k * prior.b0;
    const auto [lo, hi] = BetaInterval(a, b, level);
    const double mean = a / (a + b);
    for (double x : {run_first[pool.first], run_last[pool.last]}) {
      if (!knots.empty() && knots.back() == x) continue;
      knots.push_back(x);
      values.push_back(mean);
      lower.push_back(std::min(lo, mean));
      upper.push_back(std::max(hi, mean));
      knot_weights.push_back(a + b);
      knot_evidence.push_back(e);
    }
  }
  map->clear_x_thresholds();
  map->clear_y_thresholds();
  map->mutable_x_thresholds()->Add(knots.begin(), knots.end());
  map->mutable_y_thresholds()->Add(values.begin(), values.end());
  SetGuard(knots, knot_evidence, std::move(lower), std::move(upper), knot_weights, prior, prior_trades, level,
           map);
  return absl::OkStatus();
}

absl::Status GuardPlatt(absl::Span<const double> confidence, absl::Span<const double> label, double prior_trades,
                        double level, int bins, clm::v1::CalibrationMap* map) {
  if (bins < 1) return absl::InvalidArgumentError(absl::StrCat("bins: must be at least 1, got ", bins));
  std::vector<Evidence> evidence(bins);
  for (size_t i = 0; i < confidence.size(); ++i) {
    const int k = BinIndex(std::clamp(confidence[i], 0.0, 1.0), bins);  // the reliability bins' own rule
    evidence[k].n += 1.0;
    evidence[k].s += label[i];
  }
  const Prior prior = MakePrior(label, prior_trades);
  std::vector<double> knots(bins), lower(bins), upper(bins), weights(bins);
  for (int k = 0; k < bins; ++k) {
    const double a = evidence[k].s + prior.a0, b = std::max(evidence[k].n - evidence[k].s, 0.0) + prior.b0;
    std::tie(lower[k], upper[k]) = BetaInterval(a, b, level);
    knots[k] = (k + 0.5) / bins;
    weights[k] = a + b;
  }
  SetGuard(knots, evidence, std::move(lower), std::move(upper), weights, prior, prior_trades, level, map);
  return absl::OkStatus();
}

}  // namespace

std::pair<double, double> BetaInterval(double a, double b, double level) {
  const double tail = (1.0 - level) / 2.0;
  return {boost::math::ibeta_inv(a, b, tail), boost::math::ibeta_inv(a, b, 1.0 - tail)};
}

void PoolAdjacentViolators(std::vector<double>& values, const std::vector<double>& weights) {
  for (const Pool& pool : Pools(values, weights)) {
    for (size_t i = pool.first; i <= pool.last; ++i) values[i] = pool.value;
  }
}

absl::Status GuardMap(absl::Span<const double> confidence, absl::Span<const double> label, double prior_trades,
                      double level, int bins, clm::v1::CalibrationMap* map) {
  if (confidence.empty() || confidence.size() != label.size()) {
    return absl::InvalidArgumentError(absl::StrCat("confidence/label: must be non-empty and of equal size, got ",
                                                   confidence.size(), " and ", label.size()));
  }
  if (!(prior_trades > 0.0) || !(level > 0.0 && level < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("prior_trades/level: must be > 0 and within (0, 1), got ", prior_trades, ", ", level));
  }
  switch (map->method()) {
    case clm::v1::ISOTONIC:
      return GuardIsotonic(confidence, label, prior_trades, level, map);
    case clm::v1::PLATT:
      return GuardPlatt(confidence, label, prior_trades, level, bins, map);
    default:
      return absl::InvalidArgumentError(absl::StrCat("map.method: only ISOTONIC and PLATT maps take a guard, got ",
                                                     clm::v1::CalibrationMethod_Name(map->method())));
  }
}

}  // namespace clm::calibration
