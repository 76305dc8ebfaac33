#ifndef CLM_LIB_CALIBRATION_PLATT_H_
#define CLM_LIB_CALIBRATION_PLATT_H_

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace clm::calibration {

// A sigmoid map p(c) = 1 / (1 + exp(a * c + b)), in scikit-learn's sign convention (a < 0 when higher
// confidence means more wins).
struct PlattParams {
  double a = 0.0;
  double b = 0.0;
  int iterations = 0;  // Newton iterations used
};

// Fits a and b the way scikit-learn 1.2.1's _sigmoid_calibration defines them: minimise the (weighted) log
// loss against Platt's smoothed targets t+ = (N+ + 1) / (N+ + 2) for wins and t- = 1 / (N- + 2) for losses,
// starting from a = 0, b = log((N- + 1) / (N+ + 1)), where N+ / N- are the total weights of wins / losses.
// The optimiser is the Newton method with backtracking line search of Lin, Lin and Weng (2007), run until
// the gradient vanishes, so a and b agree with sklearn's BFGS result to its own tolerance (about 1e-5).
//
// Labels strictly between 0 and 1 (NEUTRAL_AS_HALF) split their weight: a label l counts l of its weight as a
// win and (1 - l) as a loss, so its target is l * t+ + (1 - l) * t-. For labels in {0, 1} this is exactly
// sklearn's definition (sklearn itself would count 0.5 as a win).
//
// Requirements (InvalidArgument naming the argument otherwise): same sizes, at least one point, finite
// confidences, labels in [0, 1], weights empty or finite >= 0 with a positive sum.
absl::StatusOr<PlattParams> FitPlatt(absl::Span<const double> confidence, absl::Span<const double> label,
                                     absl::Span<const double> weights = {});

// 1 / (1 + exp(a * c + b)), evaluated without overflow.
double ApplyPlatt(double a, double b, double c);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_PLATT_H_
