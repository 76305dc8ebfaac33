#include "lib/calibration/calibrator.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "lib/calibration/isotonic.h"
#include "lib/calibration/platt.h"

namespace clm::calibration {

absl::Status ValidateMap(const clm::v1::CalibrationMap& map) {
  switch (map.method()) {
    case clm::v1::PLATT:
      if (!std::isfinite(map.platt_a()) || !std::isfinite(map.platt_b())) {
        return absl::InvalidArgumentError(absl::StrCat("map.platt_a/platt_b: must be finite, got ",
                                                       map.platt_a(), ", ", map.platt_b()));
      }
      return absl::OkStatus();
    case clm::v1::ISOTONIC: {
      const int n = map.x_thresholds_size();
      if (n == 0) return absl::InvalidArgumentError("map.x_thresholds: must not be empty");
      if (map.y_thresholds_size() != n) {
        return absl::InvalidArgumentError(absl::StrCat("map.y_thresholds: must have the size of x_thresholds (",
                                                       n, "), got ", map.y_thresholds_size()));
      }
      for (int i = 0; i < n; ++i) {
        const double x = map.x_thresholds(i);
        const double y = map.y_thresholds(i);
        if (!std::isfinite(x)) {
          return absl::InvalidArgumentError(absl::StrCat("map.x_thresholds[", i, "]: must be finite, got ", x));
        }
        if (!(y >= 0.0 && y <= 1.0)) {
          return absl::InvalidArgumentError(
              absl::StrCat("map.y_thresholds[", i, "]: must be within [0, 1], got ", y));
        }
        if (i > 0 && !(x > map.x_thresholds(i - 1))) {
          return absl::InvalidArgumentError(absl::StrCat("map.x_thresholds[", i,
                                                         "]: must be greater than the previous threshold ",
                                                         map.x_thresholds(i - 1), ", got ", x));
        }
        if (i > 0 && y < map.y_thresholds(i - 1)) {
          return absl::InvalidArgumentError(absl::StrCat("map.y_thresholds[", i,
                                                         "]: must not decrease (monotone map), previous ",
                                                         map.y_thresholds(i - 1), ", got ", y));
        }
      }
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("map.method: must be ISOTONIC or PLATT, got ", static_cast<int>(map.method())));
  }
}

double Apply(const clm::v1::CalibrationMap& map, double confidence) {
  if (map.method() == clm::v1::PLATT) return ApplyPlatt(map.platt_a(), map.platt_b(), confidence);
  const size_t n = static_cast<size_t>(std::min(map.x_thresholds_size(), map.y_thresholds_size()));
  if (n == 0) return confidence;
  return InterpolateIsotonic(map.x_thresholds().data(), map.y_thresholds().data(), n, confidence);
}

absl::StatusOr<Calibrator> Calibrator::Create(const clm::v1::CalibrationMap& map) {
  absl::Status status = ValidateMap(map);
  if (!status.ok()) return status;
  Calibrator c;
  c.method_ = map.method();
  if (map.method() == clm::v1::ISOTONIC) {
    c.isotonic_.emplace(std::vector<double>(map.x_thresholds().begin(), map.x_thresholds().end()),
                        std::vector<double>(map.y_thresholds().begin(), map.y_thresholds().end()));
  }
  c.a_ = map.platt_a();
  c.b_ = map.platt_b();
  return c;
}

double Calibrator::Apply(double confidence) const {
  if (method_ == clm::v1::PLATT) return ApplyPlatt(a_, b_, confidence);
  return (*isotonic_)(confidence);
}

}  // namespace clm::calibration
