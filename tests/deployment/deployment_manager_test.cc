// The deployment manager over the real SQLite store, with the job system and the cadence levels faked.
#include "lib/deployment/deployment_manager.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "lib/store/sqlite.h"
#include "lib/store/sqlite_deployment_store.h"
#include "tests/testing/test_util.h"

namespace clm::deployment {
namespace {

using clm::v1::ActiveCalibration;
using clm::v1::AuditEntry;

// A job whose map sends every confidence to `value` (a flat isotonic map).
clm::v1::Job FlatJob(const std::string& id, double value, bool ready = true,
                     clm::v1::JobState state = clm::v1::SUCCEEDED) {
  clm::v1::Job job;
  job.set_id(id);
  job.set_state(state);
  auto* map = job.mutable_result()->mutable_global_map();
  map->set_method(clm::v1::ISOTONIC);
  map->add_x_thresholds(0.0);
  map->add_y_thresholds(value);
  map->add_x_thresholds(1.0);
  map->add_y_thresholds(value);
  job.mutable_result()->mutable_safety()->set_deployment_ready(ready);
  if (!ready) job.mutable_result()->mutable_safety()->add_errors("out-of-sample MSE did not improve");
  return job;
}

std::vector<DeploymentManager::LiveTrade> Losses(int n, double confidence, double pnl = -1.0) {
  std::vector<DeploymentManager::LiveTrade> trades(n);
  for (auto& t : trades) {
    t.confidence = confidence;
    t.outcome = clm::v1::TradeOutcome::LOSS;
    t.pnl = pnl;
    t.symbol = "BTCUSDT";
  }
  return trades;
}

class FakeJobs final : public JobSource {
 public:
  void Add(clm::v1::Job job) { jobs_[job.id()] = std::move(job); }
  absl::StatusOr<clm::v1::Job> GetJob(const std::string& id) override {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return absl::NotFoundError("id: no job " + id);
    return it->second;
  }

 private:
  std::map<std::string, clm::v1::Job> jobs_;
};

class FakeLevels final : public LevelSource {
 public:
  void Set(bool calibration, bool shadow, bool production = false) {
    calibration_ = calibration;
    shadow_ = shadow;
    production_ = production;
  }
  absl::StatusOr<clm::v1::CadenceReport> CurrentReport() override {
    clm::v1::CadenceReport report;
    auto* c = report.add_levels();
    c->set_level(clm::v1::CALIBRATION);
    c->set_authorized(calibration_);
    c->set_reason(calibration_ ? "ok" : "too few trades: 10 of 50");
    auto* s = report.add_levels();
    s->set_level(clm::v1::SHADOW);
    s->set_authorized(shadow_);
    s->set_reason(shadow_ ? "ok" : "too few days: 1.0 of 3.0");
    auto* p = report.add_levels();
    p->set_level(clm::v1::PRODUCTION);
    p->set_authorized(production_);
    p->set_manual_approval_required(true);
    p->set_reason(production_ ? "ok" : "too few trades: 120 of 500");
    return report;
  }

 private:
  bool calibration_ = true;
  bool shadow_ = true;
  bool production_ = false;
};

class FakeClock final : public Clock {
 public:
  void Set(absl::Time now) {
    absl::MutexLock lock(&mu_);
    now_ = now;
  }
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(1000);
};

// Fails Commit on demand: a crash or disk error between the steps of a change.
class FailingStore final : public DeploymentStore {
 public:
  explicit FailingStore(DeploymentStore* inner) : inner_(inner) {}
  bool fail_commit = false;
  absl::StatusOr<StoredState> Load() override { return inner_->Load(); }
  absl::Status Commit(const std::vector<clm::v1::DeploymentVersion>& changed, uint64_t production, uint64_t shadow,
                      uint64_t sequence, int64_t changed_at_ns, const AuditEntry& audit) override {
    if (fail_commit) return absl::UnavailableError("disk I/O error");
    return inner_->Commit(changed, production, shadow, sequence, changed_at_ns, audit);
  }
  absl::Status AppendAudit(const AuditEntry& audit) override { return inner_->AppendAudit(audit); }
  absl::StatusOr<clm::v1::GetAuditResponse> ListAudit(uint32_t limit, uint64_t before_id) override {
    return inner_->ListAudit(limit, before_id);
  }

 private:
  DeploymentStore* inner_;
};

class DeploymentManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    jobs_.Add(FlatJob("cal_a", 0.40));
    jobs_.Add(FlatJob("cal_b", 0.55));
    jobs_.Add(FlatJob("cal_c", 0.70));
    OpenStore();
  }

  DeploymentManager::Options Options() const {
    DeploymentManager::Options options;
    options.active_json_path = json_path_;
    options.auto_rollback = auto_rollback_;
    options.auto_rollback_margin = 0.01;
    options.auto_rollback_min_trades = 200;
    options.run_async = [](std::function<void()> task) { task(); };
    options.clock = clock_;
    return options;
  }

  void Reopen() {
    manager_.reset();
    auto manager = DeploymentManager::Create(failing_.get(), &jobs_, &levels_, Options());
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = std::move(*manager);
  }

  // Straight into production skips shadow (an audited override) unless `skip_shadow` is false: most tests
  // here are about what happens once a version is in production; ShadowEvidence* test the rule itself.
  absl::StatusOr<clm::v1::DeploymentVersion> Approve(const std::string& job, clm::v1::DeploymentStage stage,
                                                     bool skip_shadow = true) {
    clm::v1::ApproveRequest request;
    request.set_job_id(job);
    request.set_stage(stage);
    request.set_approver("alice");
    request.set_reason("reviewed the report");
    request.set_skip_shadow(skip_shadow && stage == clm::v1::STAGE_PRODUCTION);
    return manager_->Approve(request);
  }

  absl::StatusOr<clm::v1::DeploymentVersion> Promote(uint64_t version) {
    clm::v1::PromoteRequest request;
    request.set_version(version);
    request.set_approver("alice");
    request.set_reason("shadow looked good");
    return manager_->Promote(request);
  }

  absl::StatusOr<ActiveCalibration> Rollback(std::optional<uint64_t> to = std::nullopt, bool identity = false) {
    clm::v1::RollbackRequest request;
    request.set_approver("bob");
    request.set_reason("live win rate dropped");
    if (to) request.set_to_version(*to);
    if (identity) request.set_to_identity(true);
    return manager_->Rollback(request);
  }

  double Calibrated(double confidence, bool shadow = false) {
    clm::v1::CalibrateRequest request;
    request.add_confidences(confidence);
    request.set_shadow(shadow);
    auto response = manager_->Calibrate(request);
    EXPECT_TRUE(response.ok());
    return response->calibrated(0);
  }

  ActiveCalibration FromFile() {
    std::ifstream in(json_path_);
    std::stringstream text;
    text << in.rdbuf();
    ActiveCalibration active;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text.str(), &active).ok()) << text.str();
    return active;
  }

  // No connection may be open across fork(): the child opens its own, as a restarted process would.
  void CloseStore() {
    manager_.reset();
    failing_.reset();
    sqlite_.reset();
  }
  void OpenStore() {
    auto store = store::SqliteDeploymentStore::Open(db_path_);
    ASSERT_TRUE(store.ok()) << store.status();
    sqlite_ = std::move(*store);
    failing_ = std::make_unique<FailingStore>(sqlite_.get());
    Reopen();
  }

  clm::testing::TempDir dir_;
  std::string db_path_ = dir_.path() + "/clm.db";
  std::string json_path_ = dir_.path() + "/active_calibration.json";
  bool auto_rollback_ = true;
  Clock* clock_ = nullptr;
  FakeJobs jobs_;
  FakeLevels levels_;
  std::unique_ptr<store::SqliteDeploymentStore> sqlite_;
  std::unique_ptr<FailingStore> failing_;
  std::unique_ptr<DeploymentManager> manager_;
};

TEST_F(DeploymentManagerTest, EachApprovalRuleRefusesThenIsSatisfied) {
  jobs_.Add(FlatJob("cal_running", 0.5, true, clm::v1::RUNNING));
  jobs_.Add(FlatJob("cal_unsafe", 0.5, false));

  auto refused = Approve("cal_running", clm::v1::STAGE_SHADOW);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(), "rule job_succeeded: job cal_running is RUNNING, not SUCCEEDED");

  refused = Approve("cal_unsafe", clm::v1::STAGE_SHADOW);
  EXPECT_EQ(refused.status().message(),
            "rule deployment_ready: job cal_unsafe failed safety validation: out-of-sample MSE did not improve");

  levels_.Set(true, false);
  refused = Approve("cal_a", clm::v1::STAGE_SHADOW);
  EXPECT_EQ(refused.status().message(), "rule level_authorized: SHADOW level is not authorized: too few days: 1.0 of 3.0");
  levels_.Set(true, false);
  refused = Approve("cal_a", clm::v1::STAGE_PRODUCTION);
  EXPECT_EQ(refused.status().message(),
            "rule level_authorized: SHADOW level is not authorized: too few days: 1.0 of 3.0")
      << "production is never easier to reach than shadow, even when skipping it";

  clm::v1::ApproveRequest anonymous;
  anonymous.set_job_id("cal_a");
  anonymous.set_stage(clm::v1::STAGE_SHADOW);
  anonymous.set_reason("why");
  EXPECT_EQ(manager_->Approve(anonymous).status().message(), "approver: is required");
  EXPECT_EQ(Approve("cal_missing", clm::v1::STAGE_SHADOW).status().code(), absl::StatusCode::kNotFound);

  levels_.Set(true, true);
  auto version = Approve("cal_a", clm::v1::STAGE_SHADOW);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->version(), 1u);
  EXPECT_EQ(version->stage(), clm::v1::STAGE_SHADOW);

  // Every refusal was audited with its rule; the approval too.
  auto audit = manager_->Audit(100, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->entries_size(), 5);
  EXPECT_TRUE(audit->entries(0).ok());
  EXPECT_EQ(audit->entries(0).to_version(), 1u);
  std::vector<std::string> rules;
  for (int i = 1; i < audit->entries_size(); ++i) {
    EXPECT_FALSE(audit->entries(i).ok());
    rules.push_back(audit->entries(i).rule());
  }
  EXPECT_EQ(rules, (std::vector<std::string>{"level_authorized", "level_authorized", "deployment_ready",
                                             "job_succeeded"}));
  EXPECT_EQ(manager_->counters().refused_by_rule.at("level_authorized"), 2u);
}

TEST_F(DeploymentManagerTest, ShadowEvidenceIsNeededForProduction) {
  // Straight into production, no shadow: refused, and the refusal says what to do.
  auto refused = Approve("cal_a", clm::v1::STAGE_PRODUCTION, /*skip_shadow=*/false);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(),
            "rule shadow_evidence: job cal_a has not been in shadow: approve it into shadow and promote it after 100 "
            "live trades, or pass skip_shadow with a reason");

  // Into shadow; promoting at once is refused for want of evidence.
  ASSERT_TRUE(Approve("cal_a", clm::v1::STAGE_SHADOW).ok());  // v1: everything -> 0.40
  EXPECT_EQ(Promote(1).status().message(),
            "rule shadow_evidence: v1 has 0 labelled live trades scored in shadow, 100 needed");
  manager_->OnTradesCommitted(Losses(99, 0.5));
  EXPECT_EQ(Promote(1).status().message(),
            "rule shadow_evidence: v1 has 99 labelled live trades scored in shadow, 100 needed");
  // The level is checked at that moment too.
  manager_->OnTradesCommitted(Losses(1, 0.5));
  levels_.Set(true, false);
  EXPECT_EQ(Promote(1).status().message(),
            "rule level_authorized: SHADOW level is not authorized: too few days: 1.0 of 3.0");
  levels_.Set(true, true);
  auto promoted = Promote(1);
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_EQ(manager_->Active().production_version(), 1u);

  // A shadow version that does worse live than production is not promoted, however many trades it has.
  ASSERT_TRUE(Approve("cal_c", clm::v1::STAGE_SHADOW).ok());  // v2: everything -> 0.70
  manager_->OnTradesCommitted(Losses(150, 0.5));
  EXPECT_EQ(Promote(2).status().message(),
            "rule shadow_evidence: v2 did worse in shadow: live MSE 0.4900 against 0.1600 for what the engine used, "
            "over 150 trades (margin 0.01)");

  // Approving a job into production after its own shadow run needs no override, and retires its shadow.
  ASSERT_TRUE(Approve("cal_b", clm::v1::STAGE_SHADOW).ok());  // v3: 0.55, worse than 0.40 on losses
  manager_->OnTradesCommitted(Losses(100, 0.5));
  EXPECT_EQ(Approve("cal_b", clm::v1::STAGE_PRODUCTION, false).status().message(),
            "rule shadow_evidence: v3 did worse in shadow: live MSE 0.3025 against 0.1600 for what the engine used, "
            "over 100 trades (margin 0.01)");
  jobs_.Add(FlatJob("cal_d", 0.35));
  ASSERT_TRUE(Approve("cal_d", clm::v1::STAGE_SHADOW).ok());  // v4: 0.35, better than 0.40 on losses
  manager_->OnTradesCommitted(Losses(100, 0.5));
  auto approved = Approve("cal_d", clm::v1::STAGE_PRODUCTION, false);
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_EQ(approved->version(), 5u);
  EXPECT_EQ(manager_->Active().production_version(), 5u);
  EXPECT_EQ(manager_->Active().shadow_version(), 0u) << "the job's shadow version retired";
  EXPECT_EQ(manager_->counters().refused_by_rule.at("shadow_evidence"), 5u);
}

TEST_F(DeploymentManagerTest, SkippingShadowIsAnAuditedOverrideForPeopleOnly) {
  clm::v1::ApproveRequest request;
  request.set_job_id("cal_a");
  request.set_stage(clm::v1::STAGE_PRODUCTION);
  request.set_approver("cadence-monitor");
  request.set_reason("automatic");
  request.set_skip_shadow(true);
  EXPECT_EQ(manager_->Approve(request).status().message(),
            "rule manual_approval: skipping shadow is an override only a person may make, not cadence-monitor");
  request.set_stage(clm::v1::STAGE_SHADOW);
  EXPECT_EQ(manager_->Approve(request).status().message(), "skip_shadow: only with stage STAGE_PRODUCTION");

  auto version = Approve("cal_a", clm::v1::STAGE_PRODUCTION);
  ASSERT_TRUE(version.ok()) << version.status();
  auto audit = manager_->Audit(1, 0);
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->entries(0).ok());
  EXPECT_TRUE(audit->entries(0).skip_shadow()) << "the override is on the record";
  EXPECT_EQ(audit->entries(0).actor(), "alice");
}

TEST_F(DeploymentManagerTest, CalibrateGivesBoundsFromTheSliceTheSymbolPicks) {
  clm::v1::Job job = FlatJob("cal_sliced", 0.40);
  // A guard on the global map, and an own map for ETHUSDT.
  clm::v1::CalibrationMap* global = job.mutable_result()->mutable_global_map();
  global->add_guard_x(0.5);
  global->add_guard_lower(0.3);
  global->add_guard_upper(0.45);
  global->add_guard_trades(500);
  clm::v1::SliceMap* eth = job.mutable_result()->add_symbol_maps();
  eth->set_key("ETHUSDT");
  *eth->mutable_map() = FlatJob("x", 0.6).result().global_map();
  jobs_.Add(job);
  ASSERT_TRUE(Approve("cal_sliced", clm::v1::STAGE_PRODUCTION).ok());
  clm::v1::CalibrateRequest request;
  request.add_confidences(0.9);
  auto response = manager_->Calibrate(request);
  ASSERT_TRUE(response.ok());
  EXPECT_DOUBLE_EQ(response->calibrated(0), 0.40);
  EXPECT_DOUBLE_EQ(response->lower(0), 0.3);
  EXPECT_DOUBLE_EQ(response->upper(0), 0.45);
  request.set_symbol("ETHUSDT");
  response = manager_->Calibrate(request);
  ASSERT_TRUE(response.ok());
  EXPECT_DOUBLE_EQ(response->calibrated(0), 0.6);
  EXPECT_DOUBLE_EQ(response->lower(0), 0.6) << "a map without a guard: bounds equal the value";
}

TEST_F(DeploymentManagerTest, ShadowDoesNotAffectProductionUntilPromoted) {
  ASSERT_TRUE(Approve("cal_a", clm::v1::STAGE_SHADOW).ok());
  ActiveCalibration active = manager_->Active();
  EXPECT_EQ(active.production_version(), 0u);
  EXPECT_EQ(active.shadow_version(), 1u);
  EXPECT_DOUBLE_EQ(Calibrated(0.9), 0.9);              // production: identity
  EXPECT_DOUBLE_EQ(Calibrated(0.9, true), 0.40);       // shadow

  clm::v1::PromoteRequest wrong;
  wrong.set_version(7);
  wrong.set_approver("alice");
  wrong.set_reason("go");
  EXPECT_EQ(manager_->Promote(wrong).status().message(), "rule is_shadow: v7 is not in shadow: the shadow version is v1");

  clm::v1::PromoteRequest promote = wrong;
  promote.set_version(1);
  manager_->OnTradesCommitted(Losses(100, 0.5));  // shadow evidence: 0.40 beats the raw 0.5 on losses
  auto promoted = manager_->Promote(promote);
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_EQ(promoted->stage(), clm::v1::STAGE_PRODUCTION);
  ASSERT_EQ(promoted->history_size(), 2);
  EXPECT_EQ(promoted->history(0).stage(), clm::v1::STAGE_SHADOW);
  EXPECT_EQ(promoted->history(1).stage(), clm::v1::STAGE_PRODUCTION);
  active = manager_->Active();
  EXPECT_EQ(active.production_version(), 1u);
  EXPECT_EQ(active.shadow_version(), 0u);
  EXPECT_DOUBLE_EQ(Calibrated(0.9), 0.40);
  EXPECT_EQ(FromFile().production_version(), 1u);
}

TEST_F(DeploymentManagerTest, RollbackToPreviousNamedAndIdentity) {
  ASSERT_TRUE(Approve("cal_a", clm::v1::STAGE_PRODUCTION).ok());  // v1
  ASSERT_TRUE(Approve("cal_b", clm::v1::STAGE_PRODUCTION).ok());  // v2
  ASSERT_TRUE(Approve("cal_c", clm::v1::STAGE_PRODUCTION).ok());  // v3
  EXPECT_DOUBLE_EQ(Calibrated(0.5), 0.70);

  auto active = Rollback();
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_EQ(active->production_version(), 2u);
  EXPECT_DOUBLE_EQ(Calibrated(0.5), 0.55);
  active = Rollback();
  EXPECT_EQ(active->production_version(), 1u);

  active = Rollback(3);
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_EQ(active->production_version(), 3u);
  EXPECT_EQ(Rollback(3).status().message(), "rule rollback_target: v3 is already in production");
  EXPECT_EQ(Rollback(9).status().message(), "rule rollback_target: v9 does not exist");

  active = Rollback(std::nullopt, true);
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_EQ(active->production_version(), 0u);
  EXPECT_FALSE(active->has_production_map());
  EXPECT_DOUBLE_EQ(Calibrated(0.5), 0.5);
  EXPECT_EQ(FromFile().production_version(), 0u);

  // At any past instant the stage histories tell which version was in production.
  auto list = manager_->List();
  ASSERT_EQ(list.versions_size(), 3);
  EXPECT_EQ(list.versions(0).version(), 3u);
  EXPECT_EQ(list.versions(0).stage(), clm::v1::STAGE_RETIRED);
  EXPECT_EQ(list.versions(0).history_size(), 4);  // production, retired, production (rollback), retired
}

TEST_F(DeploymentManagerTest, StateSurvivesRestartAndAFailedCommitChangesNothing) {
  ASSERT_TRUE(Approve("cal_a", clm::v1::STAGE_PRODUCTION).ok());
  ASSERT_TRUE(Approve("cal_b", clm::v1::STAGE_SHADOW).ok());
  const ActiveCalibration before = manager_->Active();

  failing_->fail_commit = true;  // the transaction fails between its steps
  auto failed = Approve("cal_c", clm::v1::STAGE_PRODUCTION);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(manager_->Active().SerializeAsString(), before.SerializeAsString());
  EXPECT_EQ(FromFile().sequence(), before.sequence());
  failing_->fail_commit = false;

  Reopen();  // as after a crash: the store decides
  const ActiveCalibration after = manager_->Active();
  EXPECT_EQ(after.production_version(), 1u);
  EXPECT_EQ(after.shadow_version(), 2u);
  EXPECT_EQ(after.sequence(), before.sequence());
  EXPECT_EQ(manager_->List().versions_size(), 2) << "the failed approval left no version behind";
  auto audit = manager_->Audit(10, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->entries_size(), 2) << "the audit agrees: two changes, no trace of the failed one";
  EXPECT_EQ(audit->entries(0).to_version(), 2u);
  EXPECT_DOUBLE_EQ(Calibrated(0.9), 0.40);
  EXPECT_FALSE(std::filesystem::exists(json_path_ + ".tmp"));
}

TEST_F(DeploymentManagerTest, SubscribersSeeEveryChangeInOrder) {
  absl::Mutex mu;
  std::vector<ActiveCalibration> seen;
  auto subscription = manager_->Subscribe([&](const ActiveCalibration& active) {
    absl::MutexLock lock(&mu);
    seen.push_back(active);
  });
  EXPECT_EQ(subscription.current.sequence(), 0u);
  ASSERT_TRUE(Approve("cal_a", clm::v1::STAGE_PRODUCTION).ok());
  ASSERT_TRUE(Approve("cal_b", clm::v1::STAGE_SHADOW).ok());
  ASSERT_TRUE(Rollback(std::nullopt, true).ok());
  manager_->Unsubscribe(subscription.id);
  ASSERT_TRUE(Approve("cal_c", clm::v1::STAGE_PRODUCTION).ok());
  absl::MutexLock lock(&mu);
  ASSERT_EQ(seen.size(), 3u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i].sequence(), i + 1);
  EXPECT_EQ(seen[0].production_version(), 1u);
  EXPECT_EQ(seen[1].shadow_version(), 2u);
  EXPECT_EQ(seen[2].production_version(), 0u);
}


TEST_F(DeploymentManagerTest, LiveShadowScoringAndKpisSideBySide) {
  ASSERT_TRUE(Approve("cal_a", clm::v1::STAGE_PRODUCTION).ok());  // v1: everything -> 0.40
  ASSERT_TRUE(Approve("cal_b", clm::v1::STAGE_SHADOW).ok());      // v2: everything -> 0.55
  std::vector<DeploymentManager::LiveTrade> trades = Losses(3, 0.5, -2.0);
  trades.push_back({0.5, clm::v1::TradeOutcome::WIN, 10.0, "ETHUSDT", ""});
  trades.push_back({0.5, clm::v1::TradeOutcome::NEUTRAL, 0.0, "ETHUSDT", ""});
  manager_->OnTradesCommitted(trades);

  const clm::v1::LiveKpis production = manager_->Kpis(1);
  EXPECT_EQ(production.trades(), 4u);
  EXPECT_EQ(production.trades_seen(), 5u);
  EXPECT_DOUBLE_EQ(production.mse_raw(), 0.25);                                   // |0.5 - label| = 0.5
  EXPECT_DOUBLE_EQ(production.mse_production(), (3 * 0.16 + 0.36) / 4);          // 0.40 vs 0, 0, 0, 1
  EXPECT_DOUBLE_EQ(production.mse_shadow(), (3 * 0.3025 + 0.2025) / 4);           // 0.55
  EXPECT_EQ(production.shadow_trades(), 4u);
  EXPECT_DOUBLE_EQ(production.win_rate(), 0.25);
  EXPECT_DOUBLE_EQ(production.cumulative_pnl(), 4.0);
  EXPECT_DOUBLE_EQ(production.max_drawdown(), 6.0);                               // 0 -> -6 before the win
  auto list = manager_->List();
  EXPECT_EQ(list.versions(1).live().trades(), 4u) << "List carries the live KPIs";
}

TEST_F(DeploymentManagerTest, AutomaticRollbackOnALiveRegressionButNotJustUnderTheMargin) {
  jobs_.Add(FlatJob("cal_under", 0.5098));  // live MSE 0.25989604 vs raw 0.25: 0.0099 worse
  jobs_.Add(FlatJob("cal_over", 0.5102));   // 0.26030404 vs 0.25: 0.0103 worse
  ASSERT_TRUE(Approve("cal_a", clm::v1::STAGE_PRODUCTION).ok());      // v1
  ASSERT_TRUE(Approve("cal_under", clm::v1::STAGE_PRODUCTION).ok());  // v2
  manager_->OnTradesCommitted(Losses(500, 0.5));
  EXPECT_EQ(manager_->Active().production_version(), 2u) << "0.0099 worse is within the 0.01 margin";

  ASSERT_TRUE(Approve("cal_over", clm::v1::STAGE_PRODUCTION).ok());  // v3
  manager_->OnTradesCommitted(Losses(199, 0.5));
  EXPECT_EQ(manager_->Active().production_version(), 3u) << "too few trades to judge yet";
  manager_->OnTradesCommitted(Losses(1, 0.5));
  EXPECT_EQ(manager_->Active().production_version(), 2u) << "rolled back to the previous version by itself";
  EXPECT_EQ(manager_->counters().auto_rollbacks, 1u);
  auto audit = manager_->Audit(1, 0);
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(audit->entries(0).action(), AuditEntry::AUTO_ROLLBACK);
  EXPECT_EQ(audit->entries(0).actor(), "clm-auto-rollback");
  EXPECT_EQ(audit->entries(0).from_version(), 3u);
  EXPECT_EQ(audit->entries(0).to_version(), 2u);
  EXPECT_NE(audit->entries(0).reason().find("over 200 trades"), std::string::npos) << audit->entries(0).reason();
}


// A job with a scored ensemble: two models, proposed weights 0.7 / 0.3.
clm::v1::Job EnsembleJob(const std::string& id, double value) {
  clm::v1::Job job = FlatJob(id, value);
  clm::v1::EnsembleCheck* ensemble = job.mutable_result()->mutable_ensemble();
  ensemble->set_has_model_data(true);
  auto* xgb = ensemble->add_models();
  xgb->set_model("xgboost");
  xgb->set_current_weight(0.5);
  xgb->set_proposed_weight(0.7);
  auto* lgbm = ensemble->add_models();
  lgbm->set_model("lightgbm");
  lgbm->set_current_weight(0.5);
  lgbm->set_proposed_weight(0.3);
  return job;
}

TEST_F(DeploymentManagerTest, EnsembleWeightsNeedTheProductionLevelAndAPerson) {
  jobs_.Add(EnsembleJob("cal_ens", 0.45));
  clm::v1::ApproveRequest request;
  request.set_job_id("cal_ens");
  request.set_stage(clm::v1::STAGE_PRODUCTION);
  request.set_approver("cadence-monitor");
  request.set_reason("rebalance recommended");
  request.set_include_ensemble_weights(true);
  EXPECT_EQ(manager_->Approve(request).status().message(),
            "rule manual_approval: ensemble weights go into production only with a person's approval, not "
            "cadence-monitor's");

  request.set_approver("alice");
  request.set_skip_shadow(true);
  request.set_job_id("cal_a");  // no model confidences
  EXPECT_EQ(manager_->Approve(request).status().message(),
            "rule ensemble_available: job cal_a has no ensemble weights: no trade carried model confidences");

  request.set_job_id("cal_ens");
  auto refused = manager_->Approve(request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(),
            "rule level_authorized: PRODUCTION level is not authorized: too few trades: 120 of 500");

  clm::v1::ApproveRequest shadow = request;
  shadow.set_stage(clm::v1::STAGE_SHADOW);
  EXPECT_EQ(manager_->Approve(shadow).status().message(), "include_ensemble_weights: only with stage STAGE_PRODUCTION");

  levels_.Set(true, true, true);
  auto version = manager_->Approve(request);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->version(), 1u);
  EXPECT_EQ(version->ensemble_weights().size(), 2u);
  EXPECT_DOUBLE_EQ(version->ensemble_weights().at("xgboost"), 0.7);
  EXPECT_DOUBLE_EQ(version->ensemble_weights().at("lightgbm"), 0.3);
  const ActiveCalibration active = manager_->Active();
  EXPECT_DOUBLE_EQ(active.ensemble_weights().at("xgboost"), 0.7);
  EXPECT_DOUBLE_EQ(FromFile().ensemble_weights().at("lightgbm"), 0.3);

  // Rolling back to identity takes the weights away with the calibration.
  ASSERT_TRUE(Rollback(std::nullopt, true).ok());
  EXPECT_TRUE(manager_->Active().ensemble_weights().empty());
  const auto counters = manager_->counters();
  EXPECT_EQ(counters.refused_by_rule.at("manual_approval"), 1u);
  EXPECT_EQ(counters.refused_by_rule.at("ensemble_available"), 1u);
  EXPECT_EQ(counters.refused_by_rule.at("level_authorized"), 1u);
}

TEST_F(DeploymentManagerTest, TellsWhichVersionWasInProductionAtAnyPastInstant) {
  FakeClock clock;
  clock_ = &clock;
  Reopen();
  const auto at = [](int64_t seconds) { return absl::FromUnixSeconds(seconds); };
  clock.Set(at(100));
  ASSERT_TRUE(Approve("cal_a", clm::v1::STAGE_PRODUCTION).ok());  // v1
  clock.Set(at(200));
  ASSERT_TRUE(Approve("cal_b", clm::v1::STAGE_PRODUCTION).ok());  // v2
  clock.Set(at(250));
  ASSERT_TRUE(Approve("cal_c", clm::v1::STAGE_SHADOW).ok());      // v3, never production
  clock.Set(at(300));
  ASSERT_TRUE(Rollback(std::nullopt, true).ok());
  clock.Set(at(400));
  ASSERT_TRUE(Rollback(1).ok());

  Reopen();  // the answer comes from the stored histories
  const std::vector<std::pair<int64_t, uint64_t>> expected = {
      {99, 0}, {100, 1}, {199, 1}, {200, 2}, {250, 2}, {299, 2}, {300, 0}, {399, 0}, {400, 1}, {5000, 1}};
  for (const auto& [seconds, version] : expected) {
    EXPECT_EQ(manager_->ProductionVersionAt(at(seconds)), version) << "at " << seconds << "s";
  }
  clm::v1::ListDeploymentsRequest request;
  request.mutable_production_at()->set_seconds(250);
  const clm::v1::ListDeploymentsResponse list = manager_->List(request);
  ASSERT_TRUE(list.has_production_version_at());
  EXPECT_EQ(list.production_version_at(), 2u);
  EXPECT_FALSE(manager_->List(clm::v1::ListDeploymentsRequest()).has_production_version_at());

  // Stage changes, audit entries and the active calibration carry the clock's instants.
  ASSERT_EQ(list.versions_size(), 3);
  const clm::v1::DeploymentVersion& v2 = list.versions(1);
  ASSERT_EQ(v2.history_size(), 2);  // production at 200, retired at 300
  EXPECT_EQ(v2.approved_at().seconds(), 200);
  EXPECT_EQ(v2.history(0).at().seconds(), 200);
  EXPECT_EQ(v2.history(1).at().seconds(), 300);
  EXPECT_EQ(v2.history(1).stage(), clm::v1::STAGE_RETIRED);
  EXPECT_EQ(manager_->Active().changed_at().seconds(), 400);
  auto audit = manager_->Audit(10, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->entries_size(), 5);
  EXPECT_EQ(audit->entries(0).at().seconds(), 400);
  EXPECT_EQ(audit->entries(0).from_version(), 0u);
  EXPECT_EQ(audit->entries(0).to_version(), 1u);
  EXPECT_EQ(audit->entries(1).at().seconds(), 300);
  EXPECT_EQ(audit->entries(1).from_version(), 2u);
  EXPECT_EQ(audit->entries(1).to_version(), 0u);
}

TEST_F(DeploymentManagerTest, RollbackRefusalsAreAuditedAndTheAutomaticActorIsReserved) {
  auto refused = Rollback();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(), "rule rollback_target: no calibration is in production: nothing to roll back");
  ASSERT_TRUE(Approve("cal_a", clm::v1::STAGE_SHADOW).ok());  // v1, shadow only
  EXPECT_EQ(Rollback(1).status().message(), "rule rollback_target: v1 was never in production");

  clm::v1::RollbackRequest request;
  request.set_approver(kAutoRollbackActor);
  request.set_reason("pretending");
  EXPECT_EQ(manager_->Rollback(request).status().message(),
            "approver: \"clm-auto-rollback\" is reserved for the automatic rollback");
  request.set_approver("bob");
  request.clear_reason();
  EXPECT_EQ(manager_->Rollback(request).status().message(), "reason: is required");

  auto audit = manager_->Audit(10, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->entries_size(), 3);  // two refusals and the approval; invalid requests are not attempts
  EXPECT_EQ(audit->entries(0).action(), AuditEntry::ROLLBACK);
  EXPECT_FALSE(audit->entries(0).ok());
  EXPECT_EQ(audit->entries(0).rule(), "rollback_target");
  EXPECT_EQ(audit->entries(0).actor(), "bob");
  EXPECT_EQ(audit->entries(0).reason(), "v1 was never in production (reason given: live win rate dropped)");

  // Paging: one entry per page, newest first, then nothing more.
  auto page = manager_->Audit(1, 0);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries_size(), 1);
  std::vector<uint64_t> ids = {page->entries(0).id()};
  while (page->next_before_id() != 0) {
    page = manager_->Audit(1, page->next_before_id());
    ASSERT_TRUE(page.ok());
    for (const auto& entry : page->entries()) ids.push_back(entry.id());
  }
  EXPECT_EQ(ids, (std::vector<uint64_t>{3, 2, 1}));
  EXPECT_EQ(manager_->Audit(1001, 0).status().message(), "limit: must be at most 1000, got 1001");
}

TEST_F(DeploymentManagerTest, AutomaticRollbackCanBeTurnedOff) {
  auto_rollback_ = false;
  Reopen();
  ASSERT_TRUE(Approve("cal_c", clm::v1::STAGE_PRODUCTION).ok());  // everything -> 0.70: far worse on losses
  manager_->OnTradesCommitted(Losses(1000, 0.5));
  EXPECT_EQ(manager_->Active().production_version(), 1u);
  EXPECT_EQ(manager_->counters().auto_rollbacks, 0u);
  EXPECT_NEAR(manager_->Kpis(1).mse_production(), 0.49, 1e-12);  // a sum of 1000 squares
  EXPECT_DOUBLE_EQ(manager_->Kpis(1).mse_raw(), 0.25);
}

TEST_F(DeploymentManagerTest, RollbackReachesSubscribersAndTheFileBeforeItReturns) {
  ASSERT_TRUE(Approve("cal_a", clm::v1::STAGE_PRODUCTION).ok());
  ASSERT_TRUE(Approve("cal_b", clm::v1::STAGE_PRODUCTION).ok());
  std::atomic<uint64_t> delivered{0};
  auto subscription =
      manager_->Subscribe([&](const ActiveCalibration& active) { delivered = active.production_version(); });
  auto active = Rollback();
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(delivered.load(), 1u);
  EXPECT_EQ(FromFile().production_version(), 1u);
  const auto counters = manager_->counters();
  EXPECT_EQ(counters.rollbacks, 1u);
  EXPECT_GT(counters.last_rollback_delivery_seconds, 0.0);
  EXPECT_LT(counters.last_rollback_delivery_seconds, 1.0);
  EXPECT_DOUBLE_EQ(counters.rollback_delivery_seconds_sum, counters.last_rollback_delivery_seconds);
  manager_->Unsubscribe(subscription.id);
}

TEST_F(DeploymentManagerTest, TheJsonFileAlwaysHoldsACompleteDocument) {
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> incomplete{0};
  std::thread reader([&] {
    uint64_t last_sequence = 0;
    while (!done.load()) {
      std::ifstream in(json_path_);
      std::stringstream text;
      text << in.rdbuf();
      ActiveCalibration active;
      if (!google::protobuf::util::JsonStringToMessage(text.str(), &active).ok() ||
          active.sequence() < last_sequence) {
        ++incomplete;
      }
      last_sequence = active.sequence();
      ++reads;
    }
  });
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Approve(i % 2 == 0 ? "cal_a" : "cal_b", clm::v1::STAGE_PRODUCTION).ok());
  }
  done = true;
  reader.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(incomplete.load(), 0);
  const ActiveCalibration file = FromFile();
  EXPECT_EQ(file.sequence(), 20u);
  EXPECT_EQ(file.production_version(), 20u);
  EXPECT_EQ(file.SerializeAsString(), manager_->Active().SerializeAsString());
}

// The store a child process uses: it leaves a mark when the commit starts, and can die right after it.
class MarkingStore final : public DeploymentStore {
 public:
  MarkingStore(DeploymentStore* inner, std::string mark, bool exit_after_commit)
      : inner_(inner), mark_(std::move(mark)), exit_after_commit_(exit_after_commit) {}
  absl::StatusOr<StoredState> Load() override { return inner_->Load(); }
  absl::Status Commit(const std::vector<clm::v1::DeploymentVersion>& changed, uint64_t production, uint64_t shadow,
                      uint64_t sequence, int64_t changed_at_ns, const AuditEntry& audit) override {
    std::ofstream(mark_) << "committing";
    absl::Status status = inner_->Commit(changed, production, shadow, sequence, changed_at_ns, audit);
    if (exit_after_commit_) ::_exit(status.ok() ? 0 : 5);  // before the manager applies or delivers it
    return status;
  }
  absl::Status AppendAudit(const AuditEntry& audit) override { return inner_->AppendAudit(audit); }
  absl::StatusOr<clm::v1::GetAuditResponse> ListAudit(uint32_t limit, uint64_t before_id) override {
    return inner_->ListAudit(limit, before_id);
  }

 private:
  DeploymentStore* inner_;
  std::string mark_;
  bool exit_after_commit_;
};

class DeploymentCrashTest : public DeploymentManagerTest {
 protected:
  // Forks a process that opens the store afresh and approves cal_b into production.
  pid_t ApproveInChild(bool exit_after_commit) {
    CloseStore();
    const pid_t pid = ::fork();
    if (pid != 0) return pid;
    auto store = store::SqliteDeploymentStore::Open(db_path_);
    if (!store.ok()) ::_exit(2);
    MarkingStore marking(store->get(), mark_path_, exit_after_commit);
    auto manager = DeploymentManager::Create(&marking, &jobs_, &levels_, Options());
    if (!manager.ok()) ::_exit(3);
    clm::v1::ApproveRequest request;
    request.set_job_id("cal_b");
    request.set_stage(clm::v1::STAGE_PRODUCTION);
    request.set_approver("alice");
    request.set_reason("crash test");
    request.set_skip_shadow(true);
    ::_exit((*manager)->Approve(request).ok() ? 4 : 6);
  }

  bool WaitForMark() {
    for (int i = 0; i < 1000; ++i) {
      if (std::filesystem::exists(mark_path_)) return true;
      ::usleep(10 * 1000);
    }
    return false;
  }

  std::string mark_path_ = dir_.path() + "/mark";
};

TEST_F(DeploymentCrashTest, KilledInsideTheApprovalTransactionLeavesTheOldVersion) {
  ASSERT_TRUE(Approve("cal_a", clm::v1::STAGE_PRODUCTION).ok());  // v1
  {
    // Inserting the audit row, the transaction's last step after the version and the state, now takes
    // seconds: the child is killed there, with the new version and state written but not committed.
    auto db = store::Database::Open(db_path_, store::Database::Options{});
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE((*db)->Exec(R"sql(
        CREATE TABLE big(x INTEGER);
        WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 2000) INSERT INTO big SELECT x FROM n;
        CREATE TRIGGER slow_audit BEFORE INSERT ON deployment_audit
        BEGIN SELECT sum(a.x * b.x + c.x) FROM big a, big b, big c; END;
      )sql").ok());
  }
  const pid_t child = ApproveInChild(false);
  ASSERT_GT(child, 0);
  struct KillOnExit {  // a failed assertion must not leave the child spinning in its trigger
    pid_t pid;
    ~KillOnExit() { ::kill(pid, SIGKILL); }
  } guard{child};
  ASSERT_TRUE(WaitForMark());
  ::usleep(300 * 1000);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, WNOHANG), 0) << "the child should still be inside the transaction";
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  {
    auto db = store::Database::Open(db_path_, store::Database::Options{});
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE((*db)->Exec("DROP TRIGGER slow_audit").ok());
  }

  OpenStore();
  const ActiveCalibration active = manager_->Active();
  EXPECT_EQ(active.production_version(), 1u);
  EXPECT_EQ(active.sequence(), 1u);
  EXPECT_DOUBLE_EQ(Calibrated(0.9), 0.40);
  const auto list = manager_->List();
  ASSERT_EQ(list.versions_size(), 1) << "no trace of the killed approval's version";
  EXPECT_EQ(list.versions(0).stage(), clm::v1::STAGE_PRODUCTION);
  EXPECT_EQ(list.versions(0).history_size(), 1) << "v1 was not retired";
  auto audit = manager_->Audit(10, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->entries_size(), 1);
  EXPECT_EQ(audit->entries(0).to_version(), 1u);
  EXPECT_EQ(FromFile().production_version(), 1u);
  EXPECT_EQ(FromFile().sequence(), 1u);

  // The number the killed approval would have used is still free.
  auto version = Approve("cal_b", clm::v1::STAGE_PRODUCTION);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->version(), 2u);
}

TEST_F(DeploymentCrashTest, KilledAfterTheCommitLeavesTheNewVersionAndStartRepairsTheFile) {
  ASSERT_TRUE(Approve("cal_a", clm::v1::STAGE_PRODUCTION).ok());  // v1
  const pid_t child = ApproveInChild(true);
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "the child's commit failed";
  EXPECT_EQ(FromFile().production_version(), 1u) << "the child died before writing the file";

  OpenStore();
  const ActiveCalibration active = manager_->Active();
  EXPECT_EQ(active.production_version(), 2u);
  EXPECT_EQ(active.sequence(), 2u);
  EXPECT_DOUBLE_EQ(Calibrated(0.9), 0.55);
  const auto list = manager_->List();
  ASSERT_EQ(list.versions_size(), 2);
  EXPECT_EQ(list.versions(1).stage(), clm::v1::STAGE_RETIRED) << "v1 was retired in the same transaction";
  auto audit = manager_->Audit(10, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->entries_size(), 2);
  EXPECT_EQ(audit->entries(0).from_version(), 1u);
  EXPECT_EQ(audit->entries(0).to_version(), 2u);
  EXPECT_EQ(audit->entries(0).reason(), "crash test");
  EXPECT_EQ(FromFile().production_version(), 2u) << "the start rewrote the file from the store";
  EXPECT_EQ(FromFile().sequence(), 2u);
}

TEST_F(DeploymentManagerTest, LiveKpisAreRebuiltFromTheTradesStoredSinceTheDeployment) {
  // The store holds 10 trades when v1 is deployed, so its live figures count trades 11 and after.
  int64_t max_seq = 10;
  manager_.reset();
  DeploymentManager::Options options;
  options.max_seq = [&max_seq]() -> absl::StatusOr<int64_t> { return max_seq; };
  auto manager = DeploymentManager::Create(failing_.get(), &jobs_, &levels_, options);
  ASSERT_TRUE(manager.ok());
  manager_ = std::move(*manager);
  ASSERT_TRUE(Approve("cal_a", clm::v1::STAGE_PRODUCTION).ok());
  std::vector<std::pair<int64_t, DeploymentManager::LiveTrade>> stored;
  for (int64_t seq = 1; seq <= 25; ++seq) {
    stored.push_back({seq, {0.5, seq % 2 ? clm::v1::TradeOutcome::WIN : clm::v1::TradeOutcome::LOSS, 1.0, "BTCUSDT", ""}});
  }
  std::vector<DeploymentManager::LiveTrade> live;
  for (const auto& [seq, t] : stored) {
    if (seq > 10) live.push_back(t);
  }
  manager_->OnTradesCommitted(live);
  const clm::v1::LiveKpis before = manager_->Kpis(1);
  EXPECT_EQ(before.trades_seen(), 15u);

  // A restart: the store decides; the KPIs come back from the same trades, not from zero.
  manager = DeploymentManager::Create(failing_.get(), &jobs_, &levels_, options);
  ASSERT_TRUE(manager.ok());
  manager_ = std::move(*manager);
  ASSERT_EQ(manager_->ReplayFrom(), std::optional<int64_t>(10));
  EXPECT_EQ(manager_->Kpis(1).trades_seen(), 0u);
  manager_->ReplayLive(stored);
  EXPECT_EQ(manager_->Kpis(1).SerializeAsString(), before.SerializeAsString());
}

}  // namespace
}  // namespace clm::deployment
