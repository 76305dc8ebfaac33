#include "client/lib/calibration_cache.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace clm::client {

absl::StatusOr<CompiledCalibration> CompiledCalibration::Compile(const clm::v1::CalibrationMap& map) {
  CompiledCalibration c;
  switch (map.method()) {
    case clm::v1::CALIBRATION_METHOD_UNSPECIFIED:
    case clm::v1::ISOTONIC: {
      c.method_ = clm::v1::ISOTONIC;
      const int n = map.x_thresholds_size();
      if (n == 0) return absl::InvalidArgumentError("x_thresholds: must not be empty");
      if (map.y_thresholds_size() != n) {
        return absl::InvalidArgumentError(absl::StrCat("y_thresholds: must have as many values as x_thresholds (",
                                                       n, "), got ", map.y_thresholds_size()));
      }
      for (int i = 0; i < n; ++i) {
        const double x = map.x_thresholds(i);
        const double y = map.y_thresholds(i);
        if (!std::isfinite(x)) return absl::InvalidArgumentError(absl::StrCat("x_thresholds[", i, "]: not finite"));
        if (!std::isfinite(y) || y < 0.0 || y > 1.0) {
          return absl::InvalidArgumentError(absl::StrCat("y_thresholds[", i, "]: must be within [0, 1], got ", y));
        }
        if (i > 0 && x <= map.x_thresholds(i - 1)) {
          return absl::InvalidArgumentError(absl::StrCat("x_thresholds[", i, "]: must be strictly increasing"));
        }
        if (i > 0 && y < map.y_thresholds(i - 1)) {
          return absl::InvalidArgumentError(absl::StrCat("y_thresholds[", i, "]: must be non-decreasing"));
        }
      }
      c.x_.assign(map.x_thresholds().begin(), map.x_thresholds().end());
      c.y_.assign(map.y_thresholds().begin(), map.y_thresholds().end());
      return c;
    }
    case clm::v1::PLATT:
      if (!std::isfinite(map.platt_a())) return absl::InvalidArgumentError("platt_a: not finite");
      if (!std::isfinite(map.platt_b())) return absl::InvalidArgumentError("platt_b: not finite");
      c.method_ = clm::v1::PLATT;
      c.a_ = map.platt_a();
      c.b_ = map.platt_b();
      return c;
    default:
      return absl::InvalidArgumentError(absl::StrCat("method: unknown value ", static_cast<int>(map.method())));
  }
}

double CompiledCalibration::Apply(double confidence) const {
  if (std::isnan(confidence)) return confidence;
  double p;
  if (method_ == clm::v1::PLATT) {
    p = 1.0 / (1.0 + std::exp(a_ * confidence + b_));
  } else if (confidence <= x_.front()) {
    p = y_.front();
  } else if (confidence >= x_.back()) {
    p = y_.back();
  } else {
    // First threshold above the confidence; x_[hi - 1] <= confidence < x_[hi].
    const size_t hi = static_cast<size_t>(std::upper_bound(x_.begin(), x_.end(), confidence) - x_.begin());
    const double x0 = x_[hi - 1];
    const double x1 = x_[hi];
    const double t = (confidence - x0) / (x1 - x0);
    p = y_[hi - 1] + t * (y_[hi] - y_[hi - 1]);
  }
  return std::clamp(p, 0.0, 1.0);
}

CalibrationCache::CalibrationCache() = default;

CalibrationCache::~CalibrationCache() {
  if (source_ != nullptr) source_->Stop();
}

absl::Status CalibrationCache::Follow(std::unique_ptr<CalibrationSource> source) {
  if (source == nullptr) return absl::InvalidArgumentError("source: must not be null");
  if (source_ != nullptr) return absl::FailedPreconditionError("the cache already follows a source");
  source_ = std::move(source);
  absl::Status started = source_->Start([this](const CalibrationUpdate& update) { Publish(update).IgnoreError(); });
  if (!started.ok()) source_.reset();
  return started;
}

absl::Status CalibrationCache::Publish(const CalibrationUpdate& update) {
  absl::MutexLock lock(&mu_);
  if (any_update_ && update.version <= version_.load(std::memory_order_relaxed)) return absl::OkStatus();
  const CompiledCalibration* next = nullptr;
  if (update.map.has_value()) {
    absl::StatusOr<CompiledCalibration> compiled = CompiledCalibration::Compile(*update.map);
    if (!compiled.ok()) {
      last_error_ = absl::Status(compiled.status().code(),
                                 absl::StrCat("calibration version ", update.version, " (", update.label,
                                              ") refused: ", compiled.status().message()));
      return last_error_;
    }
    maps_.push_back(std::make_unique<const CompiledCalibration>(*std::move(compiled)));
    next = maps_.back().get();
  }
  any_update_ = true;
  label_ = update.label;
  version_.store(update.version, std::memory_order_release);
  current_.store(next, std::memory_order_release);
  return absl::OkStatus();
}

absl::Status CalibrationCache::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

std::string CalibrationCache::label() const {
  absl::MutexLock lock(&mu_);
  return label_;
}

}  // namespace clm::client
