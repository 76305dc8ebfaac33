#include "server/calibration_job_service.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "lib/calibration/report.h"
#include "server/grpc_status.h"
#include "server/unary_call.h"

namespace clm::server {
namespace {

using clm::v1::Job;

bool Ended(const Job& job) {
  return job.state() == clm::v1::SUCCEEDED || job.state() == clm::v1::FAILED || job.state() == clm::v1::CANCELLED;
}

}  // namespace

// Sends the job now and after each change until it ends. Changes that arrive while a write is in flight
// are coalesced into the latest one: a slow watcher sees fewer progress steps, never a growing queue.
class CalibrationJobService::WatchReactor final : public grpc::ServerWriteReactor<Job> {
 public:
  WatchReactor(CalibrationJobService* service, std::string id)
      : service_(service), id_(std::move(id)), start_(absl::Now()) {}

  // Runs on the pool: looks the job up, subscribes, and sends what it knows. The call may end (client
  // cancel) while this runs; then OnDone leaves the cleanup to the end of this function.
  void Begin() {
    absl::StatusOr<Job> job = service_->jobs_->Get(id_, false);
    jobs::JobManager::Subscription subscription;
    if (job.ok()) {
      subscription = service_->jobs_->Subscribe(id_, [this](const Job& update) { OnUpdate(update); });
      if (!subscription.active && !Ended(*job)) {
        // It ended between the lookup and the subscription: the store has the final state.
        job = service_->jobs_->Get(id_, false);
      }
    }
    {
      absl::MutexLock lock(&mu_);
      subscription_ = subscription.id;
      if (!job.ok()) {
        FinishLocked(ToGrpcStatus(job.status()));
      } else if (!finished_) {
        if (!pending_.has_value()) pending_ = std::move(*job);  // a fresher update may already be here
        MaybeWriteLocked();
      }
      begin_pending_ = false;
      if (!done_) return;
    }
    CleanUpAndDelete();
  }

  // Ends the call without Begin ever running.
  void Refuse(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    begin_pending_ = false;
    FinishLocked(status);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading"));
      return;
    }
    if (Ended(current_)) {
      FinishLocked(grpc::Status::OK);
      return;
    }
    MaybeWriteLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the watch"));
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      if (begin_pending_) return;  // Begin is still running on the pool: it cleans up when it ends
    }
    CleanUpAndDelete();
  }

 private:
  void CleanUpAndDelete() {
    // Unsubscribe waits out a callback that is running, so nothing touches this object afterwards.
    if (subscription_ != 0) service_->jobs_->Unsubscribe(subscription_);
    service_->watch_metrics_.Record(final_status_, absl::Now() - start_);
    delete this;
  }

  void OnUpdate(const Job& update) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    pending_ = update;
    MaybeWriteLocked();
  }

  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || !pending_.has_value()) return;
    current_ = std::move(*pending_);
    pending_.reset();
    writing_ = true;
    StartWrite(&current_);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    final_status_ = status;
    Finish(status);
  }

  CalibrationJobService* const service_;
  const std::string id_;
  const absl::Time start_;
  absl::Mutex mu_;
  uint64_t subscription_ = 0;  // set once by Begin, read after it
  std::optional<Job> pending_ ABSL_GUARDED_BY(mu_);
  Job current_;  // the message being written; only touched with writing_ set
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool begin_pending_ ABSL_GUARDED_BY(mu_) = true;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_;
};

CalibrationJobService::CalibrationJobService(jobs::JobManager* jobs, ThreadPool* pool, Metrics* metrics,
                                             const Authenticator* auth)
    : jobs_(jobs),
      pool_(pool),
      auth_(auth),
      submit_metrics_(metrics->Method("/clm.v1.CalibrationJob/Submit")),
      get_metrics_(metrics->Method("/clm.v1.CalibrationJob/Get")),
      list_metrics_(metrics->Method("/clm.v1.CalibrationJob/List")),
      watch_metrics_(metrics->Method("/clm.v1.CalibrationJob/Watch")),
      cancel_metrics_(metrics->Method("/clm.v1.CalibrationJob/Cancel")),
      report_metrics_(metrics->Method("/clm.v1.CalibrationJob/GetReport")) {}

grpc::ServerUnaryReactor* CalibrationJobService::Submit(grpc::CallbackServerContext* context,
                                                        const clm::v1::SubmitJobRequest* request, Job* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<auth::Principal> caller = Admit(*auth_, context, reactor, submit_metrics_);
  if (!caller.has_value()) return reactor;
  AnswerOnPool(pool_, context, reactor, submit_metrics_, response,
               [this, request, actor = auth_->Actor(*caller, request->submitted_by())] {
                 clm::v1::SubmitJobRequest submit = *request;
                 submit.set_submitted_by(actor);
                 return jobs_->Submit(submit);
               });
  return reactor;
}

grpc::ServerUnaryReactor* CalibrationJobService::Get(grpc::CallbackServerContext* context,
                                                     const clm::v1::GetJobRequest* request, Job* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(*auth_, context, reactor, get_metrics_)) return reactor;
  AnswerOnPool(pool_, context, reactor, get_metrics_, response,
               [this, request] { return jobs_->Get(request->id(), true); });
  return reactor;
}

grpc::ServerUnaryReactor* CalibrationJobService::List(grpc::CallbackServerContext* context,
                                                      const clm::v1::ListJobsRequest* request,
                                                      clm::v1::ListJobsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(*auth_, context, reactor, list_metrics_)) return reactor;
  AnswerOnPool(pool_, context, reactor, list_metrics_, response, [this, request] { return jobs_->List(*request); });
  return reactor;
}

grpc::ServerWriteReactor<Job>* CalibrationJobService::Watch(grpc::CallbackServerContext* context,
                                                            const clm::v1::WatchJobRequest* request) {
  if (absl::StatusOr<auth::Principal> caller = auth_->Check(*context, watch_metrics_.method()); !caller.ok()) {
    return new RefusedWrite<Job>(watch_metrics_, ToGrpcStatus(caller.status()));
  }
  auto* reactor = new WatchReactor(this, request->id());
  if (request->id().empty()) {
    reactor->Refuse(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "id: is required"));
    return reactor;
  }
  absl::Status scheduled = pool_->Schedule([reactor] { reactor->Begin(); });
  if (!scheduled.ok()) reactor->Refuse(ToGrpcStatus(scheduled));
  return reactor;
}

grpc::ServerUnaryReactor* CalibrationJobService::Cancel(grpc::CallbackServerContext* context,
                                                        const clm::v1::CancelJobRequest* request, Job* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(*auth_, context, reactor, cancel_metrics_)) return reactor;
  AnswerOnPool(pool_, context, reactor, cancel_metrics_, response,
               [this, request] { return jobs_->Cancel(request->id(), request->reason()); });
  return reactor;
}

grpc::ServerUnaryReactor* CalibrationJobService::GetReport(grpc::CallbackServerContext* context,
                                                           const clm::v1::GetReportRequest* request,
                                                           clm::v1::JobReport* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(*auth_, context, reactor, report_metrics_)) return reactor;
  FinishOnPool(pool_, context, reactor, report_metrics_, [this, context, request, response]() -> absl::Status {
    absl::StatusOr<Job> job = jobs_->Get(request->id(), true);
    if (!job.ok()) return job.status();
    if (job->state() != clm::v1::SUCCEEDED) {
      return absl::FailedPreconditionError(absl::StrCat("job ", job->id(), " is ", clm::v1::JobState_Name(job->state()),
                                                        ": only a SUCCEEDED job has a report"));
    }
    // Rendering a large report takes a while: not for a caller who has already gone.
    if (absl::Status ended = CallEnded(*context); !ended.ok()) return ended;
    absl::StatusOr<std::string> json = calibration::RenderJson(job->result());
    if (!json.ok()) return json.status();
    response->set_id(job->id());
    // The report names its job, so a printed or pasted copy can be traced back.
    std::string markdown = calibration::RenderMarkdown(job->result());
    const size_t title_end = markdown.find('\n');
    markdown.insert(title_end == std::string::npos ? markdown.size() : title_end, absl::StrCat(": job ", job->id()));
    response->set_markdown(std::move(markdown));
    response->set_json(std::move(*json));
    return absl::OkStatus();
  });
  return reactor;
}

}  // namespace clm::server
