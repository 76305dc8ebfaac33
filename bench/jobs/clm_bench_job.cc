// clm-bench-job: a whole calibration job on N stored trades, the way the server runs one: the trades are
// written into a fresh SQLite store through the same TradeStore the server uses, then a JobManager job loads
// them and runs the calibration engine. Prints the time of each phase.
//
//   clm-bench-job --trades 1000000 --dir /tmp/clm-bench-job
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "lib/ingest/validation.h"
#include "lib/jobs/job_manager.h"
#include "lib/store/sqlite_job_store.h"
#include "lib/store/sqlite_trade_store.h"

ABSL_FLAG(int64_t, trades, 1000000, "trades to store and calibrate");
ABSL_FLAG(std::string, dir, "/tmp/clm-bench-job", "scratch directory (emptied first)");
ABSL_FLAG(std::string, method, "isotonic", "isotonic, platt or venn_abers");

namespace {

double Seconds(absl::Time start) { return absl::ToDoubleSeconds(absl::Now() - start); }

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int64_t n = absl::GetFlag(FLAGS_trades);
  const std::string dir = absl::GetFlag(FLAGS_dir);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/clm.db";

  auto trades = clm::store::SqliteTradeStore::Open(path);
  if (!trades.ok()) {
    std::fprintf(stderr, "open: %s\n", trades.status().ToString().c_str());
    return 1;
  }
  // An engine over-confident in 0.50-0.70 and accurate above, over 30 days, 4 symbols, per-model confidences.
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const char* symbols[] = {"BTCUSDT", "ETHUSDT", "SOLUSDT", "BANANAS31USDT"};
  const int64_t start_s = absl::ToUnixSeconds(absl::Now()) - 30 * 86400;
  absl::Time t0 = absl::Now();
  constexpr int kGroup = 20000;
  for (int64_t done = 0; done < n; done += kGroup) {
    clm::store::PendingBatch batch;
    batch.batch_id = static_cast<uint64_t>(done / kGroup);
    for (int64_t i = done; i < std::min(n, done + kGroup); ++i) {
      clm::v1::TradeOutcome t;
      t.set_trade_id(absl::StrCat("bench-", i));
      t.set_symbol(symbols[i % 4]);
      t.set_model_id("ensemble_v3");
      double c = 0.4 + 0.6 * u(rng);
      t.set_confidence(c);
      double p = (c >= 0.5 && c < 0.7) ? 0.38 : c;
      double r = u(rng);
      t.set_outcome(r < 0.1 ? clm::v1::TradeOutcome::NEUTRAL
                            : (u(rng) < p ? clm::v1::TradeOutcome::WIN : clm::v1::TradeOutcome::LOSS));
      t.set_pnl(u(rng) * 20 - 10);
      t.mutable_closed_at()->set_seconds(start_s + i * (30 * 86400) / n);
      (*t.mutable_model_confidences())["xgboost"] = std::min(1.0, c + 0.05 * (u(rng) - 0.5));
      (*t.mutable_model_confidences())["lightgbm"] = std::min(1.0, c + 0.05 * (u(rng) - 0.5));
      batch.content_hashes.push_back(clm::ingest::ContentHash(t));
      batch.indices.push_back(static_cast<uint32_t>(i - done));
      batch.trades.push_back(std::move(t));
    }
    clm::store::PendingBatch* one[] = {&batch};
    auto written = (*trades)->WriteBatches(absl::MakeConstSpan(one), absl::ToUnixNanos(absl::Now()));
    if (!written.ok()) {
      std::fprintf(stderr, "write: %s\n", written.status().ToString().c_str());
      return 1;
    }
  }
  std::printf("stored_trades=%lld\nstore_seconds=%.3f\n", static_cast<long long>(n), Seconds(t0));

  t0 = absl::Now();
  auto loaded = (*trades)->LoadTrades({});
  if (!loaded.ok()) return 1;
  std::printf("load_seconds=%.3f\n", Seconds(t0));
  loaded->clear();
  loaded->shrink_to_fit();

  auto jobs = clm::store::SqliteJobStore::Open(path);
  if (!jobs.ok()) return 1;
  clm::jobs::JobManager manager(trades->get(), jobs->get(), nullptr, {});
  if (!manager.Start().ok()) return 1;
  clm::v1::SubmitJobRequest request;
  const std::string method = absl::GetFlag(FLAGS_method);
  request.set_method(method == "platt" ? clm::v1::PLATT
                                       : (method == "venn_abers" ? clm::v1::VENN_ABERS : clm::v1::ISOTONIC));
  request.set_submitted_by("bench");
  t0 = absl::Now();
  auto job = manager.Submit(request);
  if (!job.ok()) {
    std::fprintf(stderr, "submit: %s\n", job.status().ToString().c_str());
    return 1;
  }
  absl::Notification ended;
  auto subscription = manager.Subscribe(job->id(), [&](const clm::v1::Job& update) {
    if (update.state() >= clm::v1::SUCCEEDED && !ended.HasBeenNotified()) ended.Notify();
  });
  if (subscription.active) ended.WaitForNotification();
  const double job_seconds = Seconds(t0);
  manager.Unsubscribe(subscription.id);
  auto finished = manager.Get(job->id(), true);
  if (!finished.ok() || finished->state() != clm::v1::SUCCEEDED) {
    std::fprintf(stderr, "job did not succeed: %s\n", finished.ok() ? finished->error().c_str() : "");
    return 1;
  }
  const auto& ev = finished->result().evaluation();
  std::printf("job_seconds=%.3f\n", job_seconds);
  std::printf("global_map_bytes=%zu\nresult_bytes=%zu\n", finished->result().global_map().ByteSizeLong(),
              finished->result().ByteSizeLong());
  std::printf("improvement_pct=%.2f\ninterval=[%.2f, %.2f]\ndeployment_ready=%d\n", ev.improvement_pct(),
              ev.improvement_ci_low(), ev.improvement_ci_high(), finished->result().safety().deployment_ready());
  std::printf("mse_before_in_sample=%.4f\nmse_after_in_sample=%.4f\n", ev.in_sample_before().mse(),
              ev.in_sample_after().mse());
  std::printf("mse_before_out_of_sample=%.4f\nmse_after_out_of_sample=%.4f\n", ev.out_of_sample_before().mse(),
              ev.out_of_sample_after().mse());
  manager.Stop();
  std::filesystem::remove_all(dir);
  return 0;
}
