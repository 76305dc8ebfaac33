#ifndef CLM_CLIENT_LIB_CALIBRATION_CACHE_H_
#define CLM_CLIENT_LIB_CALIBRATION_CACHE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "clm/v1/calibration.pb.h"

namespace clm::client {

// One change of the active calibration. `map` unset: no calibration is active (raw confidences are used).
struct CalibrationUpdate {
  uint64_t version = 0;  // increases with every change; the cache ignores a version it has already passed
  std::optional<clm::v1::CalibrationMap> map;
  std::string label;     // where it came from, for logs (e.g. a job id)
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

// A validated map compiled for the hot path: immutable, allocation-free, thread-safe.
class CompiledCalibration final {
 public:
  // INVALID_ARGUMENT naming the field: isotonic maps need 1..n points, equal sizes, finite values, x strictly
  // increasing, y non-decreasing within [0, 1]; Platt maps need finite a and b.
  static absl::StatusOr<CompiledCalibration> Compile(const clm::v1::CalibrationMap& map);

  // Isotonic: binary search over the thresholds and linear interpolation, constant outside them; Platt:
  // 1 / (1 + exp(a * c + b)). The result is clipped to [0, 1]; NaN in gives NaN out.
  double Apply(double confidence) const;
  clm::v1::CalibrationMethod method() const { return method_; }

 private:
  CompiledCalibration() = default;
  clm::v1::CalibrationMethod method_ = clm::v1::ISOTONIC;
  std::vector<double> x_;
  std::vector<double> y_;
  double a_ = 0.0;
  double b_ = 0.0;
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

  // The calibrated confidence, or `confidence` itself when no calibration is active.
  double Apply(double confidence) const {
    const CompiledCalibration* map = current_.load(std::memory_order_acquire);
    return map == nullptr ? confidence : map->Apply(confidence);
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
