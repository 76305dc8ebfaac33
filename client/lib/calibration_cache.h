#ifndef CLM_CLIENT_LIB_CALIBRATION_CACHE_H_
#define CLM_CLIENT_LIB_CALIBRATION_CACHE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "clm/v1/calibration.pb.h"
#include "lib/calibration/calibrator.h"

namespace clm::client {

// One change of the active calibration. `map` unset: no calibration is active (raw confidences are used).
struct CalibrationUpdate {
  uint64_t version = 0;  // increases with every change; the cache ignores a version it has already passed
  std::optional<clm::v1::CalibrationMap> map;  // the global map
  std::string label;     // where it came from, for logs (e.g. a job id)
  // The version's per-symbol and per-model maps (ActiveCalibration.symbol_maps / model_maps). A slice that
  // uses_global_map is applied as the global map.
  std::vector<clm::v1::SliceMap> symbol_maps;
  std::vector<clm::v1::SliceMap> model_maps;
};

// Where the active calibration comes from (the Deployment service, a file, a test). A source delivers the
// current state once started and then every change, from any thread, until Stop returns.
class CalibrationSource {
 public:
  using UpdateFn = std::function<void(const CalibrationUpdate&)>;
  virtual ~CalibrationSource() = default;
  virtual absl::Status Start(UpdateFn on_update) = 0;
  // After Stop returns, `on_update` is not called again.
  virtual void Stop() = 0;
};

// A validated calibration compiled for the hot path: immutable, allocation-free, thread-safe. It applies
// exactly what the server's Deployment.Calibrate applies (the same code, lib/calibration's Calibrator):
// the symbol's own map, else the model's, else the global one, with the bounds the map's evidence supports.
class CompiledCalibration final {
 public:
  // INVALID_ARGUMENT naming the field for a map ValidateMap refuses (lib/calibration/calibrator.h).
  static absl::StatusOr<CompiledCalibration> Compile(const clm::v1::CalibrationMap& map);
  // The global map with its symbol and model maps; a slice's error names it ("symbol_maps[BTC]: ...").
  static absl::StatusOr<CompiledCalibration> Compile(const clm::v1::CalibrationMap& map,
                                                      const std::vector<clm::v1::SliceMap>& symbol_maps,
                                                      const std::vector<clm::v1::SliceMap>& model_maps);

  // The global map's probability. NaN in gives NaN out.
  double Apply(double confidence) const { return maps_.global().Apply(confidence); }
  // The probability and its bounds from the map the server would pick for this symbol and model id.
  calibration::Calibrated Apply(double confidence, std::string_view symbol, std::string_view model_id) const {
    // Debian's Abseil has its own string_view.
    return maps_.For(absl::string_view(symbol.data(), symbol.size()),
                     absl::string_view(model_id.data(), model_id.size()))
        .ApplyWithBounds(confidence);
  }
  clm::v1::CalibrationMethod method() const { return maps_.global().method(); }

 private:
  explicit CompiledCalibration(calibration::SlicedCalibrator maps) : maps_(std::move(maps)) {}
  calibration::SlicedCalibrator maps_;
};

// Follows the active calibration and applies it locally, in nanoseconds, on any number of threads.
//
// Readers never lock: the current map is an atomic pointer to an immutable CompiledCalibration, swapped
// whole on each update. A replaced map is kept until the cache is destroyed (a reader may still be using
// it, and reclaiming it safely would need hazard pointers); calibrations change a few times a day, so this
// costs a few kilobytes per change.
class CalibrationCache final {
 public:
  CalibrationCache();
  ~CalibrationCache();  // stops the source first
  CalibrationCache(const CalibrationCache&) = delete;
  CalibrationCache& operator=(const CalibrationCache&) = delete;

  // Starts following `source`; the cache owns it and stops it on destruction. At most one source.
  absl::Status Follow(std::unique_ptr<CalibrationSource> source);

  // Applies an update directly (what a source's callback does). An update with a version not above the
  // current one is ignored (OK); an invalid map is refused and the current map stays in force.
  absl::Status Publish(const CalibrationUpdate& update);

  // The calibrated confidence by the global map, or `confidence` itself when no calibration is active.
  double Apply(double confidence) const {
    const CompiledCalibration* map = current_.load(std::memory_order_acquire);
    return map == nullptr ? confidence : map->Apply(confidence);
  }
  // What Deployment.Calibrate answers for this confidence, symbol and model id: the probability and the
  // bounds its evidence supports (an engine may size on `lower`). No calibration: all three are `confidence`.
  calibration::Calibrated Apply(double confidence, std::string_view symbol, std::string_view model_id) const {
    const CompiledCalibration* map = current_.load(std::memory_order_acquire);
    return map == nullptr ? calibration::Calibrated{confidence, confidence, confidence}
                          : map->Apply(confidence, symbol, model_id);
  }

  bool active() const { return current_.load(std::memory_order_acquire) != nullptr; }
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  // The last refused update's error; OK when none was refused.
  absl::Status last_error() const;
  std::string label() const;

 private:
  std::atomic<const CompiledCalibration*> current_{nullptr};
  std::atomic<uint64_t> version_{0};
  mutable absl::Mutex mu_;  // writers only
  std::vector<std::unique_ptr<const CompiledCalibration>> maps_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  std::string label_ ABSL_GUARDED_BY(mu_);
  bool any_update_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<CalibrationSource> source_;
};

}  // namespace clm::client

#endif  // CLM_CLIENT_LIB_CALIBRATION_CACHE_H_
