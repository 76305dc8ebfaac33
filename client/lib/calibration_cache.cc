#include "client/lib/calibration_cache.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace clm::client {

absl::StatusOr<CompiledCalibration> CompiledCalibration::Compile(const clm::v1::CalibrationMap& map) {
  return Compile(map, {}, {});
}

absl::StatusOr<CompiledCalibration> CompiledCalibration::Compile(const clm::v1::CalibrationMap& map,
                                                                  const std::vector<clm::v1::SliceMap>& symbol_maps,
                                                                  const std::vector<clm::v1::SliceMap>& model_maps) {
  const google::protobuf::RepeatedPtrField<clm::v1::SliceMap> symbols(symbol_maps.begin(), symbol_maps.end());
  const google::protobuf::RepeatedPtrField<clm::v1::SliceMap> models(model_maps.begin(), model_maps.end());
  absl::StatusOr<calibration::SlicedCalibrator> maps = calibration::SlicedCalibrator::Create(map, symbols, models);
  if (!maps.ok()) return maps.status();
  return CompiledCalibration(*std::move(maps));
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
    absl::StatusOr<CompiledCalibration> compiled =
        CompiledCalibration::Compile(*update.map, update.symbol_maps, update.model_maps);
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
