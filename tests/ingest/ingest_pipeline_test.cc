#include "lib/ingest/ingest_pipeline.h"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/store/sqlite_trade_store.h"

namespace clm::ingest {
namespace {

using ::clm::v1::IngestAck;
using ::clm::v1::TradeOutcome;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using Trades = google::protobuf::RepeatedPtrField<TradeOutcome>;

TradeOutcome MakeTrade(const std::string& id, const std::string& symbol = "BTCUSDT") {
  TradeOutcome t;
  t.set_trade_id(id);
  t.set_symbol(symbol);
  t.set_model_id("m1");
  t.set_confidence(0.6);
  t.set_outcome(TradeOutcome::WIN);
  t.set_pnl(1.5);
  t.mutable_closed_at()->set_seconds(absl::ToUnixSeconds(absl::Now()) - 3600);
  return t;
}

TradeOutcome WithConfidence(TradeOutcome t, double c) {
  t.set_confidence(c);
  return t;
}

Trades MakeTrades(std::vector<TradeOutcome> trades) {
  Trades out;
  for (TradeOutcome& t : trades) *out.Add() = std::move(t);
  return out;
}

Trades OneTrade(const std::string& id) { return MakeTrades({MakeTrade(id)}); }

// Collects the answers `done` receives, in the order it receives them.
class Answers {
 public:
  IngestPipeline::Done Callback() {
    return [this](absl::StatusOr<IngestAck> answer) {
      absl::MutexLock lock(&mu_);
      answers_.push_back(std::move(answer));
    };
  }
  std::vector<absl::StatusOr<IngestAck>> Get() const {
    absl::MutexLock lock(&mu_);
    return answers_;
  }
  void WaitFor(size_t n) const {
    absl::MutexLock lock(&mu_);
    auto ready = [this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return answers_.size() >= n; };
    mu_.Await(absl::Condition(&ready));
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<absl::StatusOr<IngestAck>> answers_ ABSL_GUARDED_BY(mu_);
};

class RecordingObserver final : public IngestObserver {
 public:
  void OnCommit(const CommitStats& stats) override {
    absl::MutexLock lock(&mu_);
    stats_.push_back(stats);
    // The trade pointers are valid only now: keep the ids.
    std::vector<std::string> ids;
    for (const TradeOutcome* t : stats.accepted_trades) ids.push_back(t->trade_id());
    accepted_ids_.push_back(std::move(ids));
    stats_.back().accepted_trades.clear();
  }
  std::vector<std::vector<std::string>> AcceptedIds() const {
    absl::MutexLock lock(&mu_);
    return accepted_ids_;
  }
  std::vector<CommitStats> Get() const {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<CommitStats> stats_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<std::string>> accepted_ids_ ABSL_GUARDED_BY(mu_);
};

// A TradeStore that records the groups it is given, can hold the writer inside WriteBatches until released,
// and can be told to fail.
class FakeStore final : public store::TradeStore {
 public:
  absl::StatusOr<std::vector<store::BatchResult>> WriteBatches(absl::Span<store::PendingBatch* const> batches,
                                                               int64_t now_ns) override {
    absl::MutexLock lock(&mu_);
    std::vector<uint64_t> ids;
    for (const store::PendingBatch* b : batches) ids.push_back(b->batch_id);
    calls_.push_back(ids);
    mu_.Await(absl::Condition(+[](bool* blocked) { return !*blocked; }, &blocked_));
    if (!fail_.ok()) return fail_;
    std::vector<store::BatchResult> results(batches.size());
    for (size_t i = 0; i < batches.size(); ++i) {
      for (size_t j = 0; j < batches[i]->trades.size(); ++j) {
        const std::string& id = batches[i]->trades[j].trade_id();
        if (id.rfind("dup", 0) == 0) {
          ++results[i].duplicates;
        } else if (id.rfind("conflict", 0) == 0) {
          store::Rejection& r = results[i].conflicts.emplace_back();
          r.index = batches[i]->indices[j];
          r.trade_id = id;
          r.field = "trade_id";
          r.reason = "conflict";
        } else {
          ++results[i].accepted;
        }
      }
    }
    return results;
  }
  absl::StatusOr<clm::v1::DatasetSummary> Summarize(const store::DatasetQuery&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<std::vector<Trade>> LoadTrades(const store::DatasetQuery&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<int64_t> MaxSeq() override { return absl::UnimplementedError("fake"); }
  absl::StatusOr<clm::v1::ListDeadLettersResponse> ListDeadLetters(uint32_t, uint64_t) override {
    return absl::UnimplementedError("fake");
  }
  int64_t SizeBytes() const override { return 0; }

  void Block() {
    absl::MutexLock lock(&mu_);
    blocked_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    blocked_ = false;
  }
  void Fail(absl::Status status) {
    absl::MutexLock lock(&mu_);
    fail_ = std::move(status);
  }
  // Waits until WriteBatches has been entered `n` times in total.
  void WaitForCalls(size_t n) {
    absl::MutexLock lock(&mu_);
    wait_for_ = n;
    mu_.Await(absl::Condition(
        +[](FakeStore* self) ABSL_NO_THREAD_SAFETY_ANALYSIS { return self->calls_.size() >= self->wait_for_; },
        this));
  }
  std::vector<std::vector<uint64_t>> Calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  bool blocked_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status fail_ ABSL_GUARDED_BY(mu_);
  size_t wait_for_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::vector<uint64_t>> calls_ ABSL_GUARDED_BY(mu_);
};

std::vector<uint32_t> RejectedIndices(const IngestAck& ack) {
  std::vector<uint32_t> out;
  for (const auto& r : ack.rejected()) out.push_back(r.index());
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Over the fake store.

TEST(IngestPipelineFakeTest, BatchLevelErrorsAreReturnedAndDoneIsNeverCalled) {
  FakeStore store;
  IngestPipeline::Options options;
  options.max_batch_trades = 2;
  IngestPipeline pipeline(&store, options, nullptr);
  bool called = false;
  auto done = [&called](absl::StatusOr<IngestAck>) { called = true; };

  Trades empty;
  absl::Status status = pipeline.Submit(1, &empty, done);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("trades: a batch must hold at least one trade"));

  Trades three = MakeTrades({MakeTrade("a"), MakeTrade("b"), MakeTrade("c")});
  status = pipeline.Submit(2, &three, done);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("trades: a batch may hold at most 2 trades, got 3"));

  pipeline.Stop();
  EXPECT_FALSE(called);
  EXPECT_TRUE(store.Calls().empty());
  EXPECT_EQ(pipeline.QueuedTrades(), 0u);
}

TEST(IngestPipelineFakeTest, AcksInSubmissionOrderWithMergedSortedRejections) {
  FakeStore store;
  IngestPipeline pipeline(&store, IngestPipeline::Options{}, nullptr);
  Answers answers;

  Trades b1 = MakeTrades({MakeTrade("a1"), MakeTrade("dup1"), MakeTrade("a2")});
  // Validation rejects index 3; the store reports a conflict at index 1: the ack lists them by index.
  Trades b2 = MakeTrades({MakeTrade("a3"), MakeTrade("conflict1"), WithConfidence(MakeTrade("a4"), 1.7),
                          WithConfidence(MakeTrade("a5"), -1), MakeTrade("conflict2")});
  Trades b3 = OneTrade("a6");
  ASSERT_TRUE(pipeline.Submit(11, &b1, answers.Callback()).ok());
  ASSERT_TRUE(pipeline.Submit(12, &b2, answers.Callback()).ok());
  ASSERT_TRUE(pipeline.Submit(13, &b3, answers.Callback()).ok());
  pipeline.Stop();

  std::vector<absl::StatusOr<IngestAck>> acks = answers.Get();
  ASSERT_EQ(acks.size(), 3u);
  for (const auto& a : acks) ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(acks[0]->batch_id(), 11u);
  EXPECT_EQ(acks[0]->accepted(), 2u);
  EXPECT_EQ(acks[0]->duplicates(), 1u);
  EXPECT_EQ(acks[0]->rejected_size(), 0);

  EXPECT_EQ(acks[1]->batch_id(), 12u);
  EXPECT_EQ(acks[1]->accepted(), 1u);
  EXPECT_EQ(acks[1]->duplicates(), 0u);
  EXPECT_THAT(RejectedIndices(*acks[1]), ElementsAre(1u, 2u, 3u, 4u));
  EXPECT_EQ(acks[1]->rejected(0).trade_id(), "conflict1");
  EXPECT_EQ(acks[1]->rejected(0).field(), "trade_id");
  EXPECT_EQ(acks[1]->rejected(1).trade_id(), "a4");
  EXPECT_EQ(acks[1]->rejected(1).field(), "confidence");
  EXPECT_EQ(acks[1]->rejected(1).reason(), "must be within [0, 1], got 1.7");
  EXPECT_EQ(acks[1]->rejected(2).trade_id(), "a5");
  EXPECT_EQ(acks[1]->rejected(3).trade_id(), "conflict2");

  EXPECT_EQ(acks[2]->batch_id(), 13u);
  EXPECT_EQ(acks[2]->accepted(), 1u);
}

TEST(IngestPipelineFakeTest, GroupCommitGroupsBatchesQueuedWhileTheWriterIsBusy) {
  FakeStore store;
  IngestPipeline pipeline(&store, IngestPipeline::Options{}, nullptr);
  Answers answers;
  store.Block();
  Trades first = OneTrade("a1");
  ASSERT_TRUE(pipeline.Submit(1, &first, answers.Callback()).ok());
  store.WaitForCalls(1);  // the writer is inside WriteBatches with batch 1
  for (uint64_t id = 2; id <= 5; ++id) {
    Trades t = MakeTrades({MakeTrade("b" + std::to_string(id)), MakeTrade("c" + std::to_string(id))});
    ASSERT_TRUE(pipeline.Submit(id, &t, answers.Callback()).ok());
  }
  EXPECT_EQ(pipeline.QueuedTrades(), 8u);
  store.Release();
  answers.WaitFor(5);
  EXPECT_EQ(pipeline.QueuedTrades(), 0u);
  pipeline.Stop();

  EXPECT_THAT(store.Calls(), ElementsAre(ElementsAre(1u), ElementsAre(2u, 3u, 4u, 5u)));
  std::vector<absl::StatusOr<IngestAck>> acks = answers.Get();
  ASSERT_EQ(acks.size(), 5u);
  for (size_t i = 0; i < acks.size(); ++i) {
    ASSERT_TRUE(acks[i].ok()) << acks[i].status();
    EXPECT_EQ(acks[i]->batch_id(), i + 1);
    EXPECT_EQ(acks[i]->accepted(), i == 0 ? 1u : 2u);
  }
}

TEST(IngestPipelineFakeTest, GroupsRespectMaxGroupTrades) {
  FakeStore store;
  IngestPipeline::Options options;
  options.max_group_trades = 2;
  IngestPipeline pipeline(&store, options, nullptr);
  Answers answers;
  store.Block();
  Trades first = OneTrade("a1");
  ASSERT_TRUE(pipeline.Submit(1, &first, answers.Callback()).ok());
  store.WaitForCalls(1);
  for (uint64_t id = 2; id <= 4; ++id) {
    Trades t = OneTrade("a" + std::to_string(id));
    ASSERT_TRUE(pipeline.Submit(id, &t, answers.Callback()).ok());
  }
  store.Release();
  pipeline.Stop();
  EXPECT_THAT(store.Calls(), ElementsAre(ElementsAre(1u), ElementsAre(2u, 3u), ElementsAre(4u)));
  EXPECT_EQ(answers.Get().size(), 4u);
}

TEST(IngestPipelineFakeTest, FailingStoreFailsEveryBatchOfTheGroupAndAcksNothing) {
  FakeStore store;
  RecordingObserver observer;
  IngestPipeline pipeline(&store, IngestPipeline::Options{}, &observer);
  Answers answers;
  store.Block();
  store.Fail(absl::UnavailableError("disk I/O error"));
  Trades first = OneTrade("a1");
  ASSERT_TRUE(pipeline.Submit(1, &first, answers.Callback()).ok());
  store.WaitForCalls(1);
  Trades second = MakeTrades({MakeTrade("a2"), WithConfidence(MakeTrade("a3"), 2)});
  Trades third = OneTrade("a4");
  ASSERT_TRUE(pipeline.Submit(2, &second, answers.Callback()).ok());
  ASSERT_TRUE(pipeline.Submit(3, &third, answers.Callback()).ok());
  store.Release();
  pipeline.Stop();

  EXPECT_THAT(store.Calls(), ElementsAre(ElementsAre(1u), ElementsAre(2u, 3u)));
  std::vector<absl::StatusOr<IngestAck>> answered = answers.Get();
  ASSERT_EQ(answered.size(), 3u);
  for (size_t i = 0; i < answered.size(); ++i) {
    ASSERT_FALSE(answered[i].ok());
    EXPECT_EQ(answered[i].status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(answered[i].status().message(),
              "batch " + std::to_string(i + 1) + " was not stored and may be resent: disk I/O error");
  }
  std::vector<CommitStats> stats = observer.Get();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_FALSE(stats[1].ok);
  EXPECT_EQ(stats[1].batches, 2u);
  EXPECT_EQ(stats[1].accepted, 0u);
  EXPECT_TRUE(stats[1].rejected_by_reason.empty());
}

TEST(IngestPipelineFakeTest, StopAnswersEverythingQueued) {
  FakeStore store;
  IngestPipeline pipeline(&store, IngestPipeline::Options{}, nullptr);
  Answers answers;
  store.Block();
  Trades first = OneTrade("a0");
  ASSERT_TRUE(pipeline.Submit(0, &first, answers.Callback()).ok());
  store.WaitForCalls(1);
  for (uint64_t id = 1; id <= 20; ++id) {
    Trades t = OneTrade("a" + std::to_string(id));
    ASSERT_TRUE(pipeline.Submit(id, &t, answers.Callback()).ok());
  }
  std::thread stopper([&pipeline] { pipeline.Stop(); });
  store.Release();
  stopper.join();  // Stop has returned: every batch must have its answer
  std::vector<absl::StatusOr<IngestAck>> acks = answers.Get();
  ASSERT_EQ(acks.size(), 21u);
  for (size_t i = 0; i < acks.size(); ++i) {
    ASSERT_TRUE(acks[i].ok()) << acks[i].status();
    EXPECT_EQ(acks[i]->batch_id(), i);
  }
  EXPECT_EQ(pipeline.QueuedTrades(), 0u);
}

TEST(IngestPipelineFakeTest, SubmitAfterStopIsUnavailableAndNotAnswered) {
  FakeStore store;
  IngestPipeline pipeline(&store, IngestPipeline::Options{}, nullptr);
  pipeline.Stop();
  pipeline.Stop();  // idempotent
  bool called = false;
  Trades t = OneTrade("a");
  absl::Status status = pipeline.Submit(1, &t, [&called](absl::StatusOr<IngestAck>) { called = true; });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(store.Calls().empty());
  EXPECT_FALSE(called);
}

TEST(IngestPipelineFakeTest, ObserverRunsBeforeTheBatchCallbacks) {
  FakeStore store;
  RecordingObserver observer;
  IngestPipeline pipeline(&store, IngestPipeline::Options{}, &observer);
  size_t commits_seen_by_done = 99;
  Trades t = OneTrade("a");
  ASSERT_TRUE(pipeline
                  .Submit(1, &t,
                          [&](absl::StatusOr<IngestAck>) { commits_seen_by_done = observer.Get().size(); })
                  .ok());
  pipeline.Stop();
  EXPECT_EQ(commits_seen_by_done, 1u);
}

// ---------------------------------------------------------------------------------------------------------
// Over the real SQLite store.

class IngestPipelineSqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "clm_ingest_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    absl::StatusOr<std::unique_ptr<store::SqliteTradeStore>> store =
        store::SqliteTradeStore::Open((dir_ / "clm.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    pipeline_ = std::make_unique<IngestPipeline>(store_.get(), IngestPipeline::Options{}, &observer_);
  }
  void TearDown() override {
    pipeline_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Submits one batch and waits for its answer.
  absl::StatusOr<IngestAck> Ingest(uint64_t batch_id, Trades trades) {
    absl::Notification answered;
    absl::StatusOr<IngestAck> answer;
    absl::Status status = pipeline_->Submit(batch_id, &trades, [&](absl::StatusOr<IngestAck> a) {
      answer = std::move(a);
      answered.Notify();
    });
    if (!status.ok()) return status;
    answered.WaitForNotification();
    return answer;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::SqliteTradeStore> store_;
  RecordingObserver observer_;
  std::unique_ptr<IngestPipeline> pipeline_;
};

TEST_F(IngestPipelineSqliteTest, EndToEndDuplicatesConflictsAndRejections) {
  absl::StatusOr<IngestAck> first =
      Ingest(1, MakeTrades({MakeTrade("a"), WithConfidence(MakeTrade("bad"), 1.7), MakeTrade("b")}));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->batch_id(), 1u);
  EXPECT_EQ(first->accepted(), 2u);
  EXPECT_EQ(first->duplicates(), 0u);
  ASSERT_EQ(first->rejected_size(), 1);
  EXPECT_EQ(first->rejected(0).index(), 1u);
  EXPECT_EQ(first->rejected(0).trade_id(), "bad");
  EXPECT_EQ(first->rejected(0).field(), "confidence");
  EXPECT_EQ(first->rejected(0).reason(), "must be within [0, 1], got 1.7");

  // Resend a (same content, but with a negative zero pnl that canonicalizes away), change b, add c and an
  // invalid trade. The conflict (index 1) and the validation failure (index 3) come back sorted by index.
  TradeOutcome a_again = MakeTrade("a");
  TradeOutcome a_zero = MakeTrade("z");
  a_zero.set_pnl(0.0);
  TradeOutcome z_negzero = MakeTrade("z");
  z_negzero.set_pnl(-0.0);
  TradeOutcome bad_model = MakeTrade("m");
  (*bad_model.mutable_model_confidences())["xgboost"] = 1.2;
  absl::StatusOr<IngestAck> second =
      Ingest(2, MakeTrades({a_again, MakeTrade("b", "ETHUSDT"), MakeTrade("c"), bad_model, a_zero, z_negzero}));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->accepted(), 2u);    // c, z
  EXPECT_EQ(second->duplicates(), 2u);  // a, z (-0.0 == 0.0 after canonicalization)
  EXPECT_THAT(RejectedIndices(*second), ElementsAre(1u, 3u));
  EXPECT_EQ(second->rejected(0).field(), "trade_id");
  EXPECT_EQ(second->rejected(0).trade_id(), "b");
  EXPECT_EQ(second->rejected(1).field(), "model_confidences[xgboost]");
  EXPECT_EQ(second->rejected(1).reason(), "must be within [0, 1], got 1.2");

  pipeline_->Stop();
  absl::StatusOr<std::vector<Trade>> trades = store_->LoadTrades({});
  ASSERT_TRUE(trades.ok()) << trades.status();
  std::vector<std::string> ids;
  for (const Trade& t : *trades) ids.push_back(t.trade_id);
  EXPECT_THAT(ids, ElementsAre("a", "b", "c", "z"));
  EXPECT_EQ((*trades)[1].symbol, "BTCUSDT");  // the conflicting resend did not overwrite b

  absl::StatusOr<clm::v1::ListDeadLettersResponse> dead = store_->ListDeadLetters(10, 0);
  ASSERT_TRUE(dead.ok()) << dead.status();
  ASSERT_EQ(dead->entries_size(), 3);
  std::vector<std::string> dead_ids;
  for (const auto& e : dead->entries()) dead_ids.push_back(e.trade_id());
  EXPECT_THAT(dead_ids, ElementsAre("m", "b", "bad"));  // newest first; conflicts before rejections in a batch
  EXPECT_EQ(dead->entries(1).trade().symbol(), "ETHUSDT");

  std::vector<CommitStats> stats = observer_.Get();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_TRUE(stats[1].ok);
  EXPECT_EQ(stats[1].batches, 1u);
  EXPECT_EQ(stats[1].accepted, 2u);
  EXPECT_EQ(stats[1].duplicates, 2u);
  EXPECT_THAT(stats[1].rejected_by_reason, ElementsAre(Pair("conflict", 1u), Pair("model_confidences", 1u)));
  // Only newly stored trades are reported to observers (live scoring must not count a resend twice).
  EXPECT_THAT(observer_.AcceptedIds(), ElementsAre(ElementsAre("a", "b"), ElementsAre("c", "z")));
}

TEST_F(IngestPipelineSqliteTest, ObserverClassesRejectionsByReason) {
  ASSERT_TRUE(Ingest(1, MakeTrades({MakeTrade("x")})).ok());
  TradeOutcome bad_model = MakeTrade("m1");
  (*bad_model.mutable_model_confidences())["xgboost"] = 1.5;
  TradeOutcome empty_key = MakeTrade("m2");
  (*empty_key.mutable_model_confidences())[""] = 0.5;
  TradeOutcome no_symbol = MakeTrade("s1", "");
  absl::StatusOr<IngestAck> ack =
      Ingest(2, MakeTrades({WithConfidence(MakeTrade("c1"), 1.7), bad_model, MakeTrade("x", "ETHUSDT"), empty_key,
                            WithConfidence(MakeTrade("c2"), -0.5), no_symbol, MakeTrade("ok")}));
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->accepted(), 1u);
  EXPECT_THAT(RejectedIndices(*ack), ElementsAre(0u, 1u, 2u, 3u, 4u, 5u));

  std::vector<CommitStats> stats = observer_.Get();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_TRUE(stats[0].ok);
  EXPECT_EQ(stats[0].accepted, 1u);
  EXPECT_TRUE(stats[0].rejected_by_reason.empty());
  EXPECT_THAT(stats[1].rejected_by_reason,
              ElementsAre(Pair("confidence", 2u), Pair("conflict", 1u), Pair("model_confidences", 2u),
                          Pair("symbol", 1u)));
  EXPECT_GE(stats[1].latency, absl::ZeroDuration());
}

TEST_F(IngestPipelineSqliteTest, ConcurrentSubmittersAreAllStoredExactlyOnce) {
  constexpr int kThreads = 4;
  constexpr int kBatches = 25;
  Answers answers;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        // Every thread also resends the previous batch's second trade: duplicates, never conflicts.
        std::string id = absl::StrCat("t", t, "-b", b);
        Trades trades = MakeTrades({MakeTrade(id + "-0"), MakeTrade(id + "-1")});
        if (b > 0) *trades.Add() = MakeTrade(absl::StrCat("t", t, "-b", b - 1, "-1"));
        EXPECT_TRUE(pipeline_->Submit(static_cast<uint64_t>(t * 1000 + b), &trades, answers.Callback()).ok());
      }
    });
  }
  for (std::thread& th : threads) th.join();
  pipeline_->Stop();
  std::vector<absl::StatusOr<IngestAck>> acks = answers.Get();
  ASSERT_EQ(acks.size(), static_cast<size_t>(kThreads * kBatches));
  uint64_t accepted = 0, duplicates = 0;
  for (const auto& a : acks) {
    ASSERT_TRUE(a.ok()) << a.status();
    accepted += a->accepted();
    duplicates += a->duplicates();
    EXPECT_EQ(a->rejected_size(), 0);
  }
  EXPECT_EQ(accepted, static_cast<uint64_t>(kThreads * kBatches * 2));
  EXPECT_EQ(duplicates, static_cast<uint64_t>(kThreads * (kBatches - 1)));
  absl::StatusOr<int64_t> max_seq = store_->MaxSeq();
  ASSERT_TRUE(max_seq.ok());
  EXPECT_EQ(*max_seq, kThreads * kBatches * 2);
}

}  // namespace
}  // namespace clm::ingest
