// Storage faults injected under the real stores (tests/testing/faulty_vfs): a failed write stores nothing,
// says what went wrong and that the caller may retry, and the same connection works again once the fault
// goes. StoreHealth turns unusable only when its own probe fails too, and usable again when a probe or a
// commit succeeds.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/ingest/ingest_pipeline.h"
#include "lib/store/sqlite.h"
#include "lib/store/sqlite_cadence_store.h"
#include "lib/store/sqlite_deployment_store.h"
#include "lib/store/sqlite_job_store.h"
#include "lib/store/sqlite_trade_store.h"
#include "lib/store/store_health.h"
#include "tests/testing/faulty_vfs.h"

namespace clm::store {
namespace {

using ::clm::testing::FaultyVfs;
using ::clm::v1::TradeOutcome;
using ::testing::HasSubstr;

TradeOutcome MakeTrade(const std::string& id) {
  TradeOutcome t;
  t.set_trade_id(id);
  t.set_symbol("BTCUSDT");
  t.set_model_id("m1");
  t.set_confidence(0.5);
  t.set_outcome(TradeOutcome::WIN);
  t.set_pnl(1.0);
  *t.mutable_closed_at() = FromNanos(absl::ToUnixNanos(absl::Now() - absl::Hours(1)));
  return t;
}

PendingBatch MakeBatch(uint64_t batch_id, int trades) {
  PendingBatch batch;
  batch.batch_id = batch_id;
  for (int i = 0; i < trades; ++i) {
    batch.trades.push_back(MakeTrade(absl::StrCat("b", batch_id, "-", i)));
    batch.indices.push_back(static_cast<uint32_t>(i));
    batch.content_hashes.push_back(batch_id * 1000 + static_cast<uint64_t>(i));
  }
  return batch;
}

// Polls `done` until it holds; false after 10 s. Only a bound on waiting, never a measurement.
template <typename Predicate>
bool Eventually(Predicate done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

class Recorder final : public StoreHealth::Observer {
 public:
  void OnStorageFault(StorageFault fault, const absl::Status&) override {
    absl::MutexLock lock(&mu_);
    faults_.push_back(fault);
  }
  void OnUsableChanged(bool usable, const absl::Status& cause) override {
    absl::MutexLock lock(&mu_);
    changes_.push_back(usable);
    causes_.push_back(cause);
  }
  std::vector<StorageFault> faults() {
    absl::MutexLock lock(&mu_);
    return faults_;
  }
  std::vector<bool> changes() {
    absl::MutexLock lock(&mu_);
    return changes_;
  }
  absl::Status last_cause() {
    absl::MutexLock lock(&mu_);
    return causes_.back();
  }

 private:
  absl::Mutex mu_;
  std::vector<StorageFault> faults_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> changes_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> causes_ ABSL_GUARDED_BY(mu_);
};

class StoreFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "clm_fault_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "clm.db").string();
    FaultyVfs::Set(FaultyVfs::Fault::kNone);
  }
  void TearDown() override {
    FaultyVfs::Set(FaultyVfs::Fault::kNone);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // The health object of a store on the faulty VFS, observed by `recorder`.
  std::unique_ptr<StoreHealth> MakeHealth(absl::Duration probe_interval, Recorder* recorder,
                                          int64_t min_free_bytes = 0) {
    StoreHealth::Options options;
    options.vfs = FaultyVfs::Name();
    options.probe_interval = probe_interval;
    options.min_free_bytes = min_free_bytes;
    auto health = std::make_unique<StoreHealth>(path_, options);
    health->SetObserver(recorder);
    return health;
  }

  absl::StatusOr<std::unique_ptr<SqliteTradeStore>> OpenStore(StoreFaultListener* listener) {
    return SqliteTradeStore::Open(path_, StoreOptions{FaultyVfs::Name(), listener});
  }

  size_t StoredTrades(SqliteTradeStore& store) {
    absl::StatusOr<std::vector<Trade>> trades = store.LoadTrades({});
    EXPECT_TRUE(trades.ok()) << trades.status();
    return trades.ok() ? trades->size() : 0;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(StoreFaultTest, FailedCommitStoresNothingAndTheWriterRecovers) {
  auto store = OpenStore(nullptr);
  ASSERT_TRUE(store.ok()) << store.status();
  PendingBatch first = MakeBatch(1, 20);
  PendingBatch* group[] = {&first};
  ASSERT_TRUE((*store)->WriteBatches(group, 1).ok());

  PendingBatch second = MakeBatch(2, 30);
  PendingBatch* retry[] = {&second};
  FaultyVfs::Set(FaultyVfs::Fault::kIoError);
  absl::StatusOr<std::vector<BatchResult>> failed = (*store)->WriteBatches(retry, 2);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StorageFaultOf(failed.status()), StorageFault::kIoError);
  EXPECT_THAT(failed.status().message(), HasSubstr(absl::StrCat("the store ", path_, " hit an I/O error")));
  EXPECT_EQ(StoredTrades(**store), 20u) << "a failed commit left trades behind";

  FaultyVfs::Set(FaultyVfs::Fault::kDiskFull);
  failed = (*store)->WriteBatches(retry, 3);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(StorageFaultOf(failed.status()), StorageFault::kDiskFull);
  EXPECT_THAT(failed.status().message(), HasSubstr(absl::StrCat("the store ", path_, " is out of disk space")));
  EXPECT_THAT(failed.status().message(), HasSubstr("free space on the filesystem"));
  EXPECT_EQ(StoredTrades(**store), 20u);

  // The same connection takes the same batch once the fault is gone, and stores it exactly once.
  FaultyVfs::Set(FaultyVfs::Fault::kNone);
  absl::StatusOr<std::vector<BatchResult>> stored = (*store)->WriteBatches(retry, 4);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ((*stored)[0].accepted, 30u);
  stored = (*store)->WriteBatches(retry, 5);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ((*stored)[0].duplicates, 30u);
  store->reset();

  auto reopened = SqliteTradeStore::Open(path_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(StoredTrades(**reopened), 50u);
}

TEST_F(StoreFaultTest, OtherStoresReturnTheFaultAndChangeNothing) {
  auto jobs = SqliteJobStore::Open(path_, StoreOptions{FaultyVfs::Name(), nullptr});
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  auto deployments = SqliteDeploymentStore::Open(path_, StoreOptions{FaultyVfs::Name(), nullptr});
  ASSERT_TRUE(deployments.ok()) << deployments.status();
  auto cadence = SqliteCadenceStateStore::Open(path_, StoreOptions{FaultyVfs::Name(), nullptr});
  ASSERT_TRUE(cadence.ok()) << cadence.status();

  clm::v1::Job job;
  job.set_id("job-1");
  job.set_state(clm::v1::QUEUED);
  clm::v1::AuditEntry audit;
  audit.set_actor("alice");
  clm::v1::ModeChange change;
  change.set_changed_by("alice");

  FaultyVfs::Set(FaultyVfs::Fault::kDiskFull);
  absl::Status put = (*jobs)->Put(job);
  EXPECT_EQ(put.code(), absl::StatusCode::kResourceExhausted) << put;
  EXPECT_THAT(put.message(), HasSubstr("out of disk space"));
  FaultyVfs::Set(FaultyVfs::Fault::kIoError);
  absl::Status appended = (*deployments)->AppendAudit(audit);
  EXPECT_EQ(appended.code(), absl::StatusCode::kUnavailable) << appended;
  EXPECT_EQ(StorageFaultOf(appended), StorageFault::kIoError);
  absl::Status mode = (*cadence)->AppendModeChange(change);
  EXPECT_EQ(mode.code(), absl::StatusCode::kUnavailable) << mode;

  FaultyVfs::Set(FaultyVfs::Fault::kNone);
  EXPECT_EQ((*jobs)->Get("job-1", false).status().code(), absl::StatusCode::kNotFound);
  auto listed = (*deployments)->ListAudit(10, 0);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->entries_size(), 0);
  auto changes = (*cadence)->LoadModeChanges(10);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_TRUE(changes->empty());
  // And they write again.
  EXPECT_TRUE((*jobs)->Put(job).ok());
  EXPECT_TRUE((*deployments)->AppendAudit(audit).ok());
  EXPECT_TRUE((*cadence)->AppendModeChange(change).ok());
}

TEST_F(StoreFaultTest, HealthTurnsUnusableOnlyWhenTheProbeFailsAndRecoversByProbe) {
  Recorder recorder;
  auto health = MakeHealth(absl::Milliseconds(20), &recorder);
  auto store = OpenStore(health.get());
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE(health->Probe().ok());
  EXPECT_EQ(recorder.changes(), std::vector<bool>{true});  // SetObserver tells the current state

  // Every fault reaches the observer, with its kind.
  health->OnStorageFault(SqliteError(SQLITE_BUSY, "COMMIT", nullptr));
  ASSERT_TRUE(Eventually([&] { return recorder.faults().size() == 1; }));
  EXPECT_EQ(recorder.faults()[0], StorageFault::kBusy);

  FaultyVfs::Set(FaultyVfs::Fault::kIoError);
  PendingBatch batch = MakeBatch(1, 10);
  PendingBatch* group[] = {&batch};
  ASSERT_FALSE((*store)->WriteBatches(group, 1).ok());
  ASSERT_TRUE(Eventually([&] { return !health->usable(); })) << "a failing probe did not make the store unusable";
  EXPECT_EQ(StorageFaultOf(recorder.last_cause()), StorageFault::kIoError) << recorder.last_cause();
  EXPECT_EQ(recorder.faults()[1], StorageFault::kIoError);

  FaultyVfs::Set(FaultyVfs::Fault::kNone);
  ASSERT_TRUE(Eventually([&] { return health->usable(); })) << "the periodic probe did not notice the recovery";
  EXPECT_EQ(recorder.changes(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(StoredTrades(**store), 0u);
}

TEST_F(StoreFaultTest, NextCommitRecoversAndDiskFullWaitsForFreeSpace) {
  Recorder recorder;
  // Probes that never find enough room: only a commit can bring the store back.
  auto health = MakeHealth(absl::Milliseconds(20), &recorder, int64_t{1} << 62);
  auto store = OpenStore(health.get());
  ASSERT_TRUE(store.ok()) << store.status();

  FaultyVfs::Set(FaultyVfs::Fault::kDiskFull);
  PendingBatch batch = MakeBatch(1, 10);
  PendingBatch* group[] = {&batch};
  ASSERT_FALSE((*store)->WriteBatches(group, 1).ok());
  ASSERT_TRUE(Eventually([&] { return !health->usable(); }));
  FaultyVfs::Set(FaultyVfs::Fault::kNone);
  // The probe's write now succeeds, but the filesystem lacks min_free_bytes: still unusable.
  ASSERT_TRUE(Eventually([&] {
    return absl::StrContains(health->last_probe().message(), "bytes free on its filesystem, needs at least");
  })) << health->last_probe();
  EXPECT_EQ(health->last_probe().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(health->usable());

  absl::StatusOr<std::vector<BatchResult>> stored = (*store)->WriteBatches(group, 2);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_TRUE(health->usable()) << "a successful commit did not make the store usable";
  EXPECT_EQ(recorder.changes(), (std::vector<bool>{true, false, true}));
}

TEST_F(StoreFaultTest, PipelineFailsEveryQueuedBatchAndGoesOnAfterTheFault) {
  auto store = OpenStore(nullptr);
  ASSERT_TRUE(store.ok()) << store.status();
  ingest::IngestPipeline pipeline(store->get(), ingest::IngestPipeline::Options(), nullptr);

  absl::Mutex mu;
  std::vector<absl::StatusOr<clm::v1::IngestAck>> answers;
  auto submit = [&](uint64_t batch_id) {
    google::protobuf::RepeatedPtrField<TradeOutcome> trades;
    for (int i = 0; i < 5; ++i) *trades.Add() = MakeTrade(absl::StrCat("p", batch_id, "-", i));
    return pipeline.Submit(batch_id, &trades, [&](absl::StatusOr<clm::v1::IngestAck> ack) {
      absl::MutexLock lock(&mu);
      answers.push_back(std::move(ack));
    });
  };
  auto answered = [&] {
    absl::MutexLock lock(&mu);
    return answers.size();
  };

  FaultyVfs::Set(FaultyVfs::Fault::kDiskFull);
  for (uint64_t b = 1; b <= 8; ++b) ASSERT_TRUE(submit(b).ok());
  ASSERT_TRUE(Eventually([&] { return answered() == 8; })) << "a batch queued behind the fault was never answered";
  {
    absl::MutexLock lock(&mu);
    for (size_t i = 0; i < answers.size(); ++i) {
      ASSERT_FALSE(answers[i].ok()) << "batch " << i + 1 << " was acknowledged on a full disk";
      EXPECT_EQ(answers[i].status().code(), absl::StatusCode::kResourceExhausted);
      EXPECT_THAT(answers[i].status().message(),
                  HasSubstr(absl::StrCat("batch ", i + 1, " was not stored and may be resent: the store ")));
    }
  }
  EXPECT_EQ(StoredTrades(**store), 0u);

  FaultyVfs::Set(FaultyVfs::Fault::kNone);
  for (uint64_t b = 1; b <= 8; ++b) ASSERT_TRUE(submit(b).ok());
  ASSERT_TRUE(Eventually([&] { return answered() == 16; }));
  {
    absl::MutexLock lock(&mu);
    for (size_t i = 8; i < answers.size(); ++i) {
      ASSERT_TRUE(answers[i].ok()) << answers[i].status();
      EXPECT_EQ(answers[i]->accepted(), 5u);
    }
  }
  pipeline.Stop();
  EXPECT_EQ(StoredTrades(**store), 40u);
}

}  // namespace
}  // namespace clm::store
