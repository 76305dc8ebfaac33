#ifndef CLM_LIB_CALIBRATION_ISOTONIC_H_
#define CLM_LIB_CALIBRATION_ISOTONIC_H_

#include <cstddef>
#include <cstdint>
#include <memory>
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
// Cost: a value-bucket radix sort of the confidences (O(n) for spread-out values, O(n log n) at worst), then
// one pass that merges ties and pools adjacent violators, with memory for the blocks formed so far only.
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
    uint64_t key;    // order-preserving bits of the confidence
    uint32_t index;  // input position
  };
  // A block of pool-adjacent-violators: its mean label, total weight, and first and last merged confidences.
  struct Block {
    double y;
    double w;
    double x_first;
    double x_last;
  };
  // The common case (unit or zero weights, labels 0 / 0.5 / 1, confidences in [0, 2)): packs each kept point
  // into one word of packed_ and widens [*x_min, *x_max] to the kept confidences. Stops at the first point that
  // does not fit and returns its index (x.size() when all fit); the points before it are valid.
  size_t PackPoints(absl::Span<const double> x, absl::Span<const double> y, absl::Span<const double> weights,
                    double* x_min, double* x_max);
  // Sorts packed_ by confidence.
  void SortPacked(double x_min, double x_max);
  // Any input: fills sorted_ with the positive-weight points in sklearn's lexsort order.
  void SortByConfidence(absl::Span<const double> x, absl::Span<const double> y, absl::Span<const double> weights,
                        double x_min, double x_max);
  // Merges ties and pools adjacent violators over the n sorted points that points(j, &x, &y, &w) gives;
  // leaves the blocks in blocks_[0..returned count).
  template <typename Points>
  size_t Pool(const Points& points, size_t n);

  std::vector<uint64_t> packed_;
  std::vector<uint64_t> packed_scratch_;
  std::vector<KeyIndex> sorted_;
  std::vector<KeyIndex> scratch_;
  std::vector<uint32_t> bucket_ids_;
  std::vector<uint32_t> scratch_ids_;
  std::vector<uint32_t> histogram_;
  std::unique_ptr<Block[]> blocks_;
  size_t block_capacity_ = 0;
};

// Convenience wrapper around a one-off IsotonicFitter.
absl::StatusOr<IsotonicThresholds> FitIsotonic(absl::Span<const double> x, absl::Span<const double> y,
                                               absl::Span<const double> weights = {});

// Evaluates the map at v the way sklearn's predict does with out_of_bounds="clip": v is clipped to
// [x.front(), x.back()], then linearly interpolated with numpy.interp's formula; a single threshold is a
// constant. The result is clamped to [0, 1]. Requires x.size() == y.size() >= 1 and x strictly increasing;
// a NaN v gives NaN. Allocation-free, O(log n).
double InterpolateIsotonic(const double* x, const double* y, size_t n, double v);

// InterpolateIsotonic for many queries against one map: a table of equal-width cells over the thresholds
// range gives the search a starting point, so a prediction costs O(1) on average instead of O(log n). Gives
// bit-for-bit the same values as InterpolateIsotonic. Immutable after construction: operator() and Predict
// are const, allocation-free and safe to call from many threads.
class IsotonicPredictor final {
 public:
  // Requires x.size() == y.size() >= 1 and x strictly increasing (what IsotonicFitter and ValidateMap ensure).
  IsotonicPredictor(std::vector<double> x, std::vector<double> y);

  double operator()(double v) const;
  // out[i] = (*this)(v[i]) for every i, without a call per point. Requires out.size() == v.size().
  void Predict(absl::Span<const double> v, absl::Span<double> out) const;
  const std::vector<double>& x() const { return x_; }
  const std::vector<double>& y() const { return y_; }

 private:
  size_t Cell(double v) const;
  inline double Evaluate(double v) const;

  std::vector<double> x_;
  std::vector<double> y_;
  std::vector<double> slopes_;  // slopes_[j]: of the segment [x_[j], x_[j + 1]]
  double inv_width_ = 0.0;
  // start_[c]: an index j <= n - 2 with x_[j] < every v of cell c (the last threshold of an earlier cell).
  std::vector<uint32_t> start_;
};

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_ISOTONIC_H_
