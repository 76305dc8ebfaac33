#include "client/lib/trade_streamer.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/lib/connection.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"

namespace clm::client {

using clm::v1::IngestAck;
using clm::v1::IngestRequest;
using clm::v1::RejectedTrade;
using clm::v1::TradeOutcome;

namespace {

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

}  // namespace

struct TradeStreamer::Stream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<IngestRequest, IngestAck>> rw;
  bool acked = false;  // at least one ack arrived: the stream was healthy (guarded by the streamer's mu_)
};

TradeStreamer::TradeStreamer(std::shared_ptr<grpc::Channel> channel, Options options)
    : channel_(std::move(channel)),
      stub_(clm::v1::TradeIngest::NewStub(channel_)),
      options_([&options] {
        Options o = std::move(options);
        o.max_batch_trades = std::max<size_t>(1, o.max_batch_trades);
        o.max_inflight_batches = std::max<size_t>(1, o.max_inflight_batches);
        o.max_buffered_trades = std::max<size_t>(1, o.max_buffered_trades);
        o.initial_backoff = std::max(o.initial_backoff, absl::Milliseconds(1));
        o.max_backoff = std::max(o.max_backoff, o.initial_backoff);
        return o;
      }()) {
  sender_ = std::thread(&TradeStreamer::SenderLoop, this);
}

TradeStreamer::~TradeStreamer() { Close(absl::ZeroDuration()).IgnoreError(); }

absl::Status TradeStreamer::Enqueue(TradeOutcome trade) {
  absl::MutexLock lock(&mu_);
  if (closing_) {
    ++stats_.refused;
    return absl::FailedPreconditionError("trade streamer is closed");
  }
  if (stats_.buffered >= options_.max_buffered_trades) {
    ++stats_.refused;
    return absl::ResourceExhaustedError(absl::StrCat("buffer full: ", stats_.buffered,
                                                     " trades not yet acknowledged (max_buffered_trades ",
                                                     options_.max_buffered_trades, ")"));
  }
  if (queued_.empty()) oldest_queued_at_ = absl::Now();
  queued_.push_back(std::move(trade));
  ++enqueued_seq_;
  ++stats_.enqueued;
  ++stats_.buffered;
  // The sender only needs waking when its plan changes: a linger timer starts, or a batch is full.
  if (queued_.size() == 1 || queued_.size() == options_.max_batch_trades) changed_.SignalAll();
  return absl::OkStatus();
}

uint64_t TradeStreamer::DoneSeqLocked() const {
  if (!unacked_.empty()) {
    const Batch& front = unacked_.front();
    return front.last_seq - static_cast<uint64_t>(front.request.trades_size());
  }
  return enqueued_seq_ - queued_.size();
}

bool TradeStreamer::ReadyToSendLocked() const {
  if (sent_on_stream_ >= options_.max_inflight_batches) return false;
  if (sent_on_stream_ < unacked_.size()) return true;  // a batch waits to be resent
  if (queued_.empty()) return false;
  return queued_.size() >= options_.max_batch_trades || flushers_ > 0 || closing_ ||
         absl::Now() >= oldest_queued_at_ + options_.max_linger;
}

absl::Status TradeStreamer::Flush(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  const uint64_t target = enqueued_seq_;
  ++flushers_;
  changed_.SignalAll();
  while (DoneSeqLocked() < target && absl::Now() < deadline) changed_.WaitWithDeadline(&mu_, deadline);
  --flushers_;
  if (DoneSeqLocked() >= target) return absl::OkStatus();
  std::string message = absl::StrCat("flush: ", stats_.buffered, " trades not yet acknowledged");
  if (!stats_.last_error.empty()) absl::StrAppend(&message, "; last stream error: ", stats_.last_error);
  return absl::DeadlineExceededError(message);
}

absl::Status TradeStreamer::Close(absl::Duration drain) {
  absl::MutexLock close_lock(&close_mu_);
  if (closed_) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    changed_.SignalAll();
  }
  absl::Status flushed = Flush(absl::Now() + drain);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (live_context_ != nullptr) live_context_->TryCancel();
    changed_.SignalAll();
  }
  sender_.join();
  closed_ = true;
  return flushed;
}

TradeStreamer::Stats TradeStreamer::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void TradeStreamer::SenderLoop() {
  std::minstd_rand rng(static_cast<uint32_t>(absl::ToUnixNanos(absl::Now())));
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  absl::Duration backoff = options_.initial_backoff;
  for (bool first = true;; first = false) {
    const bool healthy = RunStream(first);
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (healthy) backoff = options_.initial_backoff;
    const absl::Time wake = absl::Now() + backoff * jitter(rng);
    while (!stopping_ && absl::Now() < wake) changed_.WaitWithDeadline(&mu_, wake);
    if (stopping_) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

bool TradeStreamer::RunStream(bool first) {
  auto stream = std::make_unique<Stream>();
  ApplyMetadata(options_.metadata, &stream->context);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    live_context_ = &stream->context;  // Close cancels through it, even while the stream is opening
    stream_broken_ = false;
    sent_on_stream_ = 0;
    if (!first) ++stats_.reconnects;
  }
  stream->rw = stub_->Ingest(&stream->context);
  std::thread reader(&TradeStreamer::ReaderLoop, this, stream.get());

  for (;;) {
    IngestRequest to_send;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ && !stream_broken_ && !ReadyToSendLocked()) {
        const bool lingering = !queued_.empty() && sent_on_stream_ == unacked_.size() &&
                               sent_on_stream_ < options_.max_inflight_batches;
        if (lingering) {
          changed_.WaitWithDeadline(&mu_, oldest_queued_at_ + options_.max_linger);
        } else {
          changed_.Wait(&mu_);
        }
      }
      if (stopping_ || stream_broken_) break;
      if (sent_on_stream_ < unacked_.size()) {
        Batch& batch = unacked_[sent_on_stream_];
        ++stats_.resent_batches;
        stats_.resent_trades += static_cast<uint64_t>(batch.request.trades_size());
        to_send = batch.request;
      } else {
        Batch batch;
        batch.request.set_batch_id(next_batch_id_++);
        const size_t n = std::min(queued_.size(), options_.max_batch_trades);
        batch.request.mutable_trades()->Reserve(static_cast<int>(n));
        for (size_t i = 0; i < n; ++i) {
          *batch.request.add_trades() = std::move(queued_.front());
          queued_.pop_front();
        }
        if (!queued_.empty()) oldest_queued_at_ = absl::Now();
        batch.last_seq = enqueued_seq_ - queued_.size();
        ++stats_.batches_sent;
        to_send = batch.request;
        unacked_.push_back(std::move(batch));
      }
      ++sent_on_stream_;
    }
    if (!stream->rw->Write(to_send)) {
      absl::MutexLock lock(&mu_);
      stream_broken_ = true;
      break;
    }
  }

  bool stopping;
  {
    absl::MutexLock lock(&mu_);
    stopping = stopping_;
  }
  // On failure the reader sees the end of the stream by itself; cancelling would hide the server's status.
  if (stopping) stream->context.TryCancel();
  reader.join();
  const grpc::Status status = stream->rw->Finish();

  std::vector<TradeOutcome> failed_trades;
  absl::Status failed_status;
  bool healthy;
  {
    absl::MutexLock lock(&mu_);
    live_context_ = nullptr;
    stats_.connected = false;
    healthy = stream->acked;
    if (!stopping_) {
      ++stats_.stream_failures;
      stats_.last_error = absl::StrCat(CodeName(status.error_code()), ": ", status.error_message());
      // The server acknowledged every batch before the one it refused, so the refused one is the first
      // unacknowledged batch. Resending it would be refused again.
      if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT && sent_on_stream_ > 0 && !unacked_.empty()) {
        Batch batch = std::move(unacked_.front());
        unacked_.pop_front();
        const auto n = static_cast<uint64_t>(batch.request.trades_size());
        stats_.failed += n;
        stats_.buffered -= n;
        failed_trades.assign(batch.request.trades().begin(), batch.request.trades().end());
        failed_status = absl::InvalidArgumentError(status.error_message());
        changed_.SignalAll();
      }
    }
    sent_on_stream_ = 0;
  }
  if (!failed_trades.empty() && options_.on_batch_failed) options_.on_batch_failed(failed_status, failed_trades);
  return healthy;
}

void TradeStreamer::ReaderLoop(Stream* stream) {
  IngestAck ack;
  std::vector<std::pair<RejectedTrade, TradeOutcome>> rejected;
  auto in_flight_end = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return unacked_.begin() + static_cast<std::ptrdiff_t>(sent_on_stream_);
  };
  auto find = [this, &in_flight_end](uint64_t batch_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::find_if(unacked_.begin(), in_flight_end(),
                        [batch_id](const Batch& b) { return b.request.batch_id() == batch_id; });
  };
  while (stream->rw->Read(&ack)) {
    rejected.clear();
    {
      absl::MutexLock lock(&mu_);
      stream->acked = true;
      stats_.connected = true;
      // Acks come in request order, so the batch is the first one; a search keeps a confused server from
      // corrupting the window.
      auto it = find(ack.batch_id());
      if (it == in_flight_end()) continue;
      for (const RejectedTrade& r : ack.rejected()) {
        TradeOutcome trade;
        if (r.index() < static_cast<uint32_t>(it->request.trades_size())) {
          trade = it->request.trades(static_cast<int>(r.index()));
        }
        rejected.emplace_back(r, std::move(trade));
      }
    }
    // Before the batch leaves the buffer, so a Flush that returns has seen every callback of its trades.
    if (options_.on_rejected) {
      for (const auto& [r, trade] : rejected) options_.on_rejected(r, trade);
    }
    absl::MutexLock lock(&mu_);
    // Only this thread removes in-flight batches while the stream is open, so the batch is still there.
    auto it = find(ack.batch_id());
    if (it == in_flight_end()) continue;
    stats_.accepted += ack.accepted();
    stats_.duplicates += ack.duplicates();
    stats_.rejected += static_cast<uint64_t>(ack.rejected_size());
    ++stats_.batches_acked;
    stats_.buffered -= static_cast<uint64_t>(it->request.trades_size());
    unacked_.erase(it);
    --sent_on_stream_;
    changed_.SignalAll();
  }
  absl::MutexLock lock(&mu_);
  stream_broken_ = true;
  changed_.SignalAll();
}

}  // namespace clm::client
