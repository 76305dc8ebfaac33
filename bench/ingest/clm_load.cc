// clm-load: a load generator for clm.v1.TradeIngest/Ingest. Streams --trades trades in batches of --batch
// over --streams concurrent streams (one connection each, like separate engines), keeping up to --inflight
// batches unacknowledged per stream, and prints acknowledged trades per second and ack latency percentiles.
//
// Every trade is generated before the clock starts; only sending and waiting for durable acks is timed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/ingest/trade_gen.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, server, "127.0.0.1:8003", "clm-server gRPC address (host:port)");
ABSL_FLAG(uint64_t, trades, 100000, "Trades to send in total");
ABSL_FLAG(uint32_t, batch, 1000, "Trades per IngestRequest (the server's max_batch_trades is 1000 by default)");
ABSL_FLAG(uint32_t, streams, 1, "Concurrent Ingest streams, each on its own connection");
ABSL_FLAG(uint32_t, inflight, 4, "Batches sent but not yet acknowledged, per stream, at most");
ABSL_FLAG(std::string, symbols, "BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT,XRPUSDT,ADAUSDT,DOGEUSDT,AVAXUSDT",
          "Comma-separated symbols to draw trades from");
ABSL_FLAG(uint64_t, seed, 1, "Random seed for the generated trades");
ABSL_FLAG(std::string, closed_at_order, "random",
          "random: closed_at uniform over the past 3 days (a backfill; the worst case for the time indexes); "
          "ascending: closed_at rising with the trade number, as a live engine reports trades");
ABSL_FLAG(std::string, id_prefix, "",
          "Trade id prefix (ids are <prefix>-<n>); empty: a random run id, so runs never collide");
ABSL_FLAG(int32_t, connect_timeout_seconds, 5, "Give up when the server is not reachable within this time");

namespace {

using Clock = std::chrono::steady_clock;
using clm::v1::IngestAck;
using clm::v1::IngestRequest;

// One Ingest stream. Writes one batch at a time (gRPC allows one write in flight), as long as fewer than
// `inflight` batches are unacknowledged; checks each ack against its batch; half-closes after the last write.
class IngestStream final : public grpc::ClientBidiReactor<IngestRequest, IngestAck> {
 public:
  IngestStream(std::vector<IngestRequest> batches, uint32_t inflight)
      : batches_(std::move(batches)), sent_at_(batches_.size()), inflight_(inflight) {
    latencies_ms_.reserve(batches_.size());
  }

  void Start(clm::v1::TradeIngest::Stub* stub) {
    stub->async()->Ingest(&context_, this);
    StartRead(&ack_);
    AddHold();  // until the writes are done, so OnDone cannot run while Pump may still write
    StartCall();
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) broken_ = true;  // the stream broke; OnDone reports the status
    }
    Pump();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the server finished the stream: OnDone follows once the writes are closed too
      {
        absl::MutexLock lock(&mu_);
        broken_ = true;
      }
      Pump();
      return;
    }
    std::string error;
    {
      absl::MutexLock lock(&mu_);
      const size_t i = acked_;
      if (i >= next_) {
        error = absl::StrCat("unexpected ack for batch_id ", ack_.batch_id(), ": nothing is outstanding");
      } else {
        const IngestRequest& batch = batches_[i];
        latencies_ms_.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent_at_[i]).count());
        const uint64_t answered = static_cast<uint64_t>(ack_.accepted()) + ack_.duplicates();
        if (ack_.batch_id() != batch.batch_id()) {
          error = absl::StrCat("ack out of order: expected batch_id ", batch.batch_id(), ", got ", ack_.batch_id());
        } else if (ack_.rejected_size() > 0) {
          const clm::v1::RejectedTrade& r = ack_.rejected(0);
          error = absl::StrCat("batch ", batch.batch_id(), ": ", ack_.rejected_size(), " trades rejected, first ",
                               r.trade_id(), " ", r.field(), ": ", r.reason());
        } else if (answered != static_cast<uint64_t>(batch.trades_size())) {
          error = absl::StrCat("batch ", batch.batch_id(), ": accepted ", ack_.accepted(), " + duplicates ",
                               ack_.duplicates(), " != batch size ", batch.trades_size());
        }
        accepted_ += ack_.accepted();
        duplicates_ += ack_.duplicates();
        ++acked_;
      }
      if (!error.empty() && error_.empty()) error_ = error;
    }
    if (!error.empty()) {
      context_.TryCancel();
      Pump();  // closes the writes
      return;
    }
    StartRead(&ack_);
    Pump();
  }

  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    done_ = true;
  }

  void Await() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }

  // After Await.
  const grpc::Status& status() const { return status_; }
  const std::string& error() const { return error_; }
  size_t acked() const { return acked_; }
  size_t batches() const { return batches_.size(); }
  uint64_t accepted() const { return accepted_; }
  uint64_t duplicates() const { return duplicates_; }
  const std::vector<double>& latencies_ms() const { return latencies_ms_; }

 private:
  // Starts the next write, or the half-close after the last one, when allowed; after a failure it gives up
  // writing. Either way it releases the hold once, so OnDone runs only when no write can start any more.
  // Called from any thread.
  void Pump() {
    enum { kNothing, kWrite, kWritesDone, kGiveUp } action = kNothing;
    IngestRequest* request = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || writes_closed_) return;
      if (broken_ || !error_.empty()) {
        writes_closed_ = true;
        action = kGiveUp;
      } else if (next_ < batches_.size()) {
        if (next_ - acked_ >= inflight_) return;
        request = &batches_[next_];
        sent_at_[next_] = Clock::now();
        ++next_;
        writing_ = true;
        action = kWrite;
      } else {
        writes_closed_ = true;
        action = kWritesDone;
      }
    }
    if (action == kWrite) {
      StartWrite(request);
    } else if (action == kWritesDone) {
      StartWritesDone();
      RemoveHold();
    } else if (action == kGiveUp) {
      RemoveHold();
    }
  }

  grpc::ClientContext context_;
  std::vector<IngestRequest> batches_;
  std::vector<Clock::time_point> sent_at_;
  const uint32_t inflight_;
  IngestAck ack_;  // only touched by the one outstanding read

  absl::Mutex mu_;
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;   // batches written (or being written)
  size_t acked_ ABSL_GUARDED_BY(mu_) = 0;  // acks are in request order: batches [0, acked_) are answered
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool writes_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // a write failed or the server ended the stream
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t accepted_ = 0;
  uint64_t duplicates_ = 0;
  std::vector<double> latencies_ms_;
  std::string error_;
  grpc::Status status_;
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0.0;
  // Nearest rank.
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Load generator for clm.v1.TradeIngest/Ingest.\n"
      "Usage: clm-load --server 127.0.0.1:8003 --trades 200000 --batch 1000 --streams 4");
  absl::ParseCommandLine(argc, argv);
  const std::string server = absl::GetFlag(FLAGS_server);
  const uint64_t total = absl::GetFlag(FLAGS_trades);
  const uint32_t batch = absl::GetFlag(FLAGS_batch);
  const uint32_t streams = absl::GetFlag(FLAGS_streams);
  const uint32_t inflight = absl::GetFlag(FLAGS_inflight);
  if (total == 0 || batch == 0 || streams == 0 || inflight == 0) {
    std::fprintf(stderr, "clm-load: --trades, --batch, --streams and --inflight must be positive\n");
    return 2;
  }
  std::string id_prefix = absl::GetFlag(FLAGS_id_prefix);
  if (id_prefix.empty()) id_prefix = clm::bench::RandomRunId();

  // Generate everything up front: batch b goes to stream b % streams.
  clm::bench::TradeGenerator::Options gen_options;
  gen_options.symbols = clm::bench::SplitList(absl::GetFlag(FLAGS_symbols));
  gen_options.seed = absl::GetFlag(FLAGS_seed);
  gen_options.total = total;
  if (absl::GetFlag(FLAGS_closed_at_order) == "ascending") {
    gen_options.ascending_close = true;
  } else if (absl::GetFlag(FLAGS_closed_at_order) != "random") {
    std::fprintf(stderr, "--closed_at_order: must be random or ascending, got %s\n",
                 absl::GetFlag(FLAGS_closed_at_order).c_str());
    return 2;
  }
  gen_options.id_prefix = id_prefix;
  clm::bench::TradeGenerator generator(gen_options);
  const uint64_t batch_count = (total + batch - 1) / batch;
  std::vector<std::vector<IngestRequest>> per_stream(streams);
  for (uint64_t b = 0; b < batch_count; ++b) {
    IngestRequest& request = per_stream[b % streams].emplace_back();
    request.set_batch_id(b + 1);
    const uint64_t first = b * batch;
    const uint64_t last = std::min<uint64_t>(total, first + batch);
    for (uint64_t i = first; i < last; ++i) generator.Fill(i, request.add_trades());
  }

  // One connection per stream: a distinct channel argument keeps gRPC from sharing the subchannel.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<clm::v1::TradeIngest::Stub>> stubs;
  const auto connect_deadline =
      std::chrono::system_clock::now() + std::chrono::seconds(absl::GetFlag(FLAGS_connect_timeout_seconds));
  for (uint32_t s = 0; s < streams; ++s) {
    grpc::ChannelArguments args;
    args.SetInt("clm.bench.connection", static_cast<int>(s));
    args.SetMaxSendMessageSize(-1);
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(connect_deadline)) {
      std::fprintf(stderr, "clm-load: cannot connect to %s within %d s: is clm-server running there?\n",
                   server.c_str(), absl::GetFlag(FLAGS_connect_timeout_seconds));
      return 1;
    }
    stubs.push_back(clm::v1::TradeIngest::NewStub(channel));
    channels.push_back(std::move(channel));
  }

  std::vector<std::unique_ptr<IngestStream>> ingest_streams;
  for (uint32_t s = 0; s < streams; ++s) {
    ingest_streams.push_back(std::make_unique<IngestStream>(std::move(per_stream[s]), inflight));
  }
  const Clock::time_point start = Clock::now();
  for (uint32_t s = 0; s < streams; ++s) ingest_streams[s]->Start(stubs[s].get());
  for (auto& stream : ingest_streams) stream->Await();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  int exit_code = 0;
  uint64_t accepted = 0, duplicates = 0, acked_batches = 0;
  std::vector<double> latencies;
  for (uint32_t s = 0; s < streams; ++s) {
    const IngestStream& stream = *ingest_streams[s];
    accepted += stream.accepted();
    duplicates += stream.duplicates();
    acked_batches += stream.acked();
    latencies.insert(latencies.end(), stream.latencies_ms().begin(), stream.latencies_ms().end());
    if (!stream.error().empty()) {
      std::fprintf(stderr, "clm-load: stream %u: %s\n", s, stream.error().c_str());
      exit_code = 1;
    } else if (!stream.status().ok()) {
      std::fprintf(stderr, "clm-load: stream %u ended with %d: %s\n", s, stream.status().error_code(),
                   stream.status().error_message().c_str());
      exit_code = 1;
    } else if (stream.acked() != stream.batches()) {
      std::fprintf(stderr, "clm-load: stream %u: %zu of %zu batches acknowledged\n", s, stream.acked(),
                   stream.batches());
      exit_code = 1;
    }
  }
  std::sort(latencies.begin(), latencies.end());
  const uint64_t acked_trades = accepted + duplicates;
  std::printf("server=%s\nid_prefix=%s\nstreams=%u\nbatch=%u\ninflight=%u\n", server.c_str(), id_prefix.c_str(),
              streams, batch, inflight);
  std::printf("trades=%llu\nbatches=%llu\naccepted=%llu\nduplicates=%llu\n",
              static_cast<unsigned long long>(acked_trades), static_cast<unsigned long long>(acked_batches),
              static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(duplicates));
  std::printf("seconds=%.3f\ntrades_per_second=%.0f\n", seconds,
              seconds > 0 ? static_cast<double>(acked_trades) / seconds : 0.0);
  std::printf("ack_latency_ms_p50=%.2f\nack_latency_ms_p90=%.2f\nack_latency_ms_p99=%.2f\nack_latency_ms_max=%.2f\n",
              Percentile(latencies, 50), Percentile(latencies, 90), Percentile(latencies, 99),
              latencies.empty() ? 0.0 : latencies.back());
  if (exit_code != 0) std::fprintf(stderr, "clm-load: FAILED: not every batch was acknowledged cleanly\n");
  return exit_code;
}
