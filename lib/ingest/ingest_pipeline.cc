#include "lib/ingest/ingest_pipeline.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/ingest/validation.h"

namespace clm::ingest {
namespace {

absl::Status ShuttingDown() {
  return absl::UnavailableError("the server is shutting down; resend this batch to another instance or later");
}

}  // namespace

IngestPipeline::IngestPipeline(store::TradeStore* store, const Options& options, IngestObserver* observer)
    : store_(store), options_(options), observer_(observer), writer_([this] { WriterLoop(); }) {}

IngestPipeline::~IngestPipeline() { Stop(); }

absl::Status IngestPipeline::Submit(uint64_t batch_id,
                                    google::protobuf::RepeatedPtrField<clm::v1::TradeOutcome>* trades,
                                    Done done) {
  if (trades->empty()) return absl::InvalidArgumentError("trades: a batch must hold at least one trade");
  if (trades->size() > static_cast<int>(options_.max_batch_trades)) {
    return absl::InvalidArgumentError(absl::StrCat("trades: a batch may hold at most ", options_.max_batch_trades,
                                                   " trades, got ", trades->size()));
  }
  {
    // Checked before the trades are taken, so a refused caller still holds its batch to resend.
    absl::MutexLock lock(&mu_);
    if (stopping_) return ShuttingDown();
  }
  Item item;
  item.batch.batch_id = batch_id;
  item.done = std::move(done);
  const absl::Time now = absl::Now();
  const size_t n = static_cast<size_t>(trades->size());
  item.batch.trades.reserve(n);
  item.batch.indices.reserve(n);
  item.batch.content_hashes.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    clm::v1::TradeOutcome& trade = (*trades)[static_cast<int>(i)];
    if (std::optional<FieldError> error = ValidateTrade(trade, now, options_.future_tolerance)) {
      store::Rejection& r = item.batch.rejected.emplace_back();
      r.index = static_cast<uint32_t>(i);
      r.trade_id = trade.trade_id();
      r.field = std::move(error->field);
      r.reason = std::move(error->reason);
      trade.SerializeToString(&r.payload);
      continue;
    }
    Canonicalize(trade);
    item.batch.content_hashes.push_back(ContentHash(trade));
    item.batch.indices.push_back(static_cast<uint32_t>(i));
    item.batch.trades.push_back(std::move(trade));
  }
  absl::MutexLock lock(&mu_);
  if (stopping_) return ShuttingDown();
  queued_trades_ += n;
  queue_.push_back(std::move(item));
  return absl::OkStatus();
}

void IngestPipeline::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !writer_.joinable()) return;
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
}

size_t IngestPipeline::QueuedTrades() const {
  absl::MutexLock lock(&mu_);
  return queued_trades_;
}

void IngestPipeline::WriterLoop() {
  std::vector<Item> group;
  while (true) {
    group.clear();
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](IngestPipeline* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping and drained
      size_t trades = 0;
      // Always take at least one batch; then fill the group up to the trade limit.
      while (!queue_.empty() &&
             (group.empty() || trades + queue_.front().batch.trades.size() <= options_.max_group_trades)) {
        trades += queue_.front().batch.trades.size() + queue_.front().batch.rejected.size();
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_trades_ -= trades;
    }
    CommitGroup(group);
  }
}

void IngestPipeline::CommitGroup(std::vector<Item>& group) {
  std::vector<store::PendingBatch*> batches;
  batches.reserve(group.size());
  for (Item& item : group) batches.push_back(&item.batch);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<store::BatchResult>> results =
      store_->WriteBatches(absl::MakeConstSpan(batches), absl::ToUnixNanos(start));
  CommitStats stats;
  stats.latency = absl::Now() - start;
  stats.batches = group.size();
  stats.ok = results.ok();
  std::map<std::string, uint64_t> rejected;
  if (results.ok()) {
    for (size_t i = 0; i < group.size(); ++i) {
      stats.accepted += (*results)[i].accepted;
      for (uint32_t position : (*results)[i].accepted_positions) {
        stats.accepted_trades.push_back(&group[i].batch.trades[position]);
      }
      stats.duplicates += (*results)[i].duplicates;
      for (const store::Rejection& r : group[i].batch.rejected) {
        // Map keys appear in the field ("model_confidences[xgboost]"): class them under the field itself.
        ++rejected[absl::StartsWith(r.field, "model_confidences") ? std::string("model_confidences") : r.field];
      }
      rejected["conflict"] += (*results)[i].conflicts.size();
    }
    for (auto& [reason, count] : rejected) {
      if (count > 0) stats.rejected_by_reason.emplace_back(reason, count);
    }
  }
  if (observer_ != nullptr) observer_->OnCommit(stats);

  for (size_t i = 0; i < group.size(); ++i) {
    Item& item = group[i];
    if (!results.ok()) {
      item.done(absl::Status(results.status().code(),
                             absl::StrCat("batch ", item.batch.batch_id, " was not stored and may be resent: ",
                                          results.status().message())));
      continue;
    }
    store::BatchResult& result = (*results)[i];
    clm::v1::IngestAck ack;
    ack.set_batch_id(item.batch.batch_id);
    ack.set_accepted(result.accepted);
    ack.set_duplicates(result.duplicates);
    std::vector<store::Rejection*> all;
    for (store::Rejection& r : item.batch.rejected) all.push_back(&r);
    for (store::Rejection& r : result.conflicts) all.push_back(&r);
    std::sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->index < b->index; });
    for (store::Rejection* r : all) {
      clm::v1::RejectedTrade* out = ack.add_rejected();
      out->set_index(r->index);
      out->set_trade_id(std::move(r->trade_id));
      out->set_field(std::move(r->field));
      out->set_reason(std::move(r->reason));
    }
    item.done(std::move(ack));
  }
}

}  // namespace clm::ingest
