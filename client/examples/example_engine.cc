// clm-example-engine: how a trading engine uses the client library.
//
//  - CalibrationCache turns the model's raw confidence into a calibrated probability before sizing a
//    position. It follows the approved production calibration through WatchActiveSource (the Deployment
//    service's WatchActive stream): approvals and rollbacks reach it within milliseconds, and without a
//    production calibration it uses the raw confidence. `--job` instead applies one job's map (or the newest
//    succeeded job's with `--job=newest`), for trying a map before approving it; JobMapSource below shows
//    how to write a CalibrationSource.
//  - TradeStreamer reports every closed trade, with the RAW confidence (CLM learns from what the model said).
//
//   build-client/client/examples/clm-example-engine --server=127.0.0.1:8003 --trades=200
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/lib/calibration_cache.h"
#include "client/lib/connection.h"
#include "client/lib/trade_streamer.h"
#include "client/lib/watch_active_source.h"
#include "clm/v1/calibration_job.grpc.pb.h"
#include "grpcpp/client_context.h"

ABSL_FLAG(std::string, server, "127.0.0.1:8003", "CLM server address");
ABSL_FLAG(std::string, token, "", "bearer token sent with every call (default: the CLM_TOKEN variable)");
ABSL_FLAG(std::string, tls_ca, "", "PEM roots that sign the server's certificate (turns TLS on)");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate for mutual TLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, job, "",
          "apply this calibration job's map instead of the deployed production calibration; \"newest\": the "
          "newest succeeded job; empty: follow the Deployment service");
ABSL_FLAG(int, trades, 200, "closed trades to simulate and report");

namespace {

using clm::client::CalibrationSource;
using clm::client::CalibrationUpdate;

// A CalibrationSource that reads one job's global map once, at Start.
class JobMapSource final : public CalibrationSource {
 public:
  JobMapSource(std::shared_ptr<grpc::Channel> channel, clm::client::ConnectionOptions connection,
               std::string job_id)
      : stub_(clm::v1::CalibrationJob::NewStub(std::move(channel))),
        connection_(std::move(connection)),
        job_id_(std::move(job_id)) {}

  absl::Status Start(UpdateFn on_update) override {
    std::string id = job_id_;
    if (id.empty()) {
      clm::v1::ListJobsRequest list;
      list.set_state(clm::v1::SUCCEEDED);
      list.set_page_size(1);
      clm::v1::ListJobsResponse jobs;
      grpc::Status status = stub_->List(Context().get(), list, &jobs);
      if (!status.ok()) return absl::UnavailableError(status.error_message());
      if (jobs.jobs_size() == 0) {
        on_update(CalibrationUpdate{1, std::nullopt, "no succeeded job", {}, {}});
        return absl::OkStatus();
      }
      id = jobs.jobs(0).id();
    }
    clm::v1::GetJobRequest get;
    get.set_id(id);
    clm::v1::Job job;
    grpc::Status status = stub_->Get(Context().get(), get, &job);
    if (!status.ok()) return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
    if (!job.result().has_global_map()) return absl::FailedPreconditionError(absl::StrCat(id, ": no map"));
    on_update(CalibrationUpdate{1, job.result().global_map(), id, {}, {}});
    return absl::OkStatus();
  }
  void Stop() override {}

 private:
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    clm::client::ApplyMetadata(clm::client::CallMetadata(connection_), context.get());
    return context;
  }

  std::unique_ptr<clm::v1::CalibrationJob::Stub> stub_;
  clm::client::ConnectionOptions connection_;
  std::string job_id_;
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("An example trading engine using clm::client::TradeStreamer and CalibrationCache.");
  absl::ParseCommandLine(argc, argv);
  clm::client::ConnectionOptions connection;
  connection.target = absl::GetFlag(FLAGS_server);
  connection.token = absl::GetFlag(FLAGS_token);
  if (const char* env = std::getenv("CLM_TOKEN"); connection.token.empty() && env != nullptr) connection.token = env;
  connection.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  connection.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  connection.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      clm::client::MakeChannel(connection, clm::client::EngineChannelArguments());
  if (!channel.ok()) {
    std::fprintf(stderr, "error: %s\n", channel.status().ToString().c_str());
    return 2;
  }

  clm::client::CalibrationCache cache;
  const std::string job = absl::GetFlag(FLAGS_job);
  std::unique_ptr<CalibrationSource> source;
  clm::client::WatchActiveSource* watch = nullptr;
  if (job.empty()) {
    clm::client::WatchActiveSource::Options watch_options;
    watch_options.metadata = clm::client::CallMetadata(connection);
    auto follow = std::make_unique<clm::client::WatchActiveSource>(*channel, watch_options);
    watch = follow.get();
    source = std::move(follow);
  } else {
    source = std::make_unique<JobMapSource>(*channel, connection, job == "newest" ? std::string() : job);
  }
  absl::Status followed = cache.Follow(std::move(source));
  if (followed.ok() && watch != nullptr) {
    // The stream delivers the current state first; give it a moment so the first trades use it.
    const absl::Time deadline = absl::Now() + absl::Seconds(2);
    while (watch->stats().delivered == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  }
  if (absl::Status s = followed; !s.ok()) {
    std::fprintf(stderr, "no calibration (%s): using raw confidences\n", s.ToString().c_str());
  } else {
    std::printf("calibration: %s (%s)\n", cache.active() ? cache.label().c_str() : "none",
                cache.active() ? "applied locally" : "raw confidences");
  }

  clm::client::TradeStreamer::Options options;
  options.metadata = clm::client::CallMetadata(connection);
  options.on_rejected = [](const clm::v1::RejectedTrade& r, const clm::v1::TradeOutcome&) {
    std::fprintf(stderr, "rejected %s: %s: %s\n", r.trade_id().c_str(), r.field().c_str(), r.reason().c_str());
  };
  clm::client::TradeStreamer streamer(*channel, options);

  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const std::string run = absl::StrFormat("%08x", static_cast<uint32_t>(rng()));
  const int n = absl::GetFlag(FLAGS_trades);
  for (int i = 0; i < n; ++i) {
    const double raw = 0.45 + 0.5 * unit(rng);
    const double calibrated = cache.Apply(raw);  // lock-free, nanoseconds: fine on the order path
    const double size = 1000.0 * std::max(0.0, 2.0 * calibrated - 1.0);  // a toy Kelly-style size
    if (i < 5) std::printf("trade %d: raw %.3f -> calibrated %.3f, size %.0f\n", i, raw, calibrated, size);

    clm::v1::TradeOutcome trade;
    trade.set_trade_id(absl::StrCat("example-", run, "-", i));
    trade.set_symbol(i % 2 == 0 ? "BTCUSDT" : "ETHUSDT");
    trade.set_model_id("example_engine");
    trade.set_confidence(raw);
    const double win_probability = raw < 0.7 ? 0.4 : raw;
    trade.set_outcome(unit(rng) < win_probability ? clm::v1::TradeOutcome::WIN : clm::v1::TradeOutcome::LOSS);
    trade.set_pnl(trade.outcome() == clm::v1::TradeOutcome::WIN ? 25.0 : -20.0);
    trade.mutable_closed_at()->set_seconds(absl::ToUnixSeconds(absl::Now() - absl::Minutes(n - i)));
    if (absl::Status s = streamer.Enqueue(std::move(trade)); !s.ok()) {
      // The buffer is full (CLM unreachable for long): the engine keeps trading and counts the loss.
      std::fprintf(stderr, "not reported: %s\n", s.ToString().c_str());
    }
  }
  absl::Status flushed = streamer.Flush(absl::Now() + absl::Seconds(30));
  const clm::client::TradeStreamer::Stats s = streamer.stats();
  std::printf("reported %llu trades: %llu accepted, %llu duplicates, %llu rejected, %llu reconnects\n",
              static_cast<unsigned long long>(s.enqueued), static_cast<unsigned long long>(s.accepted),
              static_cast<unsigned long long>(s.duplicates), static_cast<unsigned long long>(s.rejected),
              static_cast<unsigned long long>(s.reconnects));
  if (!flushed.ok()) {
    std::fprintf(stderr, "error: %s\n", flushed.ToString().c_str());
    return 3;
  }
  return streamer.Close().ok() ? 0 : 3;
}
