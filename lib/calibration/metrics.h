#ifndef CLM_LIB_CALIBRATION_METRICS_H_
#define CLM_LIB_CALIBRATION_METRICS_H_

#include <vector>

#include "absl/types/span.h"
#include "clm/v1/calibration.pb.h"

namespace clm::calibration {

// All functions below score predicted[i] against label[i]; the spans have the same size (checked by the
// caller). Empty input gives 0 for every figure.

// Mean squared error against the labels (the Brier score: "MSE before / after").
double Mse(absl::Span<const double> predicted, absl::Span<const double> label);

// Mean log loss exactly as scikit-learn 1.2.1's log_loss(y, p) with its default eps="auto": p is clipped to
// [eps, 1 - eps] with eps the float64 machine epsilon (2.2e-16, so a wrong certainty costs -log(eps) = 36.04),
// the row [1 - p, p] is divided by its sum, and the loss is -(1 - y) log(row[0]) - y log(row[1]). sklearn
// takes only labels 0 and 1; a label in between (NEUTRAL_AS_HALF's 0.5) weighs the two logs by y and 1 - y.
// The mean is a plain sum where numpy's is pairwise: the two agree to about 1e-15 relative.
double LogLoss(absl::Span<const double> predicted, absl::Span<const double> label);

// (before - after) / before * 100; 0 when before is 0 (nothing to improve).
double ImprovementPct(double before, double after);

// Edge k of `bins` equal-width bins of [0, 1]: k / bins, correctly rounded (so Edge(29, 100) == 0.29).
double Edge(int k, int bins);

// Index of the equal-width bin of [0, 1] holding p: bin i covers [Edge(i), Edge(i + 1)), decided by comparing
// p with those edges, so a confidence exactly at an edge k / bins is in bin k for every bin count (0.29 with
// 100 bins is in [0.29, 0.30), although floor(0.29 * 100) is 28). The last bin also holds 1.0; values
// outside [0, 1] (and NaN) go to the end bins. bins < 1 is treated as 1.
int BinIndex(double p, int bins);

// Reliability diagram over `bins` equal-width bins. Every bin is present (empty ones with count 0); a bin
// is thin when 0 < count < min_bin_trades. gap = mean_predicted - observed_rate.
std::vector<clm::v1::ReliabilityBin> ReliabilityBins(absl::Span<const double> predicted,
                                                     absl::Span<const double> label, int bins,
                                                     int min_bin_trades);

// MSE, log loss, and ECE / MCE over `bins` equal-width bins (ECE weights each bin's |gap| by its share of
// the trades; MCE is the largest |gap| of a non-empty bin).
clm::v1::Metrics ComputeMetrics(absl::Span<const double> predicted, absl::Span<const double> label, int bins);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_METRICS_H_
