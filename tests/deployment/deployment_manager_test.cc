// The deployment manager over the real SQLite store, with the job system and the cadence levels faked.
#include "lib/deployment/deployment_manager.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
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
  void Set(bool calibration, bool shadow) {
    calibration_ = calibration;
    shadow_ = shadow;
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
    return report;
  }

 private:
  bool calibration_ = true;
  bool shadow_ = true;
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
    auto store = store::SqliteDeploymentStore::Open(dir_.path() + "/clm.db");
    ASSERT_TRUE(store.ok()) << store.status();
    sqlite_ = std::move(*store);
    failing_ = std::make_unique<FailingStore>(sqlite_.get());
    jobs_.Add(FlatJob("cal_a", 0.40));
    jobs_.Add(FlatJob("cal_b", 0.55));
    jobs_.Add(FlatJob("cal_c", 0.70));
    Reopen();
  }

  void Reopen(double margin = 0.01) {
    manager_.reset();
    DeploymentManager::Options options;
    options.active_json_path = json_path_;
    options.auto_rollback_margin = margin;
    options.auto_rollback_min_trades = 200;
    options.run_async = [](std::function<void()> task) { task(); };
    auto manager = DeploymentManager::Create(failing_.get(), &jobs_, &levels_, options);
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = std::move(*manager);
  }

  absl::StatusOr<clm::v1::DeploymentVersion> Approve(const std::string& job, clm::v1::DeploymentStage stage) {
    clm::v1::ApproveRequest request;
    request.set_job_id(job);
    request.set_stage(stage);
    request.set_approver("alice");
    request.set_reason("reviewed the report");
    return manager_->Approve(request);
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

  clm::testing::TempDir dir_;
  std::string json_path_ = dir_.path() + "/active_calibration.json";
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
  levels_.Set(false, false);
  refused = Approve("cal_a", clm::v1::STAGE_PRODUCTION);
  EXPECT_EQ(refused.status().message(),
            "rule level_authorized: CALIBRATION level is not authorized: too few trades: 10 of 50");

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

}  // namespace
}  // namespace clm::deployment
