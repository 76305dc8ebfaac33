#ifndef CLM_SERVER_JOB_METRICS_H_
#define CLM_SERVER_JOB_METRICS_H_

#include <map>
#include <memory>

#include "lib/jobs/job_manager.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace clm::server {

// Calibration job metrics, on the server's one registry. Figures of the latest successful job (MSE before
// and after, in and out of sample, ECE, improvement, risk) are what the Grafana dashboard plots.
class JobMetrics final : public jobs::JobObserver {
 public:
  explicit JobMetrics(prometheus::Registry& registry);

  void OnJobEnded(const clm::v1::Job& job, absl::Duration run_time) override;
  void OnQueueChanged(size_t queued, size_t running) override;

 private:
  std::map<clm::v1::JobState, prometheus::Counter*> ended_;
  prometheus::Gauge* queued_;
  prometheus::Gauge* running_;
  prometheus::Histogram* duration_;
  prometheus::Gauge* mse_in_before_;
  prometheus::Gauge* mse_in_after_;
  prometheus::Gauge* mse_out_before_;
  prometheus::Gauge* mse_out_after_;
  prometheus::Gauge* ece_before_;
  prometheus::Gauge* ece_after_;
  prometheus::Gauge* improvement_in_;
  prometheus::Gauge* improvement_out_;
  prometheus::Gauge* risk_score_;
  prometheus::Gauge* deployment_ready_;
  prometheus::Gauge* last_success_;
};

}  // namespace clm::server

#endif  // CLM_SERVER_JOB_METRICS_H_
