#include "lib/calibration/calibrator.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "lib/calibration/isotonic.h"
#include "lib/calibration/platt.h"
#include "lib/calibration/venn_abers.h"

namespace clm::calibration {

namespace {

absl::Status ValidateThresholds(const clm::v1::CalibrationMap& map) {
  const int n = map.x_thresholds_size();
  if (n == 0) return absl::InvalidArgumentError("map.x_thresholds: must not be empty");
  for (int i = 0; i < n; ++i) {
    const double x = map.x_thresholds(i);
    if (!std::isfinite(x)) {
      return absl::InvalidArgumentError(absl::StrCat("map.x_thresholds[", i, "]: must be finite, got ", x));
    }
    if (i > 0 && !(x > map.x_thresholds(i - 1))) {
      return absl::InvalidArgumentError(absl::StrCat("map.x_thresholds[", i,
                                                     "]: must be greater than the previous threshold ",
                                                     map.x_thresholds(i - 1), ", got ", x));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateIsotonic(const clm::v1::CalibrationMap& map) {
  if (absl::Status s = ValidateThresholds(map); !s.ok()) return s;
  const int n = map.x_thresholds_size();
  if (map.y_thresholds_size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("map.y_thresholds: must have the size of x_thresholds (", n,
                                                   "), got ", map.y_thresholds_size()));
  }
  for (int i = 0; i < n; ++i) {
    const double y = map.y_thresholds(i);
    if (!(y >= 0.0 && y <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat("map.y_thresholds[", i, "]: must be within [0, 1], got ", y));
    }
    if (i > 0 && y < map.y_thresholds(i - 1)) {
      return absl::InvalidArgumentError(absl::StrCat("map.y_thresholds[", i,
                                                     "]: must not decrease (monotone map), previous ",
                                                     map.y_thresholds(i - 1), ", got ", y));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateVennAbers(const clm::v1::CalibrationMap& map) {
  if (absl::Status s = ValidateThresholds(map); !s.ok()) return s;
  const int size = 2 * map.x_thresholds_size() + 1;
  if (map.va_p0_size() != size || map.va_p1_size() != size) {
    return absl::InvalidArgumentError(absl::StrCat("map.va_p0/va_p1: must have 2 * x_thresholds + 1 = ", size,
                                                   " entries, got ", map.va_p0_size(), " and ", map.va_p1_size()));
  }
  for (int i = 0; i < size; ++i) {
    const double p0 = map.va_p0(i), p1 = map.va_p1(i);
    if (!(p0 >= 0.0 && p0 < 1.0 && p1 > 0.0 && p1 <= 1.0 && p0 <= p1)) {
      return absl::InvalidArgumentError(absl::StrCat("map.va_p0/va_p1[", i,
                                                     "]: must satisfy 0 <= p0 <= p1 <= 1, p0 < 1 and p1 > 0, got ",
                                                     p0, " and ", p1));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateGuard(const clm::v1::CalibrationMap& map) {
  const int n = map.guard_x_size();
  if (n == 0) return absl::OkStatus();
  if (map.guard_lower_size() != n || map.guard_upper_size() != n || map.guard_trades_size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("map.guard_lower/guard_upper/guard_trades: must have the size of "
                                                   "guard_x (", n, ")"));
  }
  for (int i = 0; i < n; ++i) {
    const double x = map.guard_x(i), lo = map.guard_lower(i), hi = map.guard_upper(i), t = map.guard_trades(i);
    if (!std::isfinite(x) || (i > 0 && !(x > map.guard_x(i - 1)))) {
      return absl::InvalidArgumentError(
          absl::StrCat("map.guard_x[", i, "]: must be finite and greater than the previous knot, got ", x));
    }
    if (!(lo > 0.0 && lo <= hi && hi < 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat("map.guard_lower/guard_upper[", i,
                                                     "]: must satisfy 0 < lower <= upper < 1, got ", lo, " and ", hi));
    }
    if (i > 0 && (lo < map.guard_lower(i - 1) || hi < map.guard_upper(i - 1))) {
      return absl::InvalidArgumentError(
          absl::StrCat("map.guard_lower/guard_upper[", i, "]: must not decrease"));
    }
    if (!(std::isfinite(t) && t >= 0.0)) {
      return absl::InvalidArgumentError(absl::StrCat("map.guard_trades[", i, "]: must be finite and >= 0, got ", t));
    }
  }
  return absl::OkStatus();
}

Calibrated Clamp(double value, double lower, double upper) {
  return {std::min(std::max(value, lower), upper), lower, upper};
}

}  // namespace

absl::Status ValidateMap(const clm::v1::CalibrationMap& map) {
  absl::Status s;
  switch (map.method()) {
    case clm::v1::PLATT:
      if (!std::isfinite(map.platt_a()) || !std::isfinite(map.platt_b())) {
        return absl::InvalidArgumentError(absl::StrCat("map.platt_a/platt_b: must be finite, got ",
                                                       map.platt_a(), ", ", map.platt_b()));
      }
      break;
    case clm::v1::ISOTONIC:
      s = ValidateIsotonic(map);
      break;
    case clm::v1::VENN_ABERS:
      return ValidateVennAbers(map);
    default:
      return absl::InvalidArgumentError(absl::StrCat("map.method: must be ISOTONIC, PLATT or VENN_ABERS, got ",
                                                     static_cast<int>(map.method())));
  }
  if (!s.ok()) return s;
  return ValidateGuard(map);
}

Calibrated ApplyWithBounds(const clm::v1::CalibrationMap& map, double confidence) {
  if (map.method() == clm::v1::VENN_ABERS) {
    const size_t k = static_cast<size_t>(map.x_thresholds_size());
    if (k == 0 || map.va_p0_size() != static_cast<int>(2 * k + 1) || map.va_p1_size() != map.va_p0_size()) {
      return {confidence, confidence, confidence};
    }
    const VennAbersValue v =
        ApplyVennAbers(map.x_thresholds().data(), k, map.va_p0().data(), map.va_p1().data(), confidence);
    return {v.probability, v.p0, v.p1};
  }
  double value;
  if (map.method() == clm::v1::PLATT) {
    value = ApplyPlatt(map.platt_a(), map.platt_b(), confidence);
  } else {
    const size_t n = static_cast<size_t>(std::min(map.x_thresholds_size(), map.y_thresholds_size()));
    value = n == 0 ? confidence : InterpolateIsotonic(map.x_thresholds().data(), map.y_thresholds().data(), n, confidence);
  }
  const size_t g = static_cast<size_t>(
      std::min({map.guard_x_size(), map.guard_lower_size(), map.guard_upper_size()}));
  if (g == 0) return {value, value, value};
  return Clamp(value, InterpolateIsotonic(map.guard_x().data(), map.guard_lower().data(), g, confidence),
               InterpolateIsotonic(map.guard_x().data(), map.guard_upper().data(), g, confidence));
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
  if (map.method() == clm::v1::VENN_ABERS) {
    c.va_x_.assign(map.x_thresholds().begin(), map.x_thresholds().end());
    c.va_p0_.assign(map.va_p0().begin(), map.va_p0().end());
    c.va_p1_.assign(map.va_p1().begin(), map.va_p1().end());
  } else if (map.guard_x_size() > 0) {
    std::vector<double> knots(map.guard_x().begin(), map.guard_x().end());
    c.lower_.emplace(knots, std::vector<double>(map.guard_lower().begin(), map.guard_lower().end()));
    c.upper_.emplace(std::move(knots), std::vector<double>(map.guard_upper().begin(), map.guard_upper().end()));
  }
  c.a_ = map.platt_a();
  c.b_ = map.platt_b();
  return c;
}

Calibrated Calibrator::ApplyWithBounds(double confidence) const {
  if (method_ == clm::v1::VENN_ABERS) {
    const VennAbersValue v = ApplyVennAbers(va_x_.data(), va_x_.size(), va_p0_.data(), va_p1_.data(), confidence);
    return {v.probability, v.p0, v.p1};
  }
  const double value = method_ == clm::v1::PLATT ? ApplyPlatt(a_, b_, confidence) : (*isotonic_)(confidence);
  if (!lower_) return {value, value, value};
  return Clamp(value, (*lower_)(confidence), (*upper_)(confidence));
}

absl::StatusOr<SlicedCalibrator> SlicedCalibrator::Create(
    const clm::v1::CalibrationMap& global, const google::protobuf::RepeatedPtrField<clm::v1::SliceMap>& symbol_maps,
    const google::protobuf::RepeatedPtrField<clm::v1::SliceMap>& model_maps) {
  absl::StatusOr<Calibrator> compiled_global = Calibrator::Create(global);
  if (!compiled_global.ok()) return compiled_global.status();
  SlicedCalibrator sliced(*std::move(compiled_global));
  for (const auto& [name, slices, out] : {std::tuple{"symbol_maps", &symbol_maps, &sliced.by_symbol_},
                                          std::tuple{"model_maps", &model_maps, &sliced.by_model_}}) {
    for (const clm::v1::SliceMap& slice : *slices) {
      if (slice.uses_global_map()) continue;
      absl::StatusOr<Calibrator> c = Calibrator::Create(slice.map());
      if (!c.ok()) {
        return absl::Status(c.status().code(), absl::StrCat(name, "[", slice.key(), "].", c.status().message()));
      }
      out->insert_or_assign(slice.key(), *std::move(c));
    }
  }
  return sliced;
}

const Calibrator& SlicedCalibrator::For(absl::string_view symbol, absl::string_view model_id) const {
  if (auto it = by_symbol_.find(symbol); it != by_symbol_.end()) return it->second;
  if (auto it = by_model_.find(model_id); it != by_model_.end()) return it->second;
  return global_;
}

}  // namespace clm::calibration
