#ifndef CLM_SERVER_TRADE_INGEST_SERVICE_H_
#define CLM_SERVER_TRADE_INGEST_SERVICE_H_

#include <atomic>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "lib/common/thread_pool.h"
#include "lib/ingest/ingest_pipeline.h"
#include "lib/store/trade_store.h"
#include "server/auth.h"
#include "server/metrics.h"

namespace clm::server {

// clm.v1.TradeIngest over the callback API. Handlers never block: trades go to the ingest pipeline's writer,
// queries to the query pool; acks are written as the writer commits.
class TradeIngestService final : public clm::v1::TradeIngest::CallbackService {
 public:
  struct Options {
    uint32_t max_inflight_batches_per_stream = 16;
    uint32_t max_ingest_streams = 64;
    // Bytes of received batches not yet committed, over all streams: at or above it no stream reads more.
    uint64_t max_inflight_bytes = 256ULL << 20;
  };
  TradeIngestService(const Options& options, ingest::IngestPipeline* pipeline, store::TradeStore* store,
                     ThreadPool* query_pool, Metrics* metrics, const Authenticator* auth);

  // Asks every open Ingest stream to finish: no more reads, acks for what was received are still written,
  // then the stream ends with UNAVAILABLE so the engine reconnects. Called once, at shutdown.
  void DrainStreams();

  grpc::ServerBidiReactor<clm::v1::IngestRequest, clm::v1::IngestAck>* Ingest(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Record(grpc::CallbackServerContext* context, const clm::v1::RecordRequest* request,
                                   clm::v1::IngestAck* response) override;
  grpc::ServerUnaryReactor* GetDatasetSummary(grpc::CallbackServerContext* context,
                                              const clm::v1::GetDatasetSummaryRequest* request,
                                              clm::v1::DatasetSummary* response) override;
  grpc::ServerUnaryReactor* ListDeadLetters(grpc::CallbackServerContext* context,
                                            const clm::v1::ListDeadLettersRequest* request,
                                            clm::v1::ListDeadLettersResponse* response) override;

 private:
  class IngestReactor;

  // The shared byte budget. A stream that finds it spent parks; every release wakes the parked streams.
  bool BudgetSpent() const { return inflight_bytes_.load() >= options_.max_inflight_bytes; }
  void Charge(uint64_t bytes) { inflight_bytes_.fetch_add(bytes); }
  // Must be called without holding any reactor's lock.
  void Release(uint64_t bytes);
  // Under the reactor's lock: false when the budget had room after all (then the reactor reads on).
  bool Park(IngestReactor* reactor);

  const Options options_;
  ingest::IngestPipeline* const pipeline_;
  store::TradeStore* const store_;
  ThreadPool* const query_pool_;
  Metrics* const metrics_;
  const Authenticator* const auth_;
  std::atomic<uint32_t> open_streams_{0};
  absl::Mutex streams_mu_;
  absl::flat_hash_set<IngestReactor*> streams_ ABSL_GUARDED_BY(streams_mu_);
  bool draining_ ABSL_GUARDED_BY(streams_mu_) = false;
  std::atomic<uint64_t> inflight_bytes_{0};
  // Lock order: streams_mu_, then a reactor's lock, then parked_mu_.
  absl::Mutex parked_mu_ ABSL_ACQUIRED_AFTER(streams_mu_);
  absl::flat_hash_set<IngestReactor*> parked_ ABSL_GUARDED_BY(parked_mu_);
  MethodMetrics& ingest_metrics_;
  MethodMetrics& record_metrics_;
  MethodMetrics& summary_metrics_;
  MethodMetrics& dead_letters_metrics_;
};

}  // namespace clm::server

#endif  // CLM_SERVER_TRADE_INGEST_SERVICE_H_
