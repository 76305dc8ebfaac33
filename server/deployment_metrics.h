#ifndef CLM_SERVER_DEPLOYMENT_METRICS_H_
#define CLM_SERVER_DEPLOYMENT_METRICS_H_

#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "lib/deployment/deployment_manager.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace clm::server {

// Deployment metrics on the server's registry: which versions are live, how they do on live trades, and
// how often people (and the automatic rollback) changed them. Refreshed after each change and each commit.
class DeploymentMetrics final {
 public:
  explicit DeploymentMetrics(prometheus::Registry& registry);

  // Reads the manager's state and counters. Cheap (a few locks and copies); thread-safe.
  void Refresh(const deployment::DeploymentManager& deployments);

 private:
  absl::Mutex mu_;
  prometheus::Gauge* production_version_;
  prometheus::Gauge* shadow_version_;
  prometheus::Gauge* live_mse_raw_;
  prometheus::Gauge* live_mse_production_;
  prometheus::Gauge* live_mse_shadow_;
  prometheus::Gauge* live_trades_;
  prometheus::Counter* approvals_;
  prometheus::Counter* promotions_;
  prometheus::Counter* manual_rollbacks_;
  prometheus::Counter* auto_rollbacks_;
  prometheus::Counter* skip_shadow_;
  prometheus::Gauge* rollback_delivery_last_;
  prometheus::Family<prometheus::Counter>* refused_family_;
  std::map<std::string, prometheus::Counter*> refused_ ABSL_GUARDED_BY(mu_);
  deployment::DeploymentManager::Counters last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clm::server

#endif  // CLM_SERVER_DEPLOYMENT_METRICS_H_
