// SqliteCadenceStateStore and SqliteSnapshotSource against a real database file.
#include "lib/store/sqlite_cadence_store.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clm/v1/trade.pb.h"
#include "gtest/gtest.h"
#include "lib/cadence/monitor.h"
#include "lib/store/sqlite.h"
#include "tests/testing/test_util.h"

namespace clm::store {
namespace {

using clm::v1::ModeChange;
using clm::v1::MonitorDecision;
using clm::v1::TradeOutcome;

constexpr int64_t kSecondNs = 1'000'000'000;
constexpr int64_t kBaseNs = 1'770'397'200 * kSecondNs;  // 2026-02-06T17:00:00Z

ModeChange Change(int64_t seconds, clm::v1::LearningMode from, clm::v1::LearningMode to, const std::string& by) {
  ModeChange c;
  c.mutable_changed_at()->set_seconds(seconds);
  c.set_from_mode(from);
  c.set_to_mode(to);
  c.set_changed_by(by);
  c.set_reason(absl::StrCat("because ", by));
  return c;
}

MonitorDecision Decision(uint64_t id, const std::string& reason) {
  MonitorDecision d;
  d.set_id(id);
  d.mutable_decided_at()->set_seconds(1'770'000'000 + static_cast<int64_t>(id));
  d.set_mode(clm::v1::LOGGING_ONLY);
  d.set_action(clm::v1::MONITOR_ACTION_SKIPPED);
  d.set_reason(reason);
  return d;
}

class SqliteCadenceStoreTest : public ::testing::Test {
 protected:
  std::string path() const { return dir_.path() + "/clm.db"; }

  std::unique_ptr<SqliteCadenceStateStore> OpenState() {
    auto state = SqliteCadenceStateStore::Open(path());
    EXPECT_TRUE(state.ok()) << state.status();
    return state.ok() ? std::move(*state) : nullptr;
  }

  // A connection that writes rows the way the ingest writer and the job system would.
  std::unique_ptr<Database> Raw() {
    auto db = Database::Open(path(), Database::Options{});
    EXPECT_TRUE(db.ok()) << db.status();
    return std::move(*db);
  }

  void InsertTrade(Database& db, const std::string& id, const std::string& symbol, const std::string& model,
                   TradeOutcome::Outcome outcome, int64_t closed_at_ns) {
    auto stmt = db.Prepare(
        "INSERT INTO trades(trade_id, content_hash, symbol, model_id, confidence, outcome, pnl, closed_at_ns, "
        "side, ingested_at_ns) VALUES(?, 0, ?, ?, 0.6, ?, 1.0, ?, 1, ?)");
    ASSERT_TRUE(stmt.ok()) << stmt.status();
    stmt->BindText(1, id);
    stmt->BindText(2, symbol);
    stmt->BindText(3, model);
    stmt->BindInt(4, outcome);
    stmt->BindInt(5, closed_at_ns);
    stmt->BindInt(6, closed_at_ns);
    ASSERT_TRUE(stmt->Run().ok());
  }

  void InsertTraining(Database& db, const std::string& job_id, int64_t finished_at_ns, int64_t max_seq) {
    auto stmt = db.Prepare("INSERT INTO trainings(job_id, finished_at_ns, max_seq) VALUES(?, ?, ?)");
    ASSERT_TRUE(stmt.ok()) << stmt.status();
    stmt->BindText(1, job_id);
    stmt->BindInt(2, finished_at_ns);
    stmt->BindInt(3, max_seq);
    ASSERT_TRUE(stmt->Run().ok());
  }

  cadence::SourceSnapshot Load(SqliteSnapshotSource& source, const cadence::Scope& scope) {
    auto snapshot = source.Load(scope);
    EXPECT_TRUE(snapshot.ok()) << snapshot.status();
    return snapshot.ok() ? *snapshot : cadence::SourceSnapshot{};
  }

  clm::testing::TempDir dir_;
};

TEST_F(SqliteCadenceStoreTest, ModeChangesDecisionsAndPendingJobSurviveReopen) {
  {
    auto state = OpenState();
    ASSERT_NE(state, nullptr);
    ASSERT_TRUE(state->AppendModeChange(Change(100, clm::v1::LOGGING_ONLY, clm::v1::AUTO_CALIBRATE, "alice")).ok());
    ASSERT_TRUE(state->AppendModeChange(Change(200, clm::v1::AUTO_CALIBRATE, clm::v1::AUTO_SHADOW, "bob")).ok());
    for (uint64_t id = 1; id <= 3; ++id) ASSERT_TRUE(state->AppendDecision(Decision(id, absl::StrCat("d", id))).ok());
    ASSERT_TRUE(state->SavePendingJob("cal_20260206_170000").ok());
  }
  auto state = OpenState();
  ASSERT_NE(state, nullptr);

  auto changes = state->LoadModeChanges(10);
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->size(), 2u);
  EXPECT_EQ((*changes)[0].to_mode(), clm::v1::AUTO_SHADOW);  // newest first
  EXPECT_EQ((*changes)[0].changed_by(), "bob");
  EXPECT_EQ((*changes)[0].reason(), "because bob");
  EXPECT_EQ((*changes)[0].changed_at().seconds(), 200);
  EXPECT_EQ((*changes)[1].changed_by(), "alice");
  auto newest = state->LoadModeChanges(1);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].changed_by(), "bob");

  auto decisions = state->LoadDecisions(2);
  ASSERT_TRUE(decisions.ok()) << decisions.status();
  ASSERT_EQ(decisions->size(), 2u);
  EXPECT_EQ((*decisions)[0].id(), 3u);
  EXPECT_EQ((*decisions)[0].reason(), "d3");
  EXPECT_EQ((*decisions)[1].id(), 2u);

  auto pending = state->LoadPendingJob();
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(*pending, "cal_20260206_170000");
  ASSERT_TRUE(state->SavePendingJob("").ok());
  state.reset();
  state = OpenState();
  pending = state->LoadPendingJob();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(*pending, "");
}

TEST_F(SqliteCadenceStoreTest, AnEmptyStoreHasNoStateAndLimitZeroReadsNothing) {
  auto state = OpenState();
  ASSERT_NE(state, nullptr);
  ASSERT_TRUE(state->AppendDecision(Decision(1, "only")).ok());
  EXPECT_TRUE(state->LoadModeChanges(10)->empty());
  EXPECT_TRUE(state->LoadDecisions(0)->empty());
  EXPECT_EQ(*state->LoadPendingJob(), "");
}

TEST_F(SqliteCadenceStoreTest, MonitorKeepsTheOperatorsModeAcrossARestart) {
  auto state = OpenState();
  auto source = SqliteSnapshotSource::Open(path());
  ASSERT_TRUE(source.ok()) << source.status();
  cadence::SystemClock clock;
  clm::v1::CadencePolicy policy;
  {
    auto monitor = cadence::Monitor::Create(policy, {source->get(), state.get(), &clock, nullptr});
    ASSERT_TRUE(monitor.ok()) << monitor.status();
    ASSERT_TRUE((*monitor)->RunOnce().ok());
    // Without a launcher only LOGGING_ONLY can be chosen; the change is still recorded with who and why.
    auto change = (*monitor)->SetMode(clm::v1::LOGGING_ONLY, "carol", "quiet week");
    ASSERT_TRUE(change.ok()) << change.status();
  }
  state.reset();
  state = OpenState();
  auto monitor = cadence::Monitor::Create(policy, {source->get(), state.get(), &clock, nullptr});
  ASSERT_TRUE(monitor.ok()) << monitor.status();
  ASSERT_TRUE((*monitor)->last_mode_change().has_value());
  EXPECT_EQ((*monitor)->last_mode_change()->changed_by(), "carol");
  EXPECT_EQ((*monitor)->last_mode_change()->reason(), "quiet week");
  EXPECT_EQ((*monitor)->mode(), clm::v1::LOGGING_ONLY);
  // The first run's decision was persisted, so the same decision after the restart is not recorded twice.
  std::vector<MonitorDecision> history = (*monitor)->History(10);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].reason(), "no trigger fired");
  auto next = (*monitor)->RunOnce();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->id(), history[0].id());
  EXPECT_EQ((*monitor)->History(10).size(), 1u);
}

TEST_F(SqliteCadenceStoreTest, SnapshotCountsScopeAndNewTradesSinceTraining) {
  auto state = OpenState();  // creates the schema
  ASSERT_NE(state, nullptr);
  auto raw = Raw();
  // seq 1..6 in insertion order.
  InsertTrade(*raw, "t1", "BTCUSDT", "m1", TradeOutcome::WIN, kBaseNs);
  InsertTrade(*raw, "t2", "BTCUSDT", "m2", TradeOutcome::LOSS, kBaseNs + 3600 * kSecondNs);
  InsertTrade(*raw, "t3", "ETHUSDT", "m1", TradeOutcome::NEUTRAL, kBaseNs + 2 * 86400 * kSecondNs + 500);
  InsertTrade(*raw, "t4", "BTCUSDT", "m1", TradeOutcome::WIN, kBaseNs + 7200 * kSecondNs);
  InsertTrade(*raw, "t5", "SOLUSDT", "m2", TradeOutcome::WIN, kBaseNs + 60 * kSecondNs);
  InsertTrade(*raw, "t6", "ETHUSDT", "m2", TradeOutcome::LOSS, kBaseNs + 120 * kSecondNs);

  auto opened = SqliteSnapshotSource::Open(path());
  ASSERT_TRUE(opened.ok()) << opened.status();
  SqliteSnapshotSource& source = **opened;

  cadence::SourceSnapshot all = Load(source, {});
  EXPECT_EQ(all.data.total, 6u);
  EXPECT_EQ(all.data.wins, 3u);
  EXPECT_EQ(all.data.losses, 2u);
  EXPECT_EQ(all.data.neutrals, 1u);
  EXPECT_EQ(all.data.first_closed_at_us, kBaseNs / 1000);
  EXPECT_EQ(all.data.last_closed_at_us, (kBaseNs + 2 * 86400 * kSecondNs + 500) / 1000);  // ns -> us
  EXPECT_EQ(all.data.new_trades_since_training, 6u);  // never trained: every trade is new
  EXPECT_EQ(all.training.total_trainings, 0u);
  EXPECT_EQ(all.training.last_training_at_us, 0);
  auto symbols = all.data.symbols;
  std::sort(symbols.begin(), symbols.end());
  EXPECT_EQ(symbols, (std::vector<std::pair<std::string, uint64_t>>{{"BTCUSDT", 3}, {"ETHUSDT", 2}, {"SOLUSDT", 1}}));
  auto models = all.data.model_ids;
  std::sort(models.begin(), models.end());
  EXPECT_EQ(models, (std::vector<std::string>{"m1", "m2"}));

  cadence::SourceSnapshot btc = Load(source, {"BTCUSDT", ""});
  EXPECT_EQ(btc.data.total, 3u);
  EXPECT_EQ(btc.data.wins, 2u);
  EXPECT_EQ(btc.data.losses, 1u);
  EXPECT_EQ(btc.data.first_closed_at_us, kBaseNs / 1000);
  EXPECT_EQ(btc.data.last_closed_at_us, (kBaseNs + 7200 * kSecondNs) / 1000);
  ASSERT_EQ(btc.data.symbols.size(), 1u);
  EXPECT_EQ(btc.data.model_ids.size(), 2u);

  cadence::SourceSnapshot m2 = Load(source, {"", "m2"});
  EXPECT_EQ(m2.data.total, 3u);
  EXPECT_EQ(m2.data.wins, 1u);
  EXPECT_EQ(m2.data.losses, 2u);
  ASSERT_EQ(m2.data.model_ids, std::vector<std::string>{"m2"});

  cadence::SourceSnapshot both = Load(source, {"ETHUSDT", "m1"});
  EXPECT_EQ(both.data.total, 1u);
  EXPECT_EQ(both.data.neutrals, 1u);

  cadence::SourceSnapshot none = Load(source, {"DOGEUSDT", ""});
  EXPECT_EQ(none.data.total, 0u);
  EXPECT_TRUE(none.data.symbols.empty());

  // A training that saw seq 1..4: only t5 and t6 are new, within any scope too; trainings are global.
  const int64_t finished_ns = kBaseNs + 3 * 86400 * kSecondNs + 1234;
  InsertTraining(*raw, "cal_1", kBaseNs + 86400 * kSecondNs, 2);
  InsertTraining(*raw, "cal_2", finished_ns, 4);
  all = Load(source, {});
  EXPECT_EQ(all.data.new_trades_since_training, 2u);
  EXPECT_EQ(all.training.total_trainings, 2u);
  EXPECT_EQ(all.training.last_training_at_us, finished_ns / 1000);
  btc = Load(source, {"BTCUSDT", ""});
  EXPECT_EQ(btc.data.new_trades_since_training, 0u);
  EXPECT_EQ(btc.training.total_trainings, 2u);
  EXPECT_EQ(Load(source, {"ETHUSDT", ""}).data.new_trades_since_training, 1u);

  // Trades committed after the source opened are seen by the next Load.
  InsertTrade(*raw, "t7", "BTCUSDT", "m1", TradeOutcome::LOSS, kBaseNs + 10 * kSecondNs);
  btc = Load(source, {"BTCUSDT", ""});
  EXPECT_EQ(btc.data.total, 4u);
  EXPECT_EQ(btc.data.new_trades_since_training, 1u);
}

TEST_F(SqliteCadenceStoreTest, SnapshotSourceNeedsTheSchema) {
  auto db = Raw();  // an empty database file, never migrated
  db.reset();
  EXPECT_FALSE(SqliteSnapshotSource::Open(path()).ok());
}

}  // namespace
}  // namespace clm::store
