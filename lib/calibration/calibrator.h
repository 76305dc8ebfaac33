#ifndef CLM_LIB_CALIBRATION_CALIBRATOR_H_
#define CLM_LIB_CALIBRATION_CALIBRATOR_H_

#include <optional>


#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clm/v1/calibration.pb.h"
#include "lib/calibration/isotonic.h"

namespace clm::calibration {

// Checks that a map can be applied: a known method; isotonic: 1 <= size, equal sizes, finite values, x strictly
// increasing, y non-decreasing within [0, 1]; Platt: finite a and b. Returns InvalidArgument naming the field.
absl::Status ValidateMap(const clm::v1::CalibrationMap& map);

// Applies a map straight from the message: no allocation, O(log n). The map must have passed ValidateMap
// (an unvalidated map gives unspecified but memory-safe results: an empty isotonic map returns the input).
// The result is within [0, 1] for a confidence within [0, 1]; NaN in gives NaN out.
double Apply(const clm::v1::CalibrationMap& map, double confidence);

// A validated map compiled for the live path: Apply is const, allocation-free and thread-safe; O(1) on
// average for isotonic maps (IsotonicPredictor's cell table, then a short scan) and for Platt maps.
// Gives bit-for-bit the same values as the free Apply above.
class Calibrator final {
 public:
  static absl::StatusOr<Calibrator> Create(const clm::v1::CalibrationMap& map);

  double Apply(double confidence) const;
  clm::v1::CalibrationMethod method() const { return method_; }

 private:
  Calibrator() = default;

  clm::v1::CalibrationMethod method_ = clm::v1::ISOTONIC;
  std::optional<IsotonicPredictor> isotonic_;  // set for isotonic maps
  double a_ = 0.0;
  double b_ = 0.0;
};

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_CALIBRATOR_H_
