#ifndef CLM_LIB_CALIBRATION_EVALUATION_H_
#define CLM_LIB_CALIBRATION_EVALUATION_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "clm/v1/calibration.pb.h"
#include "lib/calibration/isotonic.h"
#include "lib/calibration/options.h"

namespace clm::calibration {

// Reports progress in [0, 1] within one stage; returning false asks the stage to stop, which it reports as
// absl::CancelledError. An empty function never cancels.
using StageProgress = std::function<bool(double fraction)>;

// Fits a map of `method` (ISOTONIC or PLATT) on the points, every point weighted 1. trained_on is set to the
// number of points. `fitter` (optional) lends its buffers to isotonic fits.
absl::StatusOr<clm::v1::CalibrationMap> FitMap(clm::v1::CalibrationMethod method,
                                               absl::Span<const double> confidence,
                                               absl::Span<const double> label, IsotonicFitter* fitter = nullptr);

// Half-open index ranges [begin, end) of k contiguous folds over n time-ordered points: fold f covers
// [f * n / k, (f + 1) * n / k). The folds are disjoint, cover 0..n-1, are in time order and differ in size by
// at most one. Requires 1 <= k <= n.
struct FoldRange {
  size_t begin;
  size_t end;
};
std::vector<FoldRange> TimeOrderedFolds(size_t n, int k);

// Percentile bootstrap interval of the out-of-sample improvement (before - after) / before * 100, where
// before and after are the sums of the per-trade squared errors of one resample of the trades (drawn with
// replacement). Deterministic: a given seed gives the same interval on every platform (mt19937_64 and a
// fixed index mapping). Percentiles interpolate linearly between order statistics, as numpy.percentile does.
struct BootstrapInterval {
  double low = 0.0;
  double high = 0.0;
};
absl::StatusOr<BootstrapInterval> BootstrapImprovement(absl::Span<const double> before_sq,
                                                       absl::Span<const double> after_sq, int resamples,
                                                       uint64_t seed, double level,
                                                       const StageProgress& progress);

// In-sample and time-ordered out-of-sample evaluation of `method` on points ordered by close time
// (InvalidArgument when closed_at_us decreases). `full_map` is the map fitted on all points; it gives the
// in-sample figures. Each fold is scored with a map fitted on all other folds (earlier and later trades).
//
// With fewer than 2 * options.folds points, cross-validation does not run: cross_validated is false, the
// note says why, the out-of-sample fields stay unset and *out_of_sample is left empty. Otherwise
// *out_of_sample (if not null) receives each point's out-of-sample calibrated prediction, aligned with the
// input.
absl::StatusOr<clm::v1::EvaluationResult> Evaluate(clm::v1::CalibrationMethod method,
                                                   absl::Span<const double> confidence,
                                                   absl::Span<const double> label,
                                                   absl::Span<const int64_t> closed_at_us,
                                                   const clm::v1::CalibrationMap& full_map,
                                                   const ResolvedOptions& options, const StageProgress& progress,
                                                   std::vector<double>* out_of_sample);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_EVALUATION_H_
