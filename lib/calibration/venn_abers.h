#ifndef CLM_LIB_CALIBRATION_VENN_ABERS_H_
#define CLM_LIB_CALIBRATION_VENN_ABERS_H_

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace clm::calibration {

// An inductive Venn-Abers predictor (Vovk and Petej 2014), tabulated over every place a test confidence can
// fall, in the layout CalibrationMap uses for VENN_ABERS (x_thresholds, va_p0, va_p1).
//
// What a caller may rely on, for the calibration points (c_j, y_j) it was fitted on:
//   * x holds the distinct confidences, strictly increasing (equal means ==, so -0.0 and 0.0 are one value,
//     stored as 0.0; no 1e-15 merging as scikit-learn's IsotonicRegression does for nearly equal values).
//   * p0 and p1 have 2 * x.size() + 1 entries: entry 2i + 1 is for a test confidence equal to x[i], entry 2i
//     for one strictly between x[i - 1] and x[i] (entry 0 below x[0], the last above x.back()).
//   * Each entry is the value at the test confidence c of the isotonic regression (non-decreasing, every
//     point of weight 1, a test point equal to x[i] tied with that group) of the calibration points plus
//     (c, 0) for p0, plus (c, 1) for p1: scikit-learn 1.2.1's IsotonicRegression(increasing=True, y_min=0,
//     y_max=1, out_of_bounds="clip") fitted on those points and predicting at c, to within 1e-12 (it is the
//     correctly rounded block mean when labels are 0, 0.5 or 1).
//   * 0 < p1 and p0 < 1 in every entry, p0 <= p1 entry by entry, and both are non-decreasing along the
//     entries, so the predictor is monotone in the confidence.
struct VennAbersTable {
  std::vector<double> x;
  std::vector<double> p0;
  std::vector<double> p1;
};

// Fits the table in O(n log n) (the sort) plus O(k) for the k distinct confidences.
// Requirements, each reported as InvalidArgument naming the argument and index: confidence and label have
// the same size; at least one point; every confidence is finite; every label is within [0, 1].
absl::StatusOr<VennAbersTable> FitVennAbers(absl::Span<const double> confidence, absl::Span<const double> label);

// What the predictor gives for one confidence: the interval [p0, p1] and the probability
// p1 / (1 - p0 + p1), which is strictly inside (0, 1) for a table FitVennAbers made.
struct VennAbersValue {
  double p0 = 0;
  double p1 = 0;
  double probability = 0;
};

// Looks c up in a table given as raw arrays (so it can be read straight from a CalibrationMap's repeated
// fields): x has k strictly increasing entries, p0 and p1 have 2k + 1. A NaN c gives NaN in all three.
// Allocation-free, O(log k), safe to call from many threads.
VennAbersValue ApplyVennAbers(const double* x, size_t k, const double* p0, const double* p1, double c);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_VENN_ABERS_H_
