#ifndef CLM_CLIENT_LIB_WATCH_ACTIVE_SOURCE_H_
#define CLM_CLIENT_LIB_WATCH_ACTIVE_SOURCE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/lib/calibration_cache.h"
#include "clm/v1/deployment.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace clm::client {

// A CalibrationSource that follows clm.v1.Deployment/WatchActive: the production calibration the server
// has now, then every change (approve into production, promote, rollback, automatic rollback).
//
// What a caller may rely on:
// - Each ActiveCalibration received is delivered as one CalibrationUpdate: the production map when
//   production_version > 0 (with its symbol and model maps), no map ("use the raw confidence") when it is 0.
//   Shadow maps are not delivered: the engine never applies them.
// - CalibrationUpdate::version is this source's own counter, increasing with every delivery across
//   reconnects, so a rollback to an older production version (or a server restart that resets the
//   server's sequence) is never mistaken for a stale update by the cache. The production version and the
//   server's sequence are in the label ("production v3 (sequence 7)") and in stats().
// - When the stream fails (server restart, network), the source reconnects with exponential backoff
//   (`initial_backoff` doubling to `max_backoff`, with jitter); the server sends the current state first
//   on every new stream, so nothing is missed, and an unchanged state is not delivered again.
// - The production version's global, symbol and model maps are delivered together, so a CalibrationCache
//   picks the map the server's Calibrate would (symbol, then model, then global).
// - Updates are delivered on one reader thread, in order. Stop (and the destructor) cancels the stream and
//   joins that thread: after it returns, `on_update` is not called again. Do not call Stop from `on_update`.
class WatchActiveSource final : public CalibrationSource {
 public:
  struct Options {
    absl::Duration initial_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(10);
    // Sent with every WatchActive call (e.g. CallMetadata(connection) for the bearer token).
    std::vector<std::pair<std::string, std::string>> metadata;
  };

  struct Stats {
    uint64_t received = 0;            // ActiveCalibration messages read
    uint64_t delivered = 0;           // updates handed to on_update
    uint64_t reconnects = 0;          // streams started after the first
    uint64_t production_version = 0;  // of the last message (0: no calibration)
    uint64_t sequence = 0;            // the server's sequence of the last message
    bool connected = false;           // a stream is open and has delivered the current state
    std::string last_error;           // the last stream failure, "CODE: message"; empty when none
  };

  explicit WatchActiveSource(std::shared_ptr<grpc::Channel> channel);
  WatchActiveSource(std::shared_ptr<grpc::Channel> channel, Options options);
  ~WatchActiveSource() override;
  WatchActiveSource(const WatchActiveSource&) = delete;
  WatchActiveSource& operator=(const WatchActiveSource&) = delete;

  // Starts the reader thread and returns at once (the first update follows when the stream delivers the
  // current state). FAILED_PRECONDITION when already started.
  absl::Status Start(UpdateFn on_update) override;
  void Stop() override;

  Stats stats() const;

 private:
  void ReadLoop();
  // Waits up to `delay` or until Stop; returns false when stopping.
  bool Backoff(absl::Duration delay);

  std::unique_ptr<clm::v1::Deployment::Stub> stub_;
  const Options options_;
  UpdateFn on_update_;  // set by Start, read only by the reader thread
  std::thread reader_;

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* call_ ABSL_GUARDED_BY(mu_) = nullptr;  // the open stream's context, to cancel it
  Stats stats_ ABSL_GUARDED_BY(mu_);
  bool have_state_ ABSL_GUARDED_BY(mu_) = false;  // something was delivered (state below is valid)
  std::string last_production_map_ ABSL_GUARDED_BY(mu_);  // serialized, to skip unchanged states
};

}  // namespace clm::client

#endif  // CLM_CLIENT_LIB_WATCH_ACTIVE_SOURCE_H_
