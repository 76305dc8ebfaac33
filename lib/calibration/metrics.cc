#include "lib/calibration/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace clm::calibration {

double Mse(absl::Span<const double> predicted, absl::Span<const double> label) {
  if (predicted.empty()) return 0.0;
  double sum = 0.0;
  for (size_t i = 0; i < predicted.size(); ++i) {
    const double d = predicted[i] - label[i];
    sum += d * d;
  }
  return sum / static_cast<double>(predicted.size());
}

double LogLoss(absl::Span<const double> predicted, absl::Span<const double> label) {
  if (predicted.empty()) return 0.0;
  // sklearn's eps="auto": the machine epsilon of the predictions' dtype, float64.
  constexpr double kEps = std::numeric_limits<double>::epsilon();
  double sum = 0.0;
  for (size_t i = 0; i < predicted.size(); ++i) {
    const double p = std::clamp(predicted[i], kEps, 1.0 - kEps);
    // sklearn's steps, in its order: clip, build the row [1 - p, p], divide it by its sum (rounding can
    // leave that a hair off 1), then -(xlogy(1 - y, row[0]) + xlogy(y, row[1])).
    const double row_sum = (1.0 - p) + p;
    const double loss_prob = (1.0 - p) / row_sum;
    const double win_prob = p / row_sum;
    const double y = label[i];
    double loss = 0.0;
    if (y != 1.0) loss += (1.0 - y) * std::log(loss_prob);  // xlogy(0, x) is 0
    if (y != 0.0) loss += y * std::log(win_prob);
    sum -= loss;
  }
  return sum / static_cast<double>(predicted.size());
}

double Edge(int k, int bins) { return static_cast<double>(k) / bins; }

double ImprovementPct(double before, double after) {
  if (!(before > 0.0)) return 0.0;
  return (before - after) / before * 100.0;
}

int BinIndex(double p, int bins) {
  if (bins <= 1 || !(p > 0.0)) return 0;
  if (p >= 1.0) return bins - 1;
  // p * bins is rounded, so its floor can be one bin off next to an edge (0.29 * 100 = 28.999999999999996):
  // start there and let the edges, computed exactly as ReliabilityBins reports them, decide.
  int k = std::min(static_cast<int>(p * bins), bins - 1);
  while (k > 0 && p < Edge(k, bins)) --k;
  while (k + 1 < bins && p >= Edge(k + 1, bins)) ++k;
  return k;
}

std::vector<clm::v1::ReliabilityBin> ReliabilityBins(absl::Span<const double> predicted,
                                                     absl::Span<const double> label, int bins,
                                                     int min_bin_trades) {
  std::vector<double> sum_p(bins, 0.0), sum_y(bins, 0.0);
  std::vector<uint64_t> count(bins, 0);
  for (size_t i = 0; i < predicted.size(); ++i) {
    const int b = BinIndex(predicted[i], bins);
    sum_p[b] += predicted[i];
    sum_y[b] += label[i];
    ++count[b];
  }
  std::vector<clm::v1::ReliabilityBin> out(bins);
  for (int b = 0; b < bins; ++b) {
    clm::v1::ReliabilityBin& r = out[b];
    r.set_lo(Edge(b, bins));
    r.set_hi(Edge(b + 1, bins));
    r.set_count(count[b]);
    if (count[b] > 0) {
      const double n = static_cast<double>(count[b]);
      r.set_mean_predicted(sum_p[b] / n);
      r.set_observed_rate(sum_y[b] / n);
      r.set_gap(r.mean_predicted() - r.observed_rate());
    }
    r.set_thin(count[b] > 0 && count[b] < static_cast<uint64_t>(min_bin_trades));
  }
  return out;
}

clm::v1::Metrics ComputeMetrics(absl::Span<const double> predicted, absl::Span<const double> label, int bins) {
  clm::v1::Metrics m;
  m.set_count(predicted.size());
  if (predicted.empty()) return m;
  m.set_mse(Mse(predicted, label));
  m.set_log_loss(LogLoss(predicted, label));
  double ece = 0.0, mce = 0.0;
  const double n = static_cast<double>(predicted.size());
  for (const auto& b : ReliabilityBins(predicted, label, bins, 1)) {
    if (b.count() == 0) continue;
    const double gap = std::fabs(b.gap());
    ece += static_cast<double>(b.count()) / n * gap;
    mce = std::max(mce, gap);
  }
  m.set_ece(ece);
  m.set_mce(mce);
  return m;
}

}  // namespace clm::calibration
