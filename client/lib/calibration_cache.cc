#include "client/lib/calibration_cache.h"

#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"

namespace clm::client {

absl::StatusOr<CompiledCalibration> CompiledCalibration::Compile(const clm::v1::CalibrationMap& map) {
  return Compile(map, {}, {});
}

absl::StatusOr<CompiledCalibration> CompiledCalibration::Compile(const clm::v1::CalibrationMap& map,
                                                                  const std::vector<clm::v1::SliceMap>& symbol_maps,
                                                                  const std::vector<clm::v1::SliceMap>& model_maps) {
  absl::StatusOr<calibration::Calibrator> global = calibration::Calibrator::Create(map);
  if (!global.ok()) return global.status();
  CompiledCalibration compiled(*std::move(global));
  for (const auto& [name, slices, out] : {std::tuple{"symbol_maps", &symbol_maps, &compiled.by_symbol_},
                                          std::tuple{"model_maps", &model_maps, &compiled.by_model_}}) {
    for (const clm::v1::SliceMap& slice : *slices) {
      if (slice.uses_global_map()) continue;
      absl::StatusOr<calibration::Calibrator> c = calibration::Calibrator::Create(slice.map());
      if (!c.ok()) {
        return absl::Status(c.status().code(), absl::StrCat(name, "[", slice.key(), "].", c.status().message()));
      }
      out->insert_or_assign(slice.key(), *std::move(c));
    }
  }
  return compiled;
}

calibration::Calibrated CompiledCalibration::Apply(double confidence, std::string_view symbol,
                                                   std::string_view model_id) const {
  // Heterogeneous lookup without a copy (Debian's Abseil has its own string_view).
  if (auto it = by_symbol_.find(absl::string_view(symbol.data(), symbol.size())); it != by_symbol_.end()) {
    return it->second.ApplyWithBounds(confidence);
  }
  if (auto it = by_model_.find(absl::string_view(model_id.data(), model_id.size())); it != by_model_.end()) {
    return it->second.ApplyWithBounds(confidence);
  }
  return global_.ApplyWithBounds(confidence);
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
