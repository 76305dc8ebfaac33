#include "lib/store/sqlite_trade_store.h"

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lib/store/migrations.h"
#include "lib/store/sqlite.h"

namespace clm::store {
namespace {

using ::clm::v1::TradeOutcome;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kDay = 86400 * kSecond;
// 2023-11-14T22:13:20Z.
constexpr int64_t kT0 = 1'700'000'000 * kSecond;
constexpr int64_t kNow = 1'700'100'000 * kSecond + 123;

TradeOutcome MakeTrade(const std::string& id, int64_t closed_ns, const std::string& symbol = "BTCUSDT",
                       const std::string& model_id = "m1", TradeOutcome::Outcome outcome = TradeOutcome::WIN) {
  TradeOutcome t;
  t.set_trade_id(id);
  t.set_symbol(symbol);
  t.set_model_id(model_id);
  t.set_confidence(0.5);
  t.set_outcome(outcome);
  t.set_pnl(1.0);
  *t.mutable_closed_at() = FromNanos(closed_ns);
  return t;
}

// Indices are positions in the batch as sent: 0..n-1 unless given.
PendingBatch MakeBatch(uint64_t batch_id, std::vector<std::pair<TradeOutcome, uint64_t>> trades) {
  PendingBatch batch;
  batch.batch_id = batch_id;
  for (auto& [trade, hash] : trades) {
    batch.indices.push_back(static_cast<uint32_t>(batch.trades.size()));
    batch.trades.push_back(std::move(trade));
    batch.content_hashes.push_back(hash);
  }
  return batch;
}

Rejection MakeRejection(uint32_t index, const TradeOutcome& trade, const std::string& field,
                        const std::string& reason) {
  Rejection r;
  r.index = index;
  r.trade_id = trade.trade_id();
  r.field = field;
  r.reason = reason;
  trade.SerializeToString(&r.payload);
  return r;
}

DatasetQuery Query(const std::string& symbol, const std::string& model_id, std::optional<int64_t> closed_from_ns,
                   std::optional<int64_t> closed_to_ns, int64_t after_seq) {
  DatasetQuery q;
  q.symbol = symbol;
  q.model_id = model_id;
  q.closed_from_ns = closed_from_ns;
  q.closed_to_ns = closed_to_ns;
  q.after_seq = after_seq;
  return q;
}

std::vector<std::string> Ids(const std::vector<Trade>& trades) {
  std::vector<std::string> ids;
  for (const Trade& t : trades) ids.push_back(t.trade_id);
  return ids;
}

std::vector<uint64_t> DeadLetterIds(const clm::v1::ListDeadLettersResponse& page) {
  std::vector<uint64_t> ids;
  for (const auto& e : page.entries()) ids.push_back(e.id());
  return ids;
}

class SqliteTradeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "clm_store_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "clm.db").string();
    OpenStore();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void OpenStore() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<SqliteTradeStore>> store = SqliteTradeStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  std::unique_ptr<Database> RawConnection() {
    absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path_, Database::Options{});
    EXPECT_TRUE(db.ok()) << db.status();
    return db.ok() ? std::move(*db) : nullptr;
  }

  // Writes one group and expects it to succeed.
  std::vector<BatchResult> Write(std::vector<PendingBatch*> batches, int64_t now_ns = kNow) {
    absl::StatusOr<std::vector<BatchResult>> results = store_->WriteBatches(absl::MakeConstSpan(batches), now_ns);
    EXPECT_TRUE(results.ok()) << results.status();
    if (!results.ok()) return {};
    EXPECT_EQ(results->size(), batches.size());
    return std::move(*results);
  }
  BatchResult WriteOne(PendingBatch batch, int64_t now_ns = kNow) {
    std::vector<BatchResult> results = Write({&batch}, now_ns);
    return results.empty() ? BatchResult{} : results[0];
  }

  std::vector<Trade> LoadAll(const DatasetQuery& query = {}) {
    absl::StatusOr<std::vector<Trade>> trades = store_->LoadTrades(query);
    EXPECT_TRUE(trades.ok()) << trades.status();
    return trades.ok() ? *trades : std::vector<Trade>{};
  }

  clm::v1::DatasetSummary Summary(const DatasetQuery& query) {
    absl::StatusOr<clm::v1::DatasetSummary> s = store_->Summarize(query);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : clm::v1::DatasetSummary{};
  }

  clm::v1::ListDeadLettersResponse DeadLetters(uint32_t limit, uint64_t before_id = 0) {
    absl::StatusOr<clm::v1::ListDeadLettersResponse> page = store_->ListDeadLetters(limit, before_id);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? *page : clm::v1::ListDeadLettersResponse{};
  }

  int64_t MaxSeq() {
    absl::StatusOr<int64_t> seq = store_->MaxSeq();
    EXPECT_TRUE(seq.ok()) << seq.status();
    return seq.ok() ? *seq : -1;
  }

  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<SqliteTradeStore> store_;
};

TEST_F(SqliteTradeStoreTest, EmptyStore) {
  EXPECT_EQ(MaxSeq(), 0);
  EXPECT_TRUE(LoadAll().empty());
  clm::v1::DatasetSummary s = Summary({});
  EXPECT_EQ(s.total(), 0u);
  EXPECT_FALSE(s.has_first_closed_at());
  EXPECT_FALSE(s.has_last_closed_at());
  EXPECT_EQ(s.span_days(), 0.0);
  clm::v1::ListDeadLettersResponse page = DeadLetters(10);
  EXPECT_EQ(page.entries_size(), 0);
  EXPECT_EQ(page.next_before_id(), 0u);
  EXPECT_GT(store_->SizeBytes(), 0);
}

TEST_F(SqliteTradeStoreTest, WritesAndReadsBackEveryFieldOrderedByCloseTimeThenSeq) {
  TradeOutcome a = MakeTrade("a", kT0 + 20 * kSecond + 5'000);
  (*a.mutable_model_confidences())["xgboost"] = 0.61;
  (*a.mutable_model_confidences())["lightgbm"] = 0.58;
  (*a.mutable_model_confidences())["catboost"] = 0.0;
  TradeOutcome b = MakeTrade("b", kT0 + 10 * kSecond, "ETHUSDT", "ensemble_v3", TradeOutcome::LOSS);
  b.set_confidence(0.25);
  b.set_pnl(-12.5);
  b.set_side(TradeOutcome::SHORT);
  *b.mutable_opened_at() = FromNanos(kT0 + 5 * kSecond + 7'000);
  TradeOutcome c = MakeTrade("c", kT0 + 10 * kSecond, "BTCUSDT", "", TradeOutcome::NEUTRAL);
  c.set_confidence(1.0);
  c.set_side(TradeOutcome::LONG);

  BatchResult r = WriteOne(MakeBatch(1, {{a, 11}, {b, 12}, {c, 13}}));
  EXPECT_EQ(r.accepted, 3u);
  EXPECT_EQ(r.duplicates, 0u);
  EXPECT_TRUE(r.conflicts.empty());
  EXPECT_EQ(MaxSeq(), 3);

  std::vector<Trade> trades = LoadAll();
  ASSERT_THAT(Ids(trades), ElementsAre("b", "c", "a"));  // b and c close together: ingest order decides

  const Trade& tb = trades[0];
  EXPECT_EQ(tb.seq, 2);
  EXPECT_EQ(tb.symbol, "ETHUSDT");
  EXPECT_EQ(tb.model_id, "ensemble_v3");
  EXPECT_EQ(tb.confidence, 0.25);
  EXPECT_EQ(tb.outcome, Outcome::kLoss);
  EXPECT_EQ(tb.pnl, -12.5);
  EXPECT_EQ(tb.opened_at_us, (kT0 + 5 * kSecond + 7'000) / 1000);
  EXPECT_EQ(tb.closed_at_us, (kT0 + 10 * kSecond) / 1000);
  EXPECT_EQ(tb.side, TradeOutcome::SHORT);
  EXPECT_TRUE(tb.model_confidences.empty());

  const Trade& tc = trades[1];
  EXPECT_EQ(tc.seq, 3);
  EXPECT_EQ(tc.model_id, "");
  EXPECT_EQ(tc.confidence, 1.0);
  EXPECT_EQ(tc.outcome, Outcome::kNeutral);
  EXPECT_EQ(tc.side, TradeOutcome::LONG);
  EXPECT_EQ(tc.opened_at_us, 0);  // absent

  const Trade& ta = trades[2];
  EXPECT_EQ(ta.seq, 1);
  EXPECT_EQ(ta.symbol, "BTCUSDT");
  EXPECT_EQ(ta.model_id, "m1");
  EXPECT_EQ(ta.outcome, Outcome::kWin);
  EXPECT_EQ(ta.pnl, 1.0);
  EXPECT_EQ(ta.opened_at_us, 0);
  EXPECT_EQ(ta.closed_at_us, (kT0 + 20 * kSecond + 5'000) / 1000);
  EXPECT_EQ(ta.side, 0);
  EXPECT_THAT(ta.model_confidences,
              ElementsAre(Pair("catboost", 0.0), Pair("lightgbm", 0.58), Pair("xgboost", 0.61)));
}

TEST_F(SqliteTradeStoreTest, LoadTradesAppliesEveryFilter) {
  WriteOne(MakeBatch(1, {{MakeTrade("t1", kT0, "BTC", "m1"), 1},
                         {MakeTrade("t2", kT0 + kDay, "BTC", "m2"), 2},
                         {MakeTrade("t3", kT0 + 2 * kDay, "ETH", "m1"), 3},
                         {MakeTrade("t4", kT0 + 3 * kDay, "ETH", "m2"), 4}}));
  EXPECT_THAT(Ids(LoadAll(Query("ETH", "", std::nullopt, std::nullopt, 0))), ElementsAre("t3", "t4"));
  EXPECT_THAT(Ids(LoadAll(Query("", "m1", std::nullopt, std::nullopt, 0))), ElementsAre("t1", "t3"));
  EXPECT_THAT(Ids(LoadAll(Query("", "", kT0 + kDay, std::nullopt, 0))), ElementsAre("t2", "t3", "t4"));
  EXPECT_THAT(Ids(LoadAll(Query("", "", std::nullopt, kT0 + 2 * kDay, 0))), ElementsAre("t1", "t2"));
  EXPECT_THAT(Ids(LoadAll(Query("", "", std::nullopt, std::nullopt, 2))), ElementsAre("t3", "t4"));
  EXPECT_THAT(Ids(LoadAll(Query("BTC", "m2", kT0, kT0 + kDay + 1, 0))),
              ElementsAre("t2"));
  EXPECT_TRUE(LoadAll(Query("nope", "", std::nullopt, std::nullopt, 0)).empty());
}

TEST_F(SqliteTradeStoreTest, SameIdSameContentIsDuplicateStoredOnce) {
  BatchResult first = WriteOne(MakeBatch(1, {{MakeTrade("x", kT0), 7}}));
  EXPECT_EQ(first.accepted, 1u);

  BatchResult second = WriteOne(MakeBatch(2, {{MakeTrade("x", kT0), 7}, {MakeTrade("y", kT0), 8}}));
  EXPECT_EQ(second.accepted, 1u);
  EXPECT_EQ(second.duplicates, 1u);
  EXPECT_TRUE(second.conflicts.empty());

  EXPECT_THAT(Ids(LoadAll()), ElementsAre("x", "y"));
  EXPECT_EQ(MaxSeq(), 2);
  EXPECT_EQ(DeadLetters(10).entries_size(), 0);
}

TEST_F(SqliteTradeStoreTest, SameIdDifferentContentIsConflictDeadLetteredAndStoredTradeKept) {
  WriteOne(MakeBatch(1, {{MakeTrade("x", kT0, "BTCUSDT"), 7}}));

  PendingBatch batch = MakeBatch(2, {{MakeTrade("y", kT0), 8}, {MakeTrade("x", kT0, "ETHUSDT"), 9}});
  batch.indices = {3, 4};  // positions as sent: the trades before them failed validation elsewhere
  BatchResult r = WriteOne(std::move(batch), kNow + 5);
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_EQ(r.duplicates, 0u);
  ASSERT_EQ(r.conflicts.size(), 1u);
  EXPECT_EQ(r.conflicts[0].index, 4u);
  EXPECT_EQ(r.conflicts[0].trade_id, "x");
  EXPECT_EQ(r.conflicts[0].field, "trade_id");
  EXPECT_THAT(r.conflicts[0].reason, HasSubstr("conflict"));

  std::vector<Trade> trades = LoadAll();
  ASSERT_THAT(Ids(trades), ElementsAre("x", "y"));
  EXPECT_EQ(trades[0].symbol, "BTCUSDT");  // untouched
  EXPECT_EQ(trades[0].seq, 1);

  clm::v1::ListDeadLettersResponse page = DeadLetters(10);
  ASSERT_EQ(page.entries_size(), 1);
  const clm::v1::DeadLetter& dl = page.entries(0);
  EXPECT_EQ(dl.batch_id(), 2u);
  EXPECT_EQ(dl.index(), 4u);
  EXPECT_EQ(dl.trade_id(), "x");
  EXPECT_EQ(dl.field(), "trade_id");
  EXPECT_THAT(dl.reason(), HasSubstr("conflict"));
  EXPECT_EQ(ToNanos(dl.received_at()), kNow + 5);
  EXPECT_EQ(dl.trade().trade_id(), "x");
  EXPECT_EQ(dl.trade().symbol(), "ETHUSDT");  // the payload as received, not the stored trade
}

TEST_F(SqliteTradeStoreTest, DuplicatesAndConflictsWithinOneBatch) {
  BatchResult r = WriteOne(MakeBatch(1, {{MakeTrade("x", kT0), 1},
                                         {MakeTrade("x", kT0), 1},
                                         {MakeTrade("y", kT0), 2},
                                         {MakeTrade("y", kT0, "ETH"), 3}}));
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_EQ(r.duplicates, 1u);
  ASSERT_EQ(r.conflicts.size(), 1u);
  EXPECT_EQ(r.conflicts[0].index, 3u);
  EXPECT_EQ(r.conflicts[0].trade_id, "y");
  std::vector<Trade> trades = LoadAll();
  ASSERT_THAT(Ids(trades), ElementsAre("x", "y"));
  EXPECT_EQ(trades[1].symbol, "BTCUSDT");
  EXPECT_EQ(MaxSeq(), 2);
}

TEST_F(SqliteTradeStoreTest, DuplicatesAndConflictsAcrossBatchesOfOneGroup) {
  PendingBatch b1 = MakeBatch(1, {{MakeTrade("z", kT0), 5}});
  PendingBatch b2 = MakeBatch(2, {{MakeTrade("z", kT0), 5}});
  PendingBatch b3 = MakeBatch(3, {{MakeTrade("z", kT0, "ETH"), 6}, {MakeTrade("w", kT0), 7}});
  std::vector<BatchResult> r = Write({&b1, &b2, &b3});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].accepted, 1u);
  EXPECT_EQ(r[0].duplicates, 0u);
  EXPECT_EQ(r[1].accepted, 0u);
  EXPECT_EQ(r[1].duplicates, 1u);
  EXPECT_TRUE(r[1].conflicts.empty());
  EXPECT_EQ(r[2].accepted, 1u);
  EXPECT_EQ(r[2].duplicates, 0u);
  ASSERT_EQ(r[2].conflicts.size(), 1u);
  EXPECT_EQ(r[2].conflicts[0].index, 0u);
  EXPECT_THAT(Ids(LoadAll()), ElementsAre("z", "w"));
  clm::v1::ListDeadLettersResponse page = DeadLetters(10);
  ASSERT_EQ(page.entries_size(), 1);
  EXPECT_EQ(page.entries(0).batch_id(), 3u);
}

TEST_F(SqliteTradeStoreTest, ValidationRejectionsGoToDeadLetters) {
  TradeOutcome bad = MakeTrade("bad", kT0);
  bad.set_confidence(1.7);
  PendingBatch batch = MakeBatch(42, {{MakeTrade("good", kT0), 1}});
  batch.indices = {0};
  batch.rejected.push_back(MakeRejection(1, bad, "confidence", "must be within [0, 1], got 1.7"));
  BatchResult r = WriteOne(std::move(batch));
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_TRUE(r.conflicts.empty());  // validation rejections are the caller's to report

  EXPECT_THAT(Ids(LoadAll()), ElementsAre("good"));
  clm::v1::ListDeadLettersResponse page = DeadLetters(10);
  ASSERT_EQ(page.entries_size(), 1);
  const clm::v1::DeadLetter& dl = page.entries(0);
  EXPECT_EQ(dl.id(), 1u);
  EXPECT_EQ(dl.batch_id(), 42u);
  EXPECT_EQ(dl.index(), 1u);
  EXPECT_EQ(dl.trade_id(), "bad");
  EXPECT_EQ(dl.field(), "confidence");
  EXPECT_EQ(dl.reason(), "must be within [0, 1], got 1.7");
  EXPECT_EQ(ToNanos(dl.received_at()), kNow);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(dl.trade(), bad)) << dl.trade().DebugString();
}

TEST_F(SqliteTradeStoreTest, ListDeadLettersPagesNewestFirst) {
  PendingBatch batch;
  batch.batch_id = 1;
  for (uint32_t i = 0; i < 5; ++i) {
    batch.rejected.push_back(MakeRejection(i, MakeTrade("r" + std::to_string(i), kT0), "symbol", "is required"));
  }
  WriteOne(std::move(batch));

  clm::v1::ListDeadLettersResponse page = DeadLetters(2);
  EXPECT_THAT(DeadLetterIds(page), ElementsAre(5u, 4u));
  EXPECT_EQ(page.entries(0).trade_id(), "r4");
  EXPECT_EQ(page.next_before_id(), 4u);

  page = DeadLetters(2, 4);
  EXPECT_THAT(DeadLetterIds(page), ElementsAre(3u, 2u));
  EXPECT_EQ(page.next_before_id(), 2u);

  page = DeadLetters(2, 2);
  EXPECT_THAT(DeadLetterIds(page), ElementsAre(1u));
  EXPECT_EQ(page.next_before_id(), 0u);

  page = DeadLetters(5);  // exactly everything: no next page
  EXPECT_THAT(DeadLetterIds(page), ElementsAre(5u, 4u, 3u, 2u, 1u));
  EXPECT_EQ(page.next_before_id(), 0u);

  page = DeadLetters(100, 1);
  EXPECT_EQ(page.entries_size(), 0);
  EXPECT_EQ(page.next_before_id(), 0u);
}

// Regression: limit 0 once read entries(-1) as soon as one row existed.
TEST_F(SqliteTradeStoreTest, ListDeadLettersWithZeroLimitReturnsNothing) {
  PendingBatch batch;
  batch.batch_id = 1;
  batch.rejected.push_back(MakeRejection(0, MakeTrade("r", kT0), "symbol", "is required"));
  WriteOne(std::move(batch));
  clm::v1::ListDeadLettersResponse page = DeadLetters(0);
  EXPECT_EQ(page.entries_size(), 0);
}

TEST_F(SqliteTradeStoreTest, SummarizeAppliesEveryFilter) {
  WriteOne(MakeBatch(1, {{MakeTrade("t1", kT0, "BTC", "m1", TradeOutcome::WIN), 1},
                         {MakeTrade("t2", kT0 + kDay, "BTC", "m1", TradeOutcome::LOSS), 2},
                         {MakeTrade("t3", kT0 + 2 * kDay, "ETH", "m2", TradeOutcome::WIN), 3},
                         {MakeTrade("t4", kT0 + 3 * kDay + 12 * 3600 * kSecond, "ETH", "", TradeOutcome::NEUTRAL), 4}}));

  clm::v1::DatasetSummary all = Summary({});
  EXPECT_EQ(all.total(), 4u);
  EXPECT_EQ(all.wins(), 2u);
  EXPECT_EQ(all.losses(), 1u);
  EXPECT_EQ(all.neutrals(), 1u);
  EXPECT_EQ(ToNanos(all.first_closed_at()), kT0);
  EXPECT_EQ(ToNanos(all.last_closed_at()), kT0 + 3 * kDay + 12 * 3600 * kSecond);
  EXPECT_DOUBLE_EQ(all.span_days(), 3.5);
  EXPECT_THAT(all.trades_per_symbol(), UnorderedElementsAre(Pair("BTC", 2u), Pair("ETH", 2u)));
  EXPECT_THAT(all.trades_per_model(), UnorderedElementsAre(Pair("m1", 2u), Pair("m2", 1u), Pair("", 1u)));

  clm::v1::DatasetSummary btc = Summary(Query("BTC", "", std::nullopt, std::nullopt, 0));
  EXPECT_EQ(btc.total(), 2u);
  EXPECT_EQ(btc.wins(), 1u);
  EXPECT_EQ(btc.losses(), 1u);
  EXPECT_EQ(btc.neutrals(), 0u);
  EXPECT_DOUBLE_EQ(btc.span_days(), 1.0);
  EXPECT_THAT(btc.trades_per_symbol(), UnorderedElementsAre(Pair("BTC", 2u)));
  EXPECT_THAT(btc.trades_per_model(), UnorderedElementsAre(Pair("m1", 2u)));

  clm::v1::DatasetSummary m2 = Summary(Query("", "m2", std::nullopt, std::nullopt, 0));
  EXPECT_EQ(m2.total(), 1u);
  EXPECT_EQ(m2.wins(), 1u);
  EXPECT_EQ(ToNanos(m2.first_closed_at()), kT0 + 2 * kDay);
  EXPECT_EQ(ToNanos(m2.last_closed_at()), kT0 + 2 * kDay);
  EXPECT_EQ(m2.span_days(), 0.0);

  clm::v1::DatasetSummary from = Summary(Query("", "", kT0 + kDay, std::nullopt, 0));  // inclusive
  EXPECT_EQ(from.total(), 3u);
  EXPECT_EQ(ToNanos(from.first_closed_at()), kT0 + kDay);
  EXPECT_EQ(from.wins(), 1u);

  clm::v1::DatasetSummary to = Summary(Query("", "", std::nullopt, kT0 + 2 * kDay, 0));  // exclusive
  EXPECT_EQ(to.total(), 2u);
  EXPECT_EQ(ToNanos(to.last_closed_at()), kT0 + kDay);

  clm::v1::DatasetSummary window = Summary(Query("", "", kT0 + kDay, kT0 + kDay + 1, 0));
  EXPECT_EQ(window.total(), 1u);
  EXPECT_EQ(window.losses(), 1u);

  clm::v1::DatasetSummary combined = Summary(Query("ETH", "m2", kT0, std::nullopt, 0));
  EXPECT_EQ(combined.total(), 1u);
  EXPECT_THAT(combined.trades_per_model(), UnorderedElementsAre(Pair("m2", 1u)));

  clm::v1::DatasetSummary none = Summary(Query("BTC", "", kT0 + 2 * kDay, std::nullopt, 0));
  EXPECT_EQ(none.total(), 0u);
  EXPECT_FALSE(none.has_first_closed_at());
  EXPECT_EQ(none.span_days(), 0.0);
  EXPECT_TRUE(none.trades_per_symbol().empty());
}

TEST_F(SqliteTradeStoreTest, LongReadsStopWhenTheCallerSaysSoAndTheConnectionStaysUsable) {
  std::vector<std::pair<TradeOutcome, uint64_t>> trades;
  for (int i = 0; i < 5000; ++i) trades.push_back({MakeTrade(absl::StrCat("t", i), kT0 + i * kSecond), 1000 + i});
  WriteOne(MakeBatch(1, std::move(trades)));

  int polls = 0;
  DatasetQuery stopped;
  stopped.stop = [&polls] { return ++polls >= 2; };  // the caller leaves while the scan runs
  absl::StatusOr<clm::v1::DatasetSummary> summary = store_->Summarize(stopped);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kCancelled) << summary.status();
  EXPECT_EQ(polls, 2);

  polls = 0;
  absl::StatusOr<std::vector<Trade>> loaded = store_->LoadTrades(stopped);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kCancelled) << loaded.status();

  // A caller still waiting gets everything; the pooled connection no longer carries the old stop.
  DatasetQuery waiting;
  waiting.stop = [] { return false; };
  absl::StatusOr<clm::v1::DatasetSummary> full = store_->Summarize(waiting);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->total(), 5000u);
  EXPECT_EQ(Summary({}).total(), 5000u);
  EXPECT_EQ(LoadAll().size(), 5000u);
}

TEST_F(SqliteTradeStoreTest, MaxSeqCountsStoredTradesOnly) {
  EXPECT_EQ(MaxSeq(), 0);
  WriteOne(MakeBatch(1, {{MakeTrade("a", kT0), 1}, {MakeTrade("b", kT0), 2}}));
  EXPECT_EQ(MaxSeq(), 2);
  WriteOne(MakeBatch(2, {{MakeTrade("a", kT0), 1}, {MakeTrade("b", kT0, "ETH"), 3}}));  // duplicate, conflict
  EXPECT_EQ(MaxSeq(), 2);
  WriteOne(MakeBatch(3, {{MakeTrade("c", kT0), 4}}));
  EXPECT_EQ(MaxSeq(), 3);
}

TEST_F(SqliteTradeStoreTest, ReopeningKeepsEverythingAndMigrationIsIdempotent) {
  PendingBatch batch = MakeBatch(1, {{MakeTrade("a", kT0), 1}, {MakeTrade("b", kT0 + kSecond), 2}});
  batch.rejected.push_back(MakeRejection(2, MakeTrade("c", kT0), "symbol", "is required"));
  WriteOne(std::move(batch));

  OpenStore();
  OpenStore();  // twice: the second open finds the schema current
  EXPECT_THAT(Ids(LoadAll()), ElementsAre("a", "b"));
  EXPECT_EQ(MaxSeq(), 2);
  EXPECT_THAT(DeadLetterIds(DeadLetters(10)), ElementsAre(1u));

  // Idempotency survives the restart: the stored hash still tells duplicates from conflicts.
  BatchResult r = WriteOne(MakeBatch(2, {{MakeTrade("a", kT0), 1}, {MakeTrade("b", kT0), 99}, {MakeTrade("d", kT0), 4}}));
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(r.conflicts.size(), 1u);
  EXPECT_EQ(MaxSeq(), 3);

  std::unique_ptr<Database> raw = RawConnection();
  ASSERT_NE(raw, nullptr);
  absl::StatusOr<Statement> stmt = raw->Prepare("SELECT COUNT(*), MAX(version) FROM schema_migrations");
  ASSERT_TRUE(stmt.ok()) << stmt.status();
  absl::StatusOr<bool> row = stmt->Step();
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ(stmt->ColumnInt(0), LatestSchemaVersion());  // one row per migration, none applied twice
  EXPECT_EQ(stmt->ColumnInt(1), LatestSchemaVersion());
}

TEST_F(SqliteTradeStoreTest, DatabaseFromNewerBuildIsRefused) {
  WriteOne(MakeBatch(1, {{MakeTrade("a", kT0), 1}}));
  store_.reset();
  {
    std::unique_ptr<Database> raw = RawConnection();
    ASSERT_NE(raw, nullptr);
    ASSERT_TRUE(raw->Exec(absl::StrCat("INSERT INTO schema_migrations(version, applied_at_ns) VALUES(",
                                       LatestSchemaVersion() + 1, ", 0)"))
                    .ok());
  }
  absl::StatusOr<std::unique_ptr<SqliteTradeStore>> store = SqliteTradeStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr(absl::StrCat("schema version ", LatestSchemaVersion() + 1, " is newer than this build")));
}

TEST_F(SqliteTradeStoreTest, FailedGroupStoresNothingAndStoreRecovers) {
  // Make the dead-letter insert fail after the group's trades were inserted: the whole group must roll back.
  std::unique_ptr<Database> raw = RawConnection();
  ASSERT_NE(raw, nullptr);
  ASSERT_TRUE(raw->Exec("ALTER TABLE dead_letters RENAME TO dead_letters_moved").ok());

  PendingBatch b1 = MakeBatch(1, {{MakeTrade("a", kT0), 1}, {MakeTrade("b", kT0), 2}});
  PendingBatch b2 = MakeBatch(2, {{MakeTrade("c", kT0), 3}});
  b2.rejected.push_back(MakeRejection(1, MakeTrade("bad", kT0), "symbol", "is required"));
  std::vector<PendingBatch*> group = {&b1, &b2};
  absl::StatusOr<std::vector<BatchResult>> results = store_->WriteBatches(absl::MakeConstSpan(group), kNow);
  ASSERT_FALSE(results.ok());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kInternal) << results.status();
  EXPECT_THAT(std::string(results.status().message()), HasSubstr("dead_letters"));

  EXPECT_TRUE(LoadAll().empty());
  EXPECT_EQ(MaxSeq(), 0);
  EXPECT_EQ(Summary({}).total(), 0u);

  // Once the fault is gone the same group goes through, with the same results as if it never failed.
  ASSERT_TRUE(raw->Exec("ALTER TABLE dead_letters_moved RENAME TO dead_letters").ok());
  std::vector<BatchResult> r = Write(group);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].accepted, 2u);
  EXPECT_EQ(r[1].accepted, 1u);
  EXPECT_EQ(r[1].duplicates, 0u);
  EXPECT_THAT(Ids(LoadAll()), ElementsAre("a", "b", "c"));
  EXPECT_THAT(DeadLetterIds(DeadLetters(10)), ElementsAre(1u));
}

TEST_F(SqliteTradeStoreTest, ConflictWhoseDeadLetterFailsRollsBackTheGroup) {
  WriteOne(MakeBatch(1, {{MakeTrade("x", kT0), 1}}));
  std::unique_ptr<Database> raw = RawConnection();
  ASSERT_NE(raw, nullptr);
  ASSERT_TRUE(raw->Exec("DROP TABLE dead_letters").ok());

  PendingBatch b = MakeBatch(2, {{MakeTrade("y", kT0), 2}, {MakeTrade("x", kT0, "ETH"), 3}});
  std::vector<PendingBatch*> group = {&b};
  absl::StatusOr<std::vector<BatchResult>> results = store_->WriteBatches(absl::MakeConstSpan(group), kNow);
  ASSERT_FALSE(results.ok());
  EXPECT_THAT(Ids(LoadAll()), ElementsAre("x"));
  EXPECT_EQ(MaxSeq(), 1);
}

TEST_F(SqliteTradeStoreTest, TwoStoresOnOneFileInterleaveWritesWithoutDuplicates) {
  absl::StatusOr<std::unique_ptr<SqliteTradeStore>> other = SqliteTradeStore::Open(path_);
  ASSERT_TRUE(other.ok()) << other.status();
  WriteOne(MakeBatch(1, {{MakeTrade("x", kT0), 1}}));
  PendingBatch b = MakeBatch(2, {{MakeTrade("y", kT0), 2}});
  std::vector<PendingBatch*> group = {&b};
  absl::StatusOr<std::vector<BatchResult>> from_other = (*other)->WriteBatches(absl::MakeConstSpan(group), kNow);
  ASSERT_TRUE(from_other.ok()) << from_other.status();
  BatchResult r = WriteOne(MakeBatch(3, {{MakeTrade("z", kT0), 3}}));
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_THAT(Ids(LoadAll()), ElementsAre("x", "y", "z"));
}

// Regression: find_hash was left stepped on a row after a duplicate, keeping the writer's read transaction
// (an old WAL snapshot) open, so a commit by another connection made every later BEGIN IMMEDIATE fail.
TEST_F(SqliteTradeStoreTest, TwoStoresOnOneFileInterleaveWritesAfterDuplicate) {
  absl::StatusOr<std::unique_ptr<SqliteTradeStore>> other = SqliteTradeStore::Open(path_);
  ASSERT_TRUE(other.ok()) << other.status();

  WriteOne(MakeBatch(1, {{MakeTrade("x", kT0), 1}}));
  BatchResult dup = WriteOne(MakeBatch(2, {{MakeTrade("x", kT0), 1}}));  // leaves find_hash stepped
  EXPECT_EQ(dup.duplicates, 1u);

  PendingBatch b = MakeBatch(3, {{MakeTrade("y", kT0), 2}, {MakeTrade("x", kT0), 1}});
  std::vector<PendingBatch*> group = {&b};
  absl::StatusOr<std::vector<BatchResult>> from_other = (*other)->WriteBatches(absl::MakeConstSpan(group), kNow);
  ASSERT_TRUE(from_other.ok()) << from_other.status();
  EXPECT_EQ((*from_other)[0].accepted, 1u);
  EXPECT_EQ((*from_other)[0].duplicates, 1u);

  for (int attempt = 0; attempt < 2; ++attempt) {  // a retry must not be stuck either
    PendingBatch retry = MakeBatch(4, {{MakeTrade("y", kT0), 2}, {MakeTrade("z", kT0), 3}});
    std::vector<PendingBatch*> retry_group = {&retry};
    absl::StatusOr<std::vector<BatchResult>> r = store_->WriteBatches(absl::MakeConstSpan(retry_group), kNow);
    ASSERT_TRUE(r.ok()) << "attempt " << attempt << ": " << r.status();
    EXPECT_EQ((*r)[0].accepted, attempt == 0 ? 1u : 0u);
    EXPECT_EQ((*r)[0].duplicates, attempt == 0 ? 1u : 2u);
  }
  EXPECT_THAT(Ids(LoadAll()), ElementsAre("x", "y", "z"));
}

// Regression: with find_hash left stepped after the first duplicate, the writer kept a read transaction open
// forever, so no checkpoint could ever finish and the WAL grew with every write until the process restarted.
TEST_F(SqliteTradeStoreTest, WalCanBeFullyCheckpointedAfterADuplicate) {
  WriteOne(MakeBatch(1, {{MakeTrade("seed", kT0), 1}}));
  WriteOne(MakeBatch(2, {{MakeTrade("seed", kT0), 1}}));  // a duplicate: an ordinary client retry
  for (int g = 0; g < 50; ++g) {
    std::vector<std::pair<TradeOutcome, uint64_t>> trades;
    for (int i = 0; i < 100; ++i) {
      trades.push_back({MakeTrade(absl::StrCat(g, "-", i, "-", std::string(100, 'p')), kT0), 1});
    }
    WriteOne(MakeBatch(static_cast<uint64_t>(g + 3), std::move(trades)));
  }
  absl::StatusOr<std::unique_ptr<Database>> raw = Database::Open(path_, Database::Options{});
  ASSERT_TRUE(raw.ok()) << raw.status();
  absl::StatusOr<Statement> checkpoint = (*raw)->Prepare("PRAGMA wal_checkpoint(TRUNCATE)");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  absl::StatusOr<bool> row = checkpoint->Step();
  ASSERT_TRUE(row.ok() && *row) << row.status();
  EXPECT_EQ(checkpoint->ColumnInt(0), 0) << "a connection still holds an old snapshot: the checkpoint was blocked";
  std::error_code ec;
  EXPECT_EQ(std::filesystem::file_size(path_ + "-wal", ec), 0u);
}

TEST(TimestampConversionTest, RoundTripsIncludingBeforeEpoch) {
  for (int64_t ns : {int64_t{0}, int64_t{1}, kT0 + 999'999'999, int64_t{-1}, -kSecond - 1}) {
    google::protobuf::Timestamp ts = FromNanos(ns);
    EXPECT_GE(ts.nanos(), 0) << ns;
    EXPECT_LE(ts.nanos(), 999'999'999) << ns;
    EXPECT_EQ(ToNanos(ts), ns);
  }
  google::protobuf::Timestamp ts = FromNanos(-1);
  EXPECT_EQ(ts.seconds(), -1);
  EXPECT_EQ(ts.nanos(), 999'999'999);
}

}  // namespace
}  // namespace clm::store
