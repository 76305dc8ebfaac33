#include "server/job_metrics.h"

namespace clm::server {

JobMetrics::JobMetrics(prometheus::Registry& registry) {
  auto& ended = prometheus::BuildCounter()
                    .Name("clm_calibration_jobs_total")
                    .Help("Calibration jobs that ended, by final state")
                    .Register(registry);
  for (clm::v1::JobState state : {clm::v1::SUCCEEDED, clm::v1::FAILED, clm::v1::CANCELLED}) {
    ended_[state] = &ended.Add({{"state", clm::v1::JobState_Name(state)}});
  }
  auto& active = prometheus::BuildGauge()
                     .Name("clm_calibration_jobs_active")
                     .Help("Calibration jobs waiting (QUEUED) or running (RUNNING)")
                     .Register(registry);
  queued_ = &active.Add({{"state", "QUEUED"}});
  running_ = &active.Add({{"state", "RUNNING"}});
  duration_ = &prometheus::BuildHistogram()
                   .Name("clm_calibration_job_duration_seconds")
                   .Help("Run time of calibration jobs, from start to end")
                   .Register(registry)
                   .Add({}, prometheus::Histogram::BucketBoundaries{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600});
  auto& mse = prometheus::BuildGauge()
                  .Name("clm_calibration_mse")
                  .Help("Brier score (MSE) of the latest successful job: raw confidence (before) and calibrated "
                        "(after), in sample and out of sample (time-ordered cross-validation)")
                  .Register(registry);
  mse_in_before_ = &mse.Add({{"evaluation", "in_sample"}, {"side", "before"}});
  mse_in_after_ = &mse.Add({{"evaluation", "in_sample"}, {"side", "after"}});
  mse_out_before_ = &mse.Add({{"evaluation", "out_of_sample"}, {"side", "before"}});
  mse_out_after_ = &mse.Add({{"evaluation", "out_of_sample"}, {"side", "after"}});
  auto& ece = prometheus::BuildGauge()
                  .Name("clm_calibration_ece")
                  .Help("Expected calibration error of the latest successful job, in sample")
                  .Register(registry);
  ece_before_ = &ece.Add({{"side", "before"}});
  ece_after_ = &ece.Add({{"side", "after"}});
  auto& improvement = prometheus::BuildGauge()
                          .Name("clm_calibration_improvement_percent")
                          .Help("MSE improvement of the latest successful job, (before - after) / before * 100")
                          .Register(registry);
  improvement_in_ = &improvement.Add({{"evaluation", "in_sample"}});
  improvement_out_ = &improvement.Add({{"evaluation", "out_of_sample"}});
  risk_score_ = &prometheus::BuildGauge()
                     .Name("clm_calibration_risk_score")
                     .Help("Safety validation risk score of the latest successful job, in [0, 1]")
                     .Register(registry)
                     .Add({});
  deployment_ready_ = &prometheus::BuildGauge()
                           .Name("clm_calibration_deployment_ready")
                           .Help("1 when the latest successful job passed safety validation")
                           .Register(registry)
                           .Add({});
  last_success_ = &prometheus::BuildGauge()
                       .Name("clm_calibration_last_success_timestamp_seconds")
                       .Help("When the latest successful job finished (Unix seconds); 0 when none has")
                       .Register(registry)
                       .Add({});
}

void JobMetrics::OnJobEnded(const clm::v1::Job& job, absl::Duration run_time) {
  auto it = ended_.find(job.state());
  if (it != ended_.end()) it->second->Increment();
  if (run_time > absl::ZeroDuration()) duration_->Observe(absl::ToDoubleSeconds(run_time));
  if (job.state() != clm::v1::SUCCEEDED) return;
  const clm::v1::EvaluationResult& ev = job.result().evaluation();
  mse_in_before_->Set(ev.in_sample_before().mse());
  mse_in_after_->Set(ev.in_sample_after().mse());
  improvement_in_->Set(ev.in_sample_improvement_pct());
  if (ev.cross_validated()) {
    mse_out_before_->Set(ev.out_of_sample_before().mse());
    mse_out_after_->Set(ev.out_of_sample_after().mse());
    improvement_out_->Set(ev.improvement_pct());
  }
  ece_before_->Set(ev.in_sample_before().ece());
  ece_after_->Set(ev.in_sample_after().ece());
  risk_score_->Set(job.result().safety().risk_score());
  deployment_ready_->Set(job.result().safety().deployment_ready() ? 1 : 0);
  last_success_->Set(static_cast<double>(job.finished_at().seconds()));
}

void JobMetrics::OnQueueChanged(size_t queued, size_t running) {
  queued_->Set(static_cast<double>(queued));
  running_->Set(static_cast<double>(running));
}

}  // namespace clm::server
