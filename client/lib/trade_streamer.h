#ifndef CLM_CLIENT_LIB_TRADE_STREAMER_H_
#define CLM_CLIENT_LIB_TRADE_STREAMER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "clm/v1/trade.pb.h"
#include "grpcpp/channel.h"

namespace clm::client {

// Streams an engine's closed trades to clm.v1.TradeIngest over ONE long-lived Ingest stream.
//
// What a caller may rely on:
//  - Enqueue never blocks. It refuses (RESOURCE_EXHAUSTED) when max_buffered_trades trades are buffered,
//    counting both trades not yet sent and trades sent but not yet acknowledged.
//  - A trade leaves the buffer only when the server acknowledged its batch (accepted, duplicate or rejected)
//    or refused the whole batch (see `on_batch_failed`). Until then it is kept and, after any stream
//    failure, resent on the next stream: every unacknowledged batch, in order. The server counts resent
//    trades it had already stored as duplicates, so a trade is stored once however often it is sent.
//  - Reconnects use exponential backoff (initial_backoff doubling up to max_backoff) and never give up
//    before Close.
//  - Callbacks run on the streamer's own threads, without its lock held; they must not block for long and
//    must not call Flush or Close.
class TradeStreamer final {
 public:
  struct Options {
    size_t max_batch_trades = 500;          // trades per IngestRequest (the server allows 1000 by default)
    absl::Duration max_linger = absl::Milliseconds(50);  // a partial batch waits at most this long
    size_t max_buffered_trades = 100000;    // Enqueue refuses beyond this
    size_t max_inflight_batches = 8;        // unacknowledged batches on the stream (server allows 16)
    absl::Duration initial_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(10);
    std::vector<std::pair<std::string, std::string>> metadata;  // added to each stream, e.g. authorization
    // A trade the server rejected (invalid, or a trade_id already stored with different content). It is
    // dead-lettered on the server and will not be resent.
    std::function<void(const clm::v1::RejectedTrade& rejected, const clm::v1::TradeOutcome& trade)>
        on_rejected;
    // The server refused a whole batch (INVALID_ARGUMENT: e.g. more trades than it allows). Its trades are
    // dropped from the buffer (resending would fail again) and counted in `failed`.
    std::function<void(const absl::Status& status, const std::vector<clm::v1::TradeOutcome>& trades)>
        on_batch_failed;
  };

  struct Stats {
    uint64_t enqueued = 0;        // trades Enqueue took
    uint64_t refused = 0;         // Enqueue calls refused because the buffer was full (or after Close)
    uint64_t accepted = 0;        // acknowledged as newly stored
    uint64_t duplicates = 0;      // acknowledged as already stored
    uint64_t rejected = 0;        // acknowledged as rejected
    uint64_t failed = 0;          // in batches the server refused as a whole
    uint64_t batches_sent = 0;    // first sends
    uint64_t batches_acked = 0;
    uint64_t resent_batches = 0;  // sends after a reconnect
    uint64_t resent_trades = 0;
    uint64_t reconnects = 0;      // streams opened after the first
    uint64_t stream_failures = 0;
    uint64_t buffered = 0;        // trades not yet acknowledged (queued or in flight)
    bool connected = false;       // a stream is open now
    std::string last_error;       // the last stream failure, e.g. "UNAVAILABLE: server shutting down"
  };

  // Starts the sender thread; the first stream opens at once. `channel` must outlive nothing: it is shared.
  TradeStreamer(std::shared_ptr<grpc::Channel> channel, Options options);
  // Close(absl::ZeroDuration()): trades not acknowledged by then are dropped; call Flush first.
  ~TradeStreamer();
  TradeStreamer(const TradeStreamer&) = delete;
  TradeStreamer& operator=(const TradeStreamer&) = delete;

  // Non-blocking. RESOURCE_EXHAUSTED when the buffer is full, FAILED_PRECONDITION after Close.
  absl::Status Enqueue(clm::v1::TradeOutcome trade);

  // Sends partial batches at once and waits until every trade enqueued before the call is acknowledged
  // (or failed). DEADLINE_EXCEEDED, naming how many are still buffered and the last stream error, when the
  // deadline passes first.
  absl::Status Flush(absl::Time deadline);

  // Refuses further trades, waits up to `drain` for the buffer to empty, then ends the stream and joins the
  // threads. Returns DEADLINE_EXCEEDED when trades were left unacknowledged. Idempotent.
  absl::Status Close(absl::Duration drain = absl::Seconds(10));

  Stats stats() const;

 private:
  struct Batch {
    clm::v1::IngestRequest request;
    uint64_t last_seq = 0;      // sequence number of the batch's last trade
    bool sent_once = false;     // sent on some earlier stream: the next send is a resend
  };
  struct Stream;

  void SenderLoop();
  // Opens a stream and (re)sends every unacknowledged batch; false when it failed before it could.
  bool RunStream(bool first);
  void ReaderLoop(Stream* stream);
  bool ReadyToSendLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every trade with a sequence number up to this one is acknowledged or failed.
  uint64_t DoneSeqLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<clm::v1::TradeIngest::Stub> stub_;
  const Options options_;

  mutable absl::Mutex mu_;
  absl::CondVar changed_;  // anything below changed
  std::deque<clm::v1::TradeOutcome> queued_ ABSL_GUARDED_BY(mu_);  // not yet in a batch
  absl::Time oldest_queued_at_ ABSL_GUARDED_BY(mu_);
  std::deque<Batch> unacked_ ABSL_GUARDED_BY(mu_);  // in batch-id order
  size_t sent_on_stream_ ABSL_GUARDED_BY(mu_) = 0;  // unacked_[0, sent_on_stream_) are on the current stream
  uint64_t next_batch_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t enqueued_seq_ ABSL_GUARDED_BY(mu_) = 0;  // sequence number of the last enqueued trade
  int flushers_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;     // no more Enqueue
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;    // the sender must end the stream and exit
  bool stream_broken_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* live_context_ ABSL_GUARDED_BY(mu_) = nullptr;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::thread sender_;
  bool closed_ = false;  // Close finished; only touched by Close
  absl::Mutex close_mu_;
};

}  // namespace clm::client

#endif  // CLM_CLIENT_LIB_TRADE_STREAMER_H_
