#ifndef CLM_LIB_CALIBRATION_GUARD_H_
#define CLM_LIB_CALIBRATION_GUARD_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "clm/v1/calibration.pb.h"

namespace clm::calibration {

// The guard turns a fitted map into what CLM deploys: a map that never outputs 0 or 1, never claims more
// than its evidence, and says how sure it is (CalibrationMap's guard fields).
//
// The estimator. The prior mean is the fitting set's win rate, smoothed as Jeffreys would,
// pi = (wins + 1/2) / (n + 1); each segment starts from m = prior_trades pseudo-trades at pi, i.e. a
// Beta(a0, b0) prior with a0 = max(m * pi, 1/2) and b0 = max(m * (1 - pi), 1/2) (never weaker than Jeffreys'
// half a trade on either side, so a segment with no wins still gets a positive probability). A segment with
// s wins out of n trades then has the Beta(s + a0, n - s + b0) posterior; its mean is the deployed value
// (an m-estimate: thin segments are shrunk towards the base rate, well-supported ones are not moved) and its
// equal-tailed interval at `level` gives the bounds.
//
// ISOTONIC: the segments are the flat blocks of the scikit-learn fit. Shrinking can break monotonicity
// (a thin block is pulled further than a thick one), so the shrunk values are pooled again by
// pool-adjacent-violators with weights n + m; a pooled group of K blocks is exactly the posterior of its
// pooled trades with K priors. The lower and upper bounds are then made non-decreasing the same way
// (isotonic regression preserves their order and keeps the value between them). Knots are each group's
// first and last confidence, as in the sklearn thresholds; between groups everything is linear.
// PLATT: the sigmoid is kept; the segments are `bins` equal-width bins of the confidence, with knots at
// their centres, and the deployed probability is the sigmoid clamped into the bounds.
//
// `confidence` and `label` are the points the map was fitted on (labels in [0, 1]); `map` must hold a
// valid ISOTONIC or PLATT fit of them. InvalidArgument for empty or mismatched input, or another method.
absl::Status GuardMap(absl::Span<const double> confidence, absl::Span<const double> label, double prior_trades,
                      double level, int bins, clm::v1::CalibrationMap* map);

// The equal-tailed interval of Beta(a, b) at `level`: {quantile (1 - level) / 2, quantile (1 + level) / 2}.
// Requires a > 0 and b > 0.
std::pair<double, double> BetaInterval(double a, double b, double level);

// Pool-adjacent-violators: the non-decreasing sequence closest to `values` in weighted least squares
// (weights > 0), in place.
void PoolAdjacentViolators(std::vector<double>& values, const std::vector<double>& weights);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_GUARD_H_
