#include "server/trade_ingest_service.h"

#include <deque>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "lib/store/sqlite_trade_store.h"
#include "server/grpc_status.h"
#include "server/unary_call.h"

namespace clm::server {
namespace {

using clm::v1::IngestAck;
using clm::v1::IngestRequest;

absl::StatusOr<store::DatasetQuery> ToQuery(const clm::v1::DatasetFilter& filter) {
  store::DatasetQuery query;
  query.symbol = filter.symbol();
  query.model_id = filter.model_id();
  if (filter.has_closed_from()) query.closed_from_ns = store::ToNanos(filter.closed_from());
  if (filter.has_closed_to()) query.closed_to_ns = store::ToNanos(filter.closed_to());
  if (query.closed_from_ns && query.closed_to_ns && *query.closed_from_ns >= *query.closed_to_ns) {
    return absl::InvalidArgumentError("filter.closed_to: must be after filter.closed_from");
  }
  return query;
}

}  // namespace

// One Ingest stream. Reads a batch, submits it, and reads the next while fewer than
// max_inflight_batches_per_stream are unanswered: a slow store slows the client down (backpressure) instead
// of growing memory. Acks are written one at a time, in order, as the writer commits.
//
// Lifetime: the reactor finishes only when no pipeline callback for it is outstanding, so a callback never
// runs on a deleted reactor; OnDone deletes it.
class TradeIngestService::IngestReactor final : public grpc::ServerBidiReactor<IngestRequest, IngestAck> {
 public:
  IngestReactor(TradeIngestService* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context), start_(absl::Now()) {
    service_->metrics_->ingest_streams_open().Increment();
    {
      absl::MutexLock lock(&service_->streams_mu_);
      service_->streams_.insert(this);
      if (service_->draining_) draining_ = true;
    }
    absl::MutexLock lock(&mu_);
    if (draining_) {
      MaybeFinishLocked();
      return;
    }
    read_outstanding_ = true;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    read_outstanding_ = false;
    if (finished_) return;
    if (!ok) {  // the client half-closed (or went away: OnCancel says so)
      done_reading_ = true;
      MaybeFinishLocked();
      return;
    }
    if (outcome_.has_value()) return;  // already failing: read nothing more
    ++in_pipeline_;
    absl::Status submitted = service_->pipeline_->Submit(
        request_.batch_id(), request_.mutable_trades(),
        [this](absl::StatusOr<IngestAck> ack) { OnAck(std::move(ack)); });
    if (!submitted.ok()) {
      --in_pipeline_;
      Fail(ToGrpcStatus(absl::Status(submitted.code(), absl::StrCat("batch ", request_.batch_id(), ": ",
                                                                    submitted.message()))));
      return;
    }
    MaybeReadLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    to_write_.pop_front();
    if (!ok) {
      Fail(grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped receiving acks"));
      return;
    }
    MaybeWriteLocked();
    MaybeReadLocked();
    MaybeFinishLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    Fail(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the stream"));
  }

  void Drain() {
    absl::MutexLock lock(&mu_);
    draining_ = true;
    MaybeFinishLocked();
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&service_->streams_mu_);
      service_->streams_.erase(this);
    }
    service_->metrics_->ingest_streams_open().Decrement();
    grpc::Status final_status;
    {
      // OnCancel may have run on another gRPC thread just before; gRPC orders it before OnDone, but only
      // this lock shows that order to the thread that reads the status and deletes what OnCancel wrote.
      absl::MutexLock lock(&mu_);
      final_status = final_status_;
    }
    service_->ingest_metrics_.Record(final_status, absl::Now() - start_);
    delete this;
  }

 private:
  // Runs on the ingest writer thread.
  void OnAck(absl::StatusOr<IngestAck> ack) {
    absl::MutexLock lock(&mu_);
    --in_pipeline_;
    if (!ack.ok()) {
      Fail(ToGrpcStatus(ack.status()));
      return;
    }
    if (!outcome_.has_value() || outcome_->ok()) {
      to_write_.push_back(std::move(*ack));
      MaybeWriteLocked();
    }
    MaybeFinishLocked();
  }

  // First failure wins; unanswered batches are simply not acknowledged, so the client resends them.
  void Fail(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!outcome_.has_value() || outcome_->ok()) outcome_ = status;
    MaybeFinishLocked();
  }

  void MaybeReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (read_outstanding_ || done_reading_ || finished_ || draining_ || outcome_.has_value()) return;
    if (in_pipeline_ + to_write_.size() >= service_->options_.max_inflight_batches_per_stream) return;
    read_outstanding_ = true;
    StartRead(&request_);
  }

  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || to_write_.empty() || finished_) return;
    if (outcome_.has_value() && !outcome_->ok()) return;
    writing_ = true;
    StartWrite(&to_write_.front());
  }

  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || in_pipeline_ > 0 || writing_) return;
    bool failing = outcome_.has_value() && !outcome_->ok();
    if (!failing && !to_write_.empty()) return;
    if (!failing && !done_reading_ && !draining_) return;
    finished_ = true;
    // The slot is free once the stream is decided, before the client can see the status: an engine that
    // reconnects right after its stream ended must not be refused for its own old stream.
    service_->open_streams_.fetch_sub(1);
    if (failing) {
      final_status_ = *outcome_;
    } else if (done_reading_) {
      final_status_ = grpc::Status::OK;
    } else {
      final_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                   "the server is shutting down; every acknowledged batch is stored, resend the rest");
    }
    Finish(final_status_);
  }

  TradeIngestService* const service_;
  grpc::CallbackServerContext* const context_;
  const absl::Time start_;
  IngestRequest request_;  // only touched by the one outstanding read and OnReadDone

  absl::Mutex mu_;
  int in_pipeline_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<IngestAck> to_write_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool done_reading_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> outcome_ ABSL_GUARDED_BY(mu_);
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);  // written before Finish, read in OnDone
};

TradeIngestService::TradeIngestService(const Options& options, ingest::IngestPipeline* pipeline,
                                       store::TradeStore* store, ThreadPool* query_pool, Metrics* metrics)
    : options_(options),
      pipeline_(pipeline),
      store_(store),
      query_pool_(query_pool),
      metrics_(metrics),
      ingest_metrics_(metrics->Method("/clm.v1.TradeIngest/Ingest")),
      record_metrics_(metrics->Method("/clm.v1.TradeIngest/Record")),
      summary_metrics_(metrics->Method("/clm.v1.TradeIngest/GetDatasetSummary")),
      dead_letters_metrics_(metrics->Method("/clm.v1.TradeIngest/ListDeadLetters")) {}

void TradeIngestService::DrainStreams() {
  absl::MutexLock lock(&streams_mu_);
  draining_ = true;
  for (IngestReactor* reactor : streams_) reactor->Drain();
}

grpc::ServerBidiReactor<IngestRequest, IngestAck>* TradeIngestService::Ingest(grpc::CallbackServerContext* context) {
  if (open_streams_.fetch_add(1) >= options_.max_ingest_streams) {
    open_streams_.fetch_sub(1);
    metrics_->ingest_streams_refused().Increment();
    // A reactor that refuses at once; the client retries with backoff.
    class Refuse final : public grpc::ServerBidiReactor<IngestRequest, IngestAck> {
     public:
      Refuse(MethodMetrics& metrics, uint32_t limit) : metrics_(metrics) {
        status_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               absl::StrCat("too many ingest streams open (max_ingest_streams=", limit,
                                            "); retry with backoff or share one stream"));
        Finish(status_);
      }
      void OnDone() override {
        metrics_.Record(status_, absl::ZeroDuration());
        delete this;
      }

     private:
      MethodMetrics& metrics_;
      grpc::Status status_;
    };
    return new Refuse(ingest_metrics_, options_.max_ingest_streams);
  }
  return new IngestReactor(this, context);
}

grpc::ServerUnaryReactor* TradeIngestService::Record(grpc::CallbackServerContext* context,
                                                     const clm::v1::RecordRequest* request,
                                                     IngestAck* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The request is const and owned by gRPC: the pipeline takes its own copy of the trades.
  google::protobuf::RepeatedPtrField<clm::v1::TradeOutcome> trades = request->trades();
  absl::Status submitted = pipeline_->Submit(
      request->batch_id(), &trades, [this, reactor, response, start](absl::StatusOr<IngestAck> ack) {
        if (ack.ok()) *response = std::move(*ack);
        FinishUnary(reactor, record_metrics_, start, ToGrpcStatus(ack.status()));
      });
  if (!submitted.ok()) FinishUnary(reactor, record_metrics_, start, ToGrpcStatus(submitted));
  return reactor;
}

grpc::ServerUnaryReactor* TradeIngestService::GetDatasetSummary(grpc::CallbackServerContext* context,
                                                                const clm::v1::GetDatasetSummaryRequest* request,
                                                                clm::v1::DatasetSummary* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<store::DatasetQuery> query = ToQuery(request->filter());
  if (!query.ok()) {
    FinishUnary(reactor, summary_metrics_, start, ToGrpcStatus(query.status()));
    return reactor;
  }
  AnswerOnPool(query_pool_, reactor, summary_metrics_, response,
               [this, query = *query] { return store_->Summarize(query); });
  return reactor;
}

grpc::ServerUnaryReactor* TradeIngestService::ListDeadLetters(grpc::CallbackServerContext* context,
                                                              const clm::v1::ListDeadLettersRequest* request,
                                                              clm::v1::ListDeadLettersResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (request->limit() > 1000) {
    FinishUnary(reactor, dead_letters_metrics_, start,
                grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             absl::StrCat("limit: must be at most 1000, got ", request->limit())));
    return reactor;
  }
  uint32_t limit = request->limit() == 0 ? 100 : request->limit();
  uint64_t before_id = request->before_id();
  AnswerOnPool(query_pool_, reactor, dead_letters_metrics_, response,
               [this, limit, before_id] { return store_->ListDeadLetters(limit, before_id); });
  return reactor;
}

}  // namespace clm::server
