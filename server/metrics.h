#ifndef CLM_SERVER_METRICS_H_
#define CLM_SERVER_METRICS_H_

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "lib/ingest/ingest_pipeline.h"
#include "lib/store/sqlite.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace clm::server {

// Request count and latency of one gRPC method, resolved once so the hot path never touches a Family.
class MethodMetrics final {
 public:
  void Record(const grpc::Status& status, absl::Duration elapsed) {
    int code = static_cast<int>(status.error_code());
    if (code < 0 || code >= kCodes) code = grpc::StatusCode::UNKNOWN;
    by_code_[code]->Increment();
    latency_->Observe(absl::ToDoubleSeconds(elapsed));
  }
  // The full method name, e.g. "/clm.v1.TradeIngest/Record".
  const std::string& method() const { return method_; }

 private:
  friend class Metrics;
  std::string method_;
  static constexpr int kCodes = 17;
  std::array<prometheus::Counter*, kCodes> by_code_{};
  prometheus::Histogram* latency_ = nullptr;
};

// Owns the Prometheus registry, every metric family, and the /metrics endpoint. Metric names are part of
// the interface: dashboards and alert rules in deploy/ are written against them.
class Metrics final : public ingest::IngestObserver {
 public:
  Metrics();

  // Serves /metrics on `address` ("host:port"; port 0 picks a free one). Returns the bound port.
  absl::StatusOr<int> StartExposer(const std::string& address);

  // Handles for one method, e.g. "/clm.v1.TradeIngest/Record". Call at service construction, not per call.
  MethodMetrics& Method(const std::string& full_method);

  // Ingest.
  void OnCommit(const ingest::CommitStats& stats) override;
  prometheus::Gauge& ingest_streams_open() { return *ingest_streams_open_; }
  prometheus::Counter& ingest_streams_refused() { return *ingest_streams_refused_; }
  // Sampled on every commit and by housekeeping.
  void SetStoreSizeBytes(double bytes) { store_size_bytes_->Set(bytes); }
  void SetIngestQueueTrades(double trades) { ingest_queue_trades_->Set(trades); }
  // Storage faults by kind, and whether the store takes writes (StoreHealth).
  void OnStoreFault(store::StorageFault fault);
  void SetStoreHealthy(bool healthy) { store_healthy_->Set(healthy ? 1 : 0); }

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;

  prometheus::Family<prometheus::Counter>* requests_family_;
  prometheus::Family<prometheus::Histogram>* latency_family_;
  std::map<std::string, std::unique_ptr<MethodMetrics>> methods_;

  prometheus::Counter* trades_accepted_;
  prometheus::Counter* trades_duplicate_;
  prometheus::Family<prometheus::Counter>* trades_rejected_family_;
  std::map<std::string, prometheus::Counter*> trades_rejected_;
  prometheus::Counter* batches_committed_;
  prometheus::Counter* batches_failed_;
  prometheus::Counter* commits_ok_;
  prometheus::Counter* commits_failed_;
  prometheus::Histogram* commit_seconds_;
  prometheus::Histogram* commit_batches_;
  prometheus::Gauge* ingest_streams_open_;
  prometheus::Counter* ingest_streams_refused_;
  prometheus::Gauge* store_size_bytes_;
  prometheus::Gauge* ingest_queue_trades_;
  prometheus::Counter* store_errors_disk_full_;
  prometheus::Counter* store_errors_io_error_;
  prometheus::Counter* store_errors_busy_;
  prometheus::Gauge* store_healthy_;
};

}  // namespace clm::server

#endif  // CLM_SERVER_METRICS_H_
