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

// Fits the map CLM deploys of options.method on the points, every point weighted 1: ISOTONIC (scikit-learn's
// fit) and PLATT carry their guard (GuardMap with options.prior_trades, ci_level and bins), VENN_ABERS its
// table. trained_on is set to the number of points. `fitter` (optional) lends its buffers to isotonic fits.
absl::StatusOr<clm::v1::CalibrationMap> FitMap(const ResolvedOptions& options, absl::Span<const double> confidence,
                                               absl::Span<const double> label, IsotonicFitter* fitter = nullptr);

// Half-open index ranges [begin, end) of k contiguous folds over n time-ordered points: fold f covers
// [f * n / k, (f + 1) * n / k). The folds are disjoint, cover 0..n-1, are in time order and differ in size by
// at most one. Requires 1 <= k <= n.
struct FoldRange {
  size_t begin;
  size_t end;
};
std::vector<FoldRange> TimeOrderedFolds(size_t n, int k);

// The block length the improvement's bootstrap uses for n scored trades: round(cbrt(n)), at least 1.
size_t BootstrapBlockLength(size_t n);

// Moving-block bootstrap interval of the out-of-sample improvement (before - after) / before * 100, where
// before and after are the sums of the per-trade squared errors of one resample. A resample is n / L
// blocks of L consecutive trades (in close-time order, wrapping round at the end) with uniformly drawn
// starts, so the serial dependence of neighbouring trades (scored by the same fold map, in the same market)
// is kept inside a block instead of being resampled away, as an i.i.d. bootstrap would. L = 1 is the plain
// paired bootstrap. Deterministic: a given seed gives the same interval on every platform (xoshiro256** and
// a fixed index mapping). Percentiles interpolate linearly between order statistics, as numpy.percentile.
struct BootstrapInterval {
  double low = 0.0;
  double high = 0.0;
};
absl::StatusOr<BootstrapInterval> BootstrapImprovement(absl::Span<const double> before_sq,
                                                       absl::Span<const double> after_sq, int resamples,
                                                       uint64_t seed, double level, size_t block_length,
                                                       const StageProgress& progress);

// In-sample and walk-forward out-of-sample evaluation of options.method on points ordered by close time
// (InvalidArgument when closed_at_us decreases). `full_map` is the map fitted on all points; it gives the
// in-sample figures.
//
// Walk-forward: the points are split into options.folds + 1 contiguous blocks (TimeOrderedFolds) and block i
// (i >= 1) is scored by a map fitted only on blocks 0..i-1 (an expanding window), so no point is scored by a
// map that saw a later point: what an engine meets, applying a map only to the future. Block 0 only trains.
// Out-of-sample figures (before and after) cover the scored points only, with the interval of
// BootstrapImprovement at options.ci_level.
//
// With fewer than 2 * (options.folds + 1) points it does not run: cross_validated is false, the note says why,
// the out-of-sample fields stay unset and *out_of_sample is left empty. Otherwise *out_of_sample (if not null)
// receives each point's out-of-sample prediction, aligned with the input, and *first_scored (if not null) the
// index of the first scored point; entries before it are NaN.
absl::StatusOr<clm::v1::EvaluationResult> Evaluate(absl::Span<const double> confidence,
                                                   absl::Span<const double> label,
                                                   absl::Span<const int64_t> closed_at_us,
                                                   const clm::v1::CalibrationMap& full_map,
                                                   const ResolvedOptions& options, const StageProgress& progress,
                                                   std::vector<double>* out_of_sample,
                                                   size_t* first_scored = nullptr);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_EVALUATION_H_
