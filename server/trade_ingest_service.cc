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
// max_inflight_batches_per_stream are unanswered and the service's byte budget (max_inflight_bytes, over all
// streams) is not spent: a slow store, or a client that does not read its acks, slows the client down
// (backpressure) instead of growing memory. Acks are written one at a time, in order, as the writer commits.
// A stream stopped by the budget parks and is resumed when any commit frees bytes.
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
    TradeIngestService* const service = service_;  // `this` may be gone once mu_ is released
    uint64_t refund = 0;
    {
      absl::MutexLock lock(&mu_);
      refund = ReadDoneLocked(ok);
    }
    // A refused batch's bytes were charged for a moment: a stream may have parked on them.
    if (refund > 0) service->Release(refund);
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

  // The byte budget has room again (called with the service's streams_mu_ held, so this reactor is alive).
  void Resume() {
    absl::MutexLock lock(&mu_);
    parked_ = false;
    MaybeReadLocked();
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&service_->streams_mu_);
      service_->streams_.erase(this);
      absl::MutexLock parked_lock(&service_->parked_mu_);
      service_->parked_.erase(this);
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
  // Returns the bytes to give back to the budget when the batch was refused.
  uint64_t ReadDoneLocked(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    read_outstanding_ = false;
    if (finished_) return 0;
    if (!ok) {  // the client half-closed (or went away: OnCancel says so)
      done_reading_ = true;
      MaybeFinishLocked();
      return 0;
    }
    if (outcome_.has_value()) return 0;  // already failing: read nothing more
    ++in_pipeline_;
    // Charged before Submit: the ack that releases it may come before Submit returns.
    const uint64_t bytes = request_.ByteSizeLong();
    pipeline_bytes_.push_back(bytes);
    service_->Charge(bytes);
    absl::Status submitted = service_->pipeline_->Submit(
        request_.batch_id(), request_.mutable_trades(),
        [this](absl::StatusOr<IngestAck> ack) { OnAck(std::move(ack)); });
    if (!submitted.ok()) {
      --in_pipeline_;
      pipeline_bytes_.pop_back();
      Fail(ToGrpcStatus(absl::Status(submitted.code(), absl::StrCat("batch ", request_.batch_id(), ": ",
                                                                    submitted.message()))));
      return bytes;
    }
    MaybeReadLocked();
    return 0;
  }

  // Runs on the ingest writer thread. The pipeline answers a stream's batches in submission order, so this
  // ack is for the oldest batch in pipeline_bytes_.
  void OnAck(absl::StatusOr<IngestAck> ack) {
    TradeIngestService* const service = service_;  // `this` may be gone once mu_ is released
    uint64_t bytes = 0;
    {
      absl::MutexLock lock(&mu_);
      --in_pipeline_;
      bytes = pipeline_bytes_.front();
      pipeline_bytes_.pop_front();
      if (!ack.ok()) {
        Fail(ToGrpcStatus(ack.status()));
      } else {
        if (!outcome_.has_value() || outcome_->ok()) {
          to_write_.push_back(std::move(*ack));
          MaybeWriteLocked();
        }
        MaybeFinishLocked();
      }
    }
    service->Release(bytes);
  }

  // First failure wins; unanswered batches are simply not acknowledged, so the client resends them.
  void Fail(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!outcome_.has_value() || outcome_->ok()) outcome_ = status;
    MaybeFinishLocked();
  }

  void MaybeReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (read_outstanding_ || done_reading_ || finished_ || draining_ || parked_ || outcome_.has_value()) return;
    if (in_pipeline_ + to_write_.size() >= service_->options_.max_inflight_batches_per_stream) return;
    if (service_->BudgetSpent()) {
      parked_ = service_->Park(this);
      if (parked_) return;
    }
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
  std::deque<uint64_t> pipeline_bytes_ ABSL_GUARDED_BY(mu_);  // charged bytes of each batch in the pipeline
  bool parked_ ABSL_GUARDED_BY(mu_) = false;                 // waiting for the byte budget
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
                                       store::TradeStore* store, ThreadPool* query_pool, Metrics* metrics,
                                       const Authenticator* auth)
    : options_(options),
      pipeline_(pipeline),
      store_(store),
      query_pool_(query_pool),
      metrics_(metrics),
      auth_(auth),
      ingest_metrics_(metrics->Method("/clm.v1.TradeIngest/Ingest")),
      record_metrics_(metrics->Method("/clm.v1.TradeIngest/Record")),
      summary_metrics_(metrics->Method("/clm.v1.TradeIngest/GetDatasetSummary")),
      dead_letters_metrics_(metrics->Method("/clm.v1.TradeIngest/ListDeadLetters")) {}

void TradeIngestService::Release(uint64_t bytes) {
  inflight_bytes_.fetch_sub(bytes);
  {
    // The common case, on every commit: nobody is parked. A stream parking after this check sees the room
    // freed above (Park checks again under parked_mu_).
    absl::MutexLock parked_lock(&parked_mu_);
    if (parked_.empty()) return;
  }
  // streams_mu_ keeps every parked reactor alive (OnDone leaves both sets under it before deleting).
  absl::MutexLock lock(&streams_mu_);
  absl::flat_hash_set<IngestReactor*> parked;
  {
    absl::MutexLock parked_lock(&parked_mu_);
    if (parked_.empty()) return;
    parked.swap(parked_);
  }
  for (IngestReactor* reactor : parked) reactor->Resume();
}

bool TradeIngestService::Park(IngestReactor* reactor) {
  absl::MutexLock lock(&parked_mu_);
  // Checked again under parked_mu_: a release that came after the caller's check either sees this reactor
  // parked and resumes it, or freed the room seen here.
  if (!BudgetSpent()) return false;
  parked_.insert(reactor);
  return true;
}

void TradeIngestService::DrainStreams() {
  absl::MutexLock lock(&streams_mu_);
  draining_ = true;
  for (IngestReactor* reactor : streams_) reactor->Drain();
}

grpc::ServerBidiReactor<IngestRequest, IngestAck>* TradeIngestService::Ingest(grpc::CallbackServerContext* context) {
  if (absl::StatusOr<auth::Principal> caller = auth_->Check(*context, ingest_metrics_.method()); !caller.ok()) {
    return new RefusedBidi<IngestRequest, IngestAck>(ingest_metrics_, ToGrpcStatus(caller.status()));
  }
  if (open_streams_.fetch_add(1) >= options_.max_ingest_streams) {
    open_streams_.fetch_sub(1);
    metrics_->ingest_streams_refused().Increment();
    // Refused at once; the client retries with backoff.
    return new RefusedBidi<IngestRequest, IngestAck>(
        ingest_metrics_, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                      absl::StrCat("too many ingest streams open (max_ingest_streams=",
                                                   options_.max_ingest_streams,
                                                   "); retry with backoff or share one stream")));
  }
  return new IngestReactor(this, context);
}

grpc::ServerUnaryReactor* TradeIngestService::Record(grpc::CallbackServerContext* context,
                                                     const clm::v1::RecordRequest* request,
                                                     IngestAck* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(*auth_, context, reactor, record_metrics_)) return reactor;
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
  if (!Admit(*auth_, context, reactor, summary_metrics_)) return reactor;
  absl::StatusOr<store::DatasetQuery> query = ToQuery(request->filter());
  if (!query.ok()) {
    FinishUnary(reactor, summary_metrics_, start, ToGrpcStatus(query.status()));
    return reactor;
  }
  // A summary of a big store is a long scan: it stops once the caller's deadline passes or the caller leaves.
  query->stop = StopWhenCallEnds(context);
  AnswerOnPool(query_pool_, context, reactor, summary_metrics_, response,
               [this, query = *std::move(query)] { return store_->Summarize(query); });
  return reactor;
}

grpc::ServerUnaryReactor* TradeIngestService::ListDeadLetters(grpc::CallbackServerContext* context,
                                                              const clm::v1::ListDeadLettersRequest* request,
                                                              clm::v1::ListDeadLettersResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(*auth_, context, reactor, dead_letters_metrics_)) return reactor;
  if (request->limit() > 1000) {
    FinishUnary(reactor, dead_letters_metrics_, start,
                grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             absl::StrCat("limit: must be at most 1000, got ", request->limit())));
    return reactor;
  }
  uint32_t limit = request->limit() == 0 ? 100 : request->limit();
  uint64_t before_id = request->before_id();
  AnswerOnPool(query_pool_, context, reactor, dead_letters_metrics_, response,
               [this, limit, before_id] { return store_->ListDeadLetters(limit, before_id); });
  return reactor;
}

}  // namespace clm::server
