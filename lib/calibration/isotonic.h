#ifndef CLM_LIB_CALIBRATION_ISOTONIC_H_
#define CLM_LIB_CALIBRATION_ISOTONIC_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace clm::calibration {

// The thresholds of a fitted isotonic map. A caller may rely on them being exactly what scikit-learn 1.2.1's
// IsotonicRegression(increasing=True, y_min=0, y_max=1, out_of_bounds="clip") stores in X_thresholds_ and
// y_thresholds_ for the same data (up to floating-point rounding of the block means, well below 1e-12):
//   * x is strictly increasing (confidences closer than 1e-15 to the first of their run are merged into it,
//     as sklearn's _make_unique does), y is non-decreasing and within [0, 1];
//   * interior points of a flat run are dropped, so a flat block keeps only its two end points;
//   * x and y have the same size, at least 1.
struct IsotonicThresholds {
  std::vector<double> x;
  std::vector<double> y;
};

// Fits isotonic maps, keeping its working buffers between fits so that repeated fits (cross-validation
// folds, benchmarks) do no allocation once the buffers have grown. Not thread-safe: use one per thread.
//
// Cost: one O(n) radix sort of the confidences, one pass to merge ties, one pass of pool-adjacent-violators.
class IsotonicFitter final {
 public:
  IsotonicFitter() = default;
  IsotonicFitter(const IsotonicFitter&) = delete;
  IsotonicFitter& operator=(const IsotonicFitter&) = delete;

  // Fits y as a non-decreasing function of x. `weights` is empty (every weight 1) or has x's size.
  // Requirements, each reported as InvalidArgument naming the argument and index: x and y have the same
  // size; every x is finite; every y is within [0, 1]; every weight is finite and >= 0; at least one point has
  // a positive weight (points of weight 0 are ignored, as in sklearn); fewer than 2^32 points.
  absl::Status Fit(absl::Span<const double> x, absl::Span<const double> y,
                   absl::Span<const double> weights, IsotonicThresholds* out);

 private:
  struct KeyIndex {
    uint64_t key;
    uint32_t index;
  };
  void SortByConfidence(absl::Span<const double> x, absl::Span<const double> y,
                        absl::Span<const double> weights);

  std::vector<KeyIndex> sorted_;
  std::vector<KeyIndex> scratch_;
  std::vector<double> unique_x_;
  std::vector<double> unique_y_;
  std::vector<double> unique_w_;
  std::vector<ptrdiff_t> target_;
};

// Convenience wrapper around a one-off IsotonicFitter.
absl::StatusOr<IsotonicThresholds> FitIsotonic(absl::Span<const double> x, absl::Span<const double> y,
                                               absl::Span<const double> weights = {});

// Evaluates the map at v the way sklearn's predict does with out_of_bounds="clip": v is clipped to
// [x.front(), x.back()], then linearly interpolated with numpy.interp's formula; a single threshold is a
// constant. The result is clamped to [0, 1]. Requires x.size() == y.size() >= 1 and x strictly increasing;
// a NaN v gives NaN. Allocation-free, O(log n).
double InterpolateIsotonic(const double* x, const double* y, size_t n, double v);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_ISOTONIC_H_
