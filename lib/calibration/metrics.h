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

// Mean log loss with probabilities clipped to [1e-15, 1 - 1e-15], as scikit-learn's log_loss does.
double LogLoss(absl::Span<const double> predicted, absl::Span<const double> label);

// (before - after) / before * 100; 0 when before is 0 (nothing to improve).
double ImprovementPct(double before, double after);

// Index of the equal-width bin of [0, 1] holding p: bin i covers [i / bins, (i + 1) / bins), the last bin
// also holds 1.0; values outside [0, 1] go to the end bins.
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
