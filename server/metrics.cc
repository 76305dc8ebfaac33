#include "server/metrics.h"

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace clm::server {
namespace {

// Reason classes for rejected trades: the validated fields plus "conflict". A bounded set, as labels must be.
constexpr const char* kRejectReasons[] = {"trade_id", "symbol", "model_id", "confidence", "outcome",
                                          "pnl", "closed_at", "opened_at", "side", "model_confidences",
                                          "conflict", "other"};

const char* kCodeNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                            "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                            "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                            "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return *buckets;
}

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  requests_family_ = &prometheus::BuildCounter()
                          .Name("clm_grpc_requests_total")
                          .Help("gRPC calls handled, by method and status code")
                          .Register(*registry_);
  latency_family_ = &prometheus::BuildHistogram()
                         .Name("clm_grpc_request_duration_seconds")
                         .Help("gRPC call duration by method (whole stream for streaming methods)")
                         .Register(*registry_);

  auto& trades = prometheus::BuildCounter()
                     .Name("clm_ingest_trades_total")
                     .Help("Trades received, by result: accepted (newly stored) or duplicate (already stored)")
                     .Register(*registry_);
  trades_accepted_ = &trades.Add({{"result", "accepted"}});
  trades_duplicate_ = &trades.Add({{"result", "duplicate"}});
  trades_rejected_family_ = &prometheus::BuildCounter()
                                 .Name("clm_ingest_trades_rejected_total")
                                 .Help("Trades rejected and dead-lettered, by reason class (field or conflict)")
                                 .Register(*registry_);
  for (const char* reason : kRejectReasons) {
    trades_rejected_[reason] = &trades_rejected_family_->Add({{"reason", reason}});
  }
  auto& batches = prometheus::BuildCounter()
                      .Name("clm_ingest_batches_total")
                      .Help("Ingest batches answered, by result: committed or failed (nothing stored)")
                      .Register(*registry_);
  batches_committed_ = &batches.Add({{"result", "committed"}});
  batches_failed_ = &batches.Add({{"result", "failed"}});
  auto& commits = prometheus::BuildCounter()
                      .Name("clm_store_commits_total")
                      .Help("Group-commit transactions, by result")
                      .Register(*registry_);
  commits_ok_ = &commits.Add({{"result", "ok"}});
  commits_failed_ = &commits.Add({{"result", "failed"}});
  commit_seconds_ = &prometheus::BuildHistogram()
                         .Name("clm_store_commit_duration_seconds")
                         .Help("Time to write and durably commit one group of batches (fsync included)")
                         .Register(*registry_)
                         .Add({}, LatencyBuckets());
  commit_batches_ = &prometheus::BuildHistogram()
                         .Name("clm_store_commit_batches")
                         .Help("Batches per group commit")
                         .Register(*registry_)
                         .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256});
  ingest_streams_open_ = &prometheus::BuildGauge()
                              .Name("clm_ingest_streams_open")
                              .Help("Ingest streams currently open")
                              .Register(*registry_)
                              .Add({});
  ingest_streams_refused_ = &prometheus::BuildCounter()
                                 .Name("clm_ingest_streams_refused_total")
                                 .Help("Ingest streams refused because max_ingest_streams were open")
                                 .Register(*registry_)
                                 .Add({});
  store_size_bytes_ = &prometheus::BuildGauge()
                           .Name("clm_store_size_bytes")
                           .Help("Bytes the store occupies on disk (database and write-ahead log)")
                           .Register(*registry_)
                           .Add({});
  ingest_queue_trades_ = &prometheus::BuildGauge()
                              .Name("clm_ingest_queue_trades")
                              .Help("Trades validated and waiting for the writer")
                              .Register(*registry_)
                              .Add({});
  auto& store_errors = prometheus::BuildCounter()
                           .Name("clm_store_errors_total")
                           .Help("Storage faults on any store connection, by kind: disk_full, io_error, busy "
                                 "(the write lock stayed taken beyond the busy timeout)")
                           .Register(*registry_);
  store_errors_disk_full_ = &store_errors.Add({{"kind", "disk_full"}});
  store_errors_io_error_ = &store_errors.Add({{"kind", "io_error"}});
  store_errors_busy_ = &store_errors.Add({{"kind", "busy"}});
  store_healthy_ = &prometheus::BuildGauge()
                        .Name("clm_store_healthy")
                        .Help("1 while the store takes writes, 0 after a storage fault that its probe confirms "
                              "(gRPC health is NOT_SERVING meanwhile)")
                        .Register(*registry_)
                        .Add({});
  store_healthy_->Set(1);
}

void Metrics::OnStoreFault(store::StorageFault fault) {
  switch (fault) {
    case store::StorageFault::kDiskFull: store_errors_disk_full_->Increment(); break;
    case store::StorageFault::kIoError: store_errors_io_error_->Increment(); break;
    case store::StorageFault::kBusy: store_errors_busy_->Increment(); break;
    case store::StorageFault::kNone: break;
  }
}

absl::StatusOr<int> Metrics::StartExposer(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics_address ", address, ": cannot listen: ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

MethodMetrics& Metrics::Method(const std::string& full_method) {
  auto& slot = methods_[full_method];
  if (slot == nullptr) {
    slot = std::make_unique<MethodMetrics>();
    slot->method_ = full_method;
    for (int code = 0; code < MethodMetrics::kCodes; ++code) {
      slot->by_code_[code] = &requests_family_->Add({{"method", full_method}, {"code", kCodeNames[code]}});
    }
    slot->latency_ = &latency_family_->Add({{"method", full_method}}, LatencyBuckets());
  }
  return *slot;
}

void Metrics::OnCommit(const ingest::CommitStats& stats) {
  commit_seconds_->Observe(absl::ToDoubleSeconds(stats.latency));
  commit_batches_->Observe(static_cast<double>(stats.batches));
  if (!stats.ok) {
    commits_failed_->Increment();
    batches_failed_->Increment(static_cast<double>(stats.batches));
    return;
  }
  commits_ok_->Increment();
  batches_committed_->Increment(static_cast<double>(stats.batches));
  trades_accepted_->Increment(static_cast<double>(stats.accepted));
  trades_duplicate_->Increment(static_cast<double>(stats.duplicates));
  for (const auto& [reason, count] : stats.rejected_by_reason) {
    auto it = trades_rejected_.find(reason);
    if (it == trades_rejected_.end()) it = trades_rejected_.find("other");
    it->second->Increment(static_cast<double>(count));
  }
}

}  // namespace clm::server
