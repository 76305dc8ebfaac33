#ifndef CLM_LIB_CALIBRATION_CALIBRATOR_H_
#define CLM_LIB_CALIBRATION_CALIBRATOR_H_

#include <optional>
#include <vector>

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clm/v1/calibration.pb.h"
#include "lib/calibration/isotonic.h"

namespace clm::calibration {

// Checks that a map can be applied. Isotonic: 1 <= size, equal sizes, finite values, x strictly increasing,
// y non-decreasing within [0, 1]; Platt: finite a and b; Venn-Abers: x as isotonic, va_p0 and va_p1 of size
// 2 * x + 1 with 0 <= p0 <= p1 <= 1, p0 < 1 and p1 > 0. A guard, when present: equal sizes, guard_x strictly
// increasing and finite, bounds non-decreasing with 0 < lower <= upper < 1, trades finite and >= 0.
// Returns InvalidArgument naming the field.
absl::Status ValidateMap(const clm::v1::CalibrationMap& map);

// What a map gives for one confidence: the probability an engine uses and the bounds its evidence
// supports, lower <= probability <= upper (all three equal for a map without a guard).
struct Calibrated {
  double probability = 0.0;
  double lower = 0.0;
  double upper = 0.0;
};

// Applies a map straight from the message (see CalibrationMap for the rules): no allocation, O(log n). The
// map must have passed ValidateMap (an unvalidated map gives unspecified but memory-safe results: an empty
// isotonic map returns the input). Within [0, 1] for a confidence within [0, 1]; NaN in gives NaN out.
Calibrated ApplyWithBounds(const clm::v1::CalibrationMap& map, double confidence);
inline double Apply(const clm::v1::CalibrationMap& map, double confidence) {
  return ApplyWithBounds(map, confidence).probability;
}

// A validated map compiled for the live path: const, allocation-free and thread-safe; O(1) on average for
// isotonic maps and guards (IsotonicPredictor's cell table, then a short scan) and for Platt maps, O(log n)
// for Venn-Abers. Gives bit-for-bit the same values as the free functions above.
class Calibrator final {
 public:
  static absl::StatusOr<Calibrator> Create(const clm::v1::CalibrationMap& map);

  Calibrated ApplyWithBounds(double confidence) const;
  double Apply(double confidence) const { return ApplyWithBounds(confidence).probability; }
  clm::v1::CalibrationMethod method() const { return method_; }

 private:
  Calibrator() = default;

  clm::v1::CalibrationMethod method_ = clm::v1::ISOTONIC;
  std::optional<IsotonicPredictor> isotonic_;  // set for isotonic maps
  std::optional<IsotonicPredictor> lower_;     // set when the map has a guard
  std::optional<IsotonicPredictor> upper_;
  double a_ = 0.0;
  double b_ = 0.0;
  std::vector<double> va_x_, va_p0_, va_p1_;  // Venn-Abers
};

// A version's maps compiled together: the global map and the per-symbol and per-model maps. For() picks what
// Deployment.Calibrate applies, and what every engine-side cache must apply: the symbol's own map, else the
// model's, else the global one. A slice that uses_global_map is the global map. Immutable, thread-safe.
class SlicedCalibrator final {
 public:
  // INVALID_ARGUMENT naming the map: "symbol_maps[ETHUSDT].map.y_thresholds[0]: ...".
  static absl::StatusOr<SlicedCalibrator> Create(
      const clm::v1::CalibrationMap& global,
      const google::protobuf::RepeatedPtrField<clm::v1::SliceMap>& symbol_maps,
      const google::protobuf::RepeatedPtrField<clm::v1::SliceMap>& model_maps);

  const Calibrator& For(absl::string_view symbol, absl::string_view model_id) const;
  const Calibrator& global() const { return global_; }

 private:
  explicit SlicedCalibrator(Calibrator global) : global_(std::move(global)) {}
  Calibrator global_;
  absl::flat_hash_map<std::string, Calibrator> by_symbol_;
  absl::flat_hash_map<std::string, Calibrator> by_model_;
};

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_CALIBRATOR_H_
