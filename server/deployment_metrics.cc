#include "server/deployment_metrics.h"

namespace clm::server {

DeploymentMetrics::DeploymentMetrics(prometheus::Registry& registry) {
  auto& version = prometheus::BuildGauge()
                      .Name("clm_deployment_version")
                      .Help("The deployed calibration version by stage (0: none; production 0 is the raw confidence)")
                      .Register(registry);
  production_version_ = &version.Add({{"stage", "production"}});
  shadow_version_ = &version.Add({{"stage", "shadow"}});
  auto& mse = prometheus::BuildGauge()
                  .Name("clm_deployment_live_mse")
                  .Help("Brier score on trades ingested since the production version was deployed, by side")
                  .Register(registry);
  live_mse_raw_ = &mse.Add({{"side", "raw"}});
  live_mse_production_ = &mse.Add({{"side", "production"}});
  live_mse_shadow_ = &mse.Add({{"side", "shadow"}});
  live_trades_ = &prometheus::BuildGauge()
                      .Name("clm_deployment_live_trades")
                      .Help("Labelled trades scored since the production version was deployed")
                      .Register(registry)
                      .Add({});
  auto& changes = prometheus::BuildCounter()
                      .Name("clm_deployment_changes_total")
                      .Help("Deployment changes by kind: approval, promotion, rollback, auto_rollback; "
                            "skip_shadow counts approvals into production without shadow evidence (an override, "
                            "also counted as approval)")
                      .Register(registry);
  approvals_ = &changes.Add({{"kind", "approval"}});
  promotions_ = &changes.Add({{"kind", "promotion"}});
  manual_rollbacks_ = &changes.Add({{"kind", "rollback"}});
  auto_rollbacks_ = &changes.Add({{"kind", "auto_rollback"}});
  skip_shadow_ = &changes.Add({{"kind", "skip_shadow"}});
  rollback_delivery_last_ = &prometheus::BuildGauge()
                                .Name("clm_deployment_rollback_delivery_seconds")
                                .Help("Time from the latest rollback request (or detected regression) until "
                                      "watchers were sent the new calibration and the file was written")
                                .Register(registry)
                                .Add({});
  refused_family_ = &prometheus::BuildCounter()
                         .Name("clm_deployment_refused_total")
                         .Help("Refused approvals, promotions and rollbacks, by the rule that refused them")
                         .Register(registry);
  absl::MutexLock lock(&mu_);
  for (const char* rule : {"job_succeeded", "deployment_ready", "manual_approval", "ensemble_available",
                           "level_authorized", "shadow_evidence", "is_shadow", "rollback_target"}) {
    refused_[rule] = &refused_family_->Add({{"rule", rule}});
  }
}

void DeploymentMetrics::Refresh(const deployment::DeploymentManager& deployments) {
  const clm::v1::ActiveCalibration active = deployments.Active();
  const deployment::DeploymentManager::Counters counters = deployments.counters();
  production_version_->Set(static_cast<double>(active.production_version()));
  shadow_version_->Set(static_cast<double>(active.shadow_version()));
  if (active.production_version() != 0) {
    const clm::v1::LiveKpis kpis = deployments.Kpis(active.production_version());
    live_mse_raw_->Set(kpis.mse_raw());
    live_mse_production_->Set(kpis.mse_production());
    live_mse_shadow_->Set(kpis.mse_shadow());
    live_trades_->Set(static_cast<double>(kpis.trades()));
  } else if (active.shadow_version() != 0) {
    const clm::v1::LiveKpis kpis = deployments.Kpis(active.shadow_version());
    live_mse_raw_->Set(kpis.mse_raw());
    live_mse_production_->Set(kpis.mse_raw());  // production is the raw confidence
    live_mse_shadow_->Set(kpis.mse_shadow());
    live_trades_->Set(static_cast<double>(kpis.trades()));
  }
  // The manager's counters are totals; Prometheus counters only go up by the difference.
  absl::MutexLock lock(&mu_);
  approvals_->Increment(static_cast<double>(counters.approvals - last_.approvals));
  promotions_->Increment(static_cast<double>(counters.promotions - last_.promotions));
  manual_rollbacks_->Increment(static_cast<double>(counters.rollbacks - last_.rollbacks));
  auto_rollbacks_->Increment(static_cast<double>(counters.auto_rollbacks - last_.auto_rollbacks));
  skip_shadow_->Increment(static_cast<double>(counters.skip_shadow_approvals - last_.skip_shadow_approvals));
  for (const auto& [rule, count] : counters.refused_by_rule) {
    auto it = refused_.find(rule);
    if (it == refused_.end()) continue;
    const auto before = last_.refused_by_rule.find(rule);
    it->second->Increment(static_cast<double>(count - (before == last_.refused_by_rule.end() ? 0 : before->second)));
  }
  rollback_delivery_last_->Set(counters.last_rollback_delivery_seconds);
  last_ = counters;
}

}  // namespace clm::server
