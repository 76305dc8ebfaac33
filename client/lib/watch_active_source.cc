#include "client/lib/watch_active_source.h"

#include <algorithm>
#include <optional>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/lib/connection.h"

namespace clm::client {

WatchActiveSource::WatchActiveSource(std::shared_ptr<grpc::Channel> channel)
    : WatchActiveSource(std::move(channel), Options()) {}

WatchActiveSource::WatchActiveSource(std::shared_ptr<grpc::Channel> channel, Options options)
    : stub_(clm::v1::Deployment::NewStub(std::move(channel))), options_(std::move(options)) {}

WatchActiveSource::~WatchActiveSource() { Stop(); }

absl::Status WatchActiveSource::Start(UpdateFn on_update) {
  if (!on_update) return absl::InvalidArgumentError("on_update: must be set");
  absl::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("the source was already started");
  started_ = true;
  on_update_ = std::move(on_update);
  reader_ = std::thread([this] { ReadLoop(); });
  return absl::OkStatus();
}

void WatchActiveSource::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    // The reader blocks in Read: cancelling its call ends the read at once.
    if (call_ != nullptr) call_->TryCancel();
  }
  if (reader_.joinable()) reader_.join();
}

WatchActiveSource::Stats WatchActiveSource::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

bool WatchActiveSource::Backoff(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), delay);
  return !stopping_;
}

void WatchActiveSource::ReadLoop() {
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  absl::Duration backoff = options_.initial_backoff;
  bool first_stream = true;
  for (;;) {
    grpc::ClientContext context;
    ApplyMetadata(options_.metadata, &context);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      call_ = &context;
      if (!first_stream) ++stats_.reconnects;
    }
    first_stream = false;
    std::unique_ptr<grpc::ClientReader<clm::v1::ActiveCalibration>> reader =
        stub_->WatchActive(&context, clm::v1::WatchActiveRequest());
    clm::v1::ActiveCalibration active;
    while (reader->Read(&active)) {
      backoff = options_.initial_backoff;  // the stream works: the next failure starts over
      const bool has_map = active.production_version() != 0 && active.has_production_map();
      // The global map and the symbol and model maps together: a change to any of them is a change.
      std::string map_bytes;
      if (has_map) {
        map_bytes = active.production_map().SerializeAsString();
        for (const auto* slices : {&active.symbol_maps(), &active.model_maps()}) {
          for (const clm::v1::SliceMap& slice : *slices) map_bytes += slice.SerializeAsString();
        }
      }
      CalibrationUpdate update;
      bool deliver = false;
      {
        absl::MutexLock lock(&mu_);
        ++stats_.received;
        stats_.connected = true;
        deliver = !have_state_ || stats_.production_version != active.production_version() ||
                  last_production_map_ != map_bytes;
        stats_.production_version = active.production_version();
        stats_.sequence = active.sequence();
        if (deliver) {
          have_state_ = true;
          last_production_map_ = map_bytes;
          update.version = ++stats_.delivered;
        }
      }
      if (!deliver) continue;
      if (has_map) {
        update.map = active.production_map();
        update.symbol_maps.assign(active.symbol_maps().begin(), active.symbol_maps().end());
        update.model_maps.assign(active.model_maps().begin(), active.model_maps().end());
      }
      update.label = has_map ? absl::StrCat("production v", active.production_version(), " (sequence ",
                                            active.sequence(), ")")
                             : absl::StrCat("no calibration (sequence ", active.sequence(), ")");
      on_update_(update);
    }
    grpc::Status status = reader->Finish();
    {
      absl::MutexLock lock(&mu_);
      call_ = nullptr;
      stats_.connected = false;
      if (stopping_) return;
      stats_.last_error = status.ok() ? "OK: the server ended the stream"
                                      : absl::StrCat(absl::StatusCodeToString(
                                                         static_cast<absl::StatusCode>(status.error_code())),
                                                     ": ", status.error_message());
    }
    if (!Backoff(backoff * jitter(rng))) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

}  // namespace clm::client
