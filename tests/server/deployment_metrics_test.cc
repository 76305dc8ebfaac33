// Deployment metrics: every refusal rule has its series (shadow_evidence included), and an approval that
// skipped shadow is counted as the override it is.
#include "server/deployment_metrics.h"

#include <map>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "lib/deployment/deployment_manager.h"
#include "lib/store/sqlite_deployment_store.h"
#include "prometheus/registry.h"
#include "tests/testing/test_util.h"

namespace clm::server {
namespace {

class OneJob final : public deployment::JobSource {
 public:
  absl::StatusOr<clm::v1::Job> GetJob(const std::string& id) override {
    clm::v1::Job job;
    job.set_id(id);
    job.set_state(clm::v1::SUCCEEDED);
    auto* map = job.mutable_result()->mutable_global_map();
    map->set_method(clm::v1::ISOTONIC);
    map->add_x_thresholds(0.5);
    map->add_y_thresholds(0.4);
    job.mutable_result()->mutable_safety()->set_deployment_ready(true);
    return job;
  }
};

class AllLevels final : public deployment::LevelSource {
 public:
  absl::StatusOr<clm::v1::CadenceReport> CurrentReport() override {
    clm::v1::CadenceReport report;
    for (auto level : {clm::v1::CALIBRATION, clm::v1::SHADOW, clm::v1::PRODUCTION}) {
      auto* l = report.add_levels();
      l->set_level(level);
      l->set_authorized(true);
    }
    return report;
  }
};

double Value(prometheus::Registry& registry, const std::string& family, const std::string& label,
             const std::string& value) {
  for (const auto& f : registry.Collect()) {
    if (f.name != family) continue;
    for (const auto& m : f.metric) {
      for (const auto& l : m.label) {
        if (l.name == label && l.value == value) return m.counter.value;
      }
    }
  }
  return -1.0;
}

TEST(DeploymentMetricsTest, CountsShadowEvidenceRefusalsAndSkipShadowOverrides) {
  clm::testing::TempDir dir;
  auto store = store::SqliteDeploymentStore::Open(dir.path() + "/clm.db");
  ASSERT_TRUE(store.ok()) << store.status();
  OneJob jobs;
  AllLevels levels;
  auto manager = deployment::DeploymentManager::Create(store->get(), &jobs, &levels, {});
  ASSERT_TRUE(manager.ok()) << manager.status();
  prometheus::Registry registry;
  DeploymentMetrics metrics(registry);
  metrics.Refresh(**manager);
  EXPECT_EQ(Value(registry, "clm_deployment_refused_total", "rule", "shadow_evidence"), 0.0);
  EXPECT_EQ(Value(registry, "clm_deployment_changes_total", "kind", "skip_shadow"), 0.0);

  clm::v1::ApproveRequest request;
  request.set_job_id("cal_1");
  request.set_stage(clm::v1::STAGE_PRODUCTION);
  request.set_approver("alice");
  request.set_reason("reviewed");
  EXPECT_EQ((*manager)->Approve(request).status().code(), absl::StatusCode::kFailedPrecondition);
  request.set_skip_shadow(true);
  ASSERT_TRUE((*manager)->Approve(request).ok());
  metrics.Refresh(**manager);
  EXPECT_EQ(Value(registry, "clm_deployment_refused_total", "rule", "shadow_evidence"), 1.0);
  EXPECT_EQ(Value(registry, "clm_deployment_changes_total", "kind", "skip_shadow"), 1.0);
  EXPECT_EQ(Value(registry, "clm_deployment_changes_total", "kind", "approval"), 1.0);
}

}  // namespace
}  // namespace clm::server
