#include "lib/jobs/job_manager.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "lib/calibration/engine.h"
#include "lib/calibration/options.h"
#include "lib/store/sqlite_trade_store.h"

namespace clm::jobs {
namespace {

using clm::v1::Job;

constexpr size_t kMaxNameBytes = 128;
constexpr size_t kMaxReasonBytes = 1024;
constexpr uint32_t kDefaultPageSize = 20;
constexpr uint32_t kMaxPageSize = 200;

google::protobuf::Timestamp ToTimestamp(absl::Time t) { return store::FromNanos(absl::ToUnixNanos(t)); }

bool Ended(clm::v1::JobState state) {
  return state == clm::v1::SUCCEEDED || state == clm::v1::FAILED || state == clm::v1::CANCELLED;
}

store::DatasetQuery ToQuery(const clm::v1::DatasetFilter& filter) {
  store::DatasetQuery query;
  query.symbol = filter.symbol();
  query.model_id = filter.model_id();
  if (filter.has_closed_from()) query.closed_from_ns = store::ToNanos(filter.closed_from());
  if (filter.has_closed_to()) query.closed_to_ns = store::ToNanos(filter.closed_to());
  return query;
}

// Why a job has nothing to learn from, in the filter's own terms.
std::string NoTradesReason(const clm::v1::DatasetFilter& filter) {
  std::vector<std::string> terms;
  if (!filter.symbol().empty()) terms.push_back(absl::StrCat("symbol \"", filter.symbol(), "\""));
  if (!filter.model_id().empty()) terms.push_back(absl::StrCat("model_id \"", filter.model_id(), "\""));
  if (filter.has_closed_from()) {
    terms.push_back(absl::StrCat("closed_from ", google::protobuf::util::TimeUtil::ToString(filter.closed_from())));
  }
  if (filter.has_closed_to()) {
    terms.push_back(absl::StrCat("closed_to ", google::protobuf::util::TimeUtil::ToString(filter.closed_to())));
  }
  if (terms.empty()) return "no trades to calibrate on: none are stored yet";
  return absl::StrCat("no trades to calibrate on: none match the filter (", absl::StrJoin(terms, ", "), ")");
}

}  // namespace

absl::Status ValidateSubmit(const clm::v1::SubmitJobRequest& request) {
  if (!clm::v1::CalibrationMethod_IsValid(request.method())) {
    return absl::InvalidArgumentError(
        absl::StrCat("method: must be ISOTONIC, PLATT or VENN_ABERS, got ", static_cast<int>(request.method())));
  }
  clm::v1::CalibrationOptions options = request.options();
  if (request.method() != clm::v1::CALIBRATION_METHOD_UNSPECIFIED) options.set_method(request.method());
  // ResolveOptions names its fields from the request's root already ("options.folds: ...").
  absl::StatusOr<calibration::ResolvedOptions> resolved = calibration::ResolveOptions(options);
  if (!resolved.ok()) return absl::InvalidArgumentError(resolved.status().message());
  const auto& f = request.filter();
  if (f.has_closed_from() && f.has_closed_to() && store::ToNanos(f.closed_from()) >= store::ToNanos(f.closed_to())) {
    return absl::InvalidArgumentError("filter.closed_to: must be after filter.closed_from");
  }
  if (request.submitted_by().size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("submitted_by: must be at most ", kMaxNameBytes, " bytes"));
  }
  if (request.reason().size() > kMaxReasonBytes) {
    return absl::InvalidArgumentError(absl::StrCat("reason: must be at most ", kMaxReasonBytes, " bytes"));
  }
  for (const auto& [model, weight] : request.current_weights()) {
    if (model.empty()) return absl::InvalidArgumentError("current_weights: model names must not be empty");
    if (!std::isfinite(weight) || weight < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("current_weights[", model, "]: must be a finite number >= 0, got ", weight));
    }
  }
  return absl::OkStatus();
}

JobManager::JobManager(store::TradeStore* trades, JobStore* jobs, JobObserver* observer, const Options& options)
    : trades_(trades), jobs_(jobs), observer_(observer), options_(options) {}

JobManager::~JobManager() { Stop(); }

absl::Status JobManager::Start() {
  absl::StatusOr<std::vector<Job>> unfinished = jobs_->Unfinished();
  if (!unfinished.ok()) return unfinished.status();
  absl::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("job manager already started");
  for (Job& job : *unfinished) {
    if (job.state() == clm::v1::RUNNING) {
      job.set_state(clm::v1::FAILED);
      job.set_error("the server stopped while this job was running (crash or kill); submit it again");
      *job.mutable_finished_at() = ToTimestamp(absl::Now());
      absl::Status status = jobs_->Put(job);
      if (!status.ok()) return status;
      continue;
    }
    // Queued jobs had not started: run them now, in their original order.
    queue_.push_back(job.id());
    active_[job.id()].job = std::move(job);
  }
  started_ = true;
  for (size_t i = 0; i < std::max<size_t>(1, options_.workers); ++i) workers_.emplace_back([this] { Worker(); });
  return absl::OkStatus();
}

void JobManager::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, active] : active_) {
      if (active.job.state() == clm::v1::RUNNING) {
        active.cancel_requested = true;
        active.cancel_reason = "the server is shutting down";
      }
    }
  }
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

std::string JobManager::NextId(absl::Time now) {
  std::string base = absl::StrCat("cal_", absl::FormatTime("%Y%m%d_%H%M%S", now, absl::UTCTimeZone()));
  if (base != last_id_base_) {
    last_id_base_ = base;
    last_id_suffix_ = 1;
  }
  // Unique within this process by the suffix, and against earlier processes by asking the store.
  while (true) {
    std::string id = last_id_suffix_ == 1 ? base : absl::StrCat(base, "_", last_id_suffix_);
    ++last_id_suffix_;
    if (active_.count(id) > 0) continue;
    absl::StatusOr<Job> existing = jobs_->Get(id, false);
    if (existing.ok()) continue;
    return id;
  }
}

absl::StatusOr<Job> JobManager::Submit(const clm::v1::SubmitJobRequest& request) {
  absl::Status valid = ValidateSubmit(request);
  if (!valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  if (!started_ || stopping_) return absl::UnavailableError("the job system is not running");
  if (queue_.size() >= options_.max_queued) {
    return absl::ResourceExhaustedError(
        absl::StrCat(queue_.size(), " jobs are already queued (max ", options_.max_queued,
                     "); wait for them or cancel some"));
  }
  Job job;
  const absl::Time now = absl::Now();
  job.set_id(NextId(now));
  job.set_state(clm::v1::QUEUED);
  *job.mutable_created_at() = ToTimestamp(now);
  *job.mutable_request() = request;
  if (job.request().submitted_by().empty()) job.mutable_request()->set_submitted_by("anonymous");
  absl::Status status = jobs_->Put(job);
  if (!status.ok()) return status;
  queue_.push_back(job.id());
  active_[job.id()].job = job;
  if (observer_ != nullptr) observer_->OnQueueChanged(queue_.size(), running_);
  return job;
}

absl::StatusOr<Job> JobManager::Get(const std::string& id, bool with_result) {
  if (id.empty()) return absl::InvalidArgumentError("id: is required");
  {
    absl::MutexLock lock(&mu_);
    auto it = active_.find(id);
    if (it != active_.end()) return it->second.job;
  }
  return jobs_->Get(id, with_result);
}

absl::StatusOr<clm::v1::ListJobsResponse> JobManager::List(const clm::v1::ListJobsRequest& request) {
  if (!clm::v1::JobState_IsValid(request.state())) {
    return absl::InvalidArgumentError(absl::StrCat("state: unknown job state ", static_cast<int>(request.state())));
  }
  if (request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be at most ", kMaxPageSize, ", got ", request.page_size()));
  }
  const size_t page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  if (!request.page_token().empty()) {
    absl::StatusOr<Job> anchor = jobs_->Get(request.page_token(), false);
    if (!anchor.ok()) return absl::InvalidArgumentError("page_token: not a token from a previous List");
  }
  absl::StatusOr<std::vector<Job>> jobs = jobs_->List(request.state(), request.page_token(), page_size + 1);
  if (!jobs.ok()) return jobs.status();
  clm::v1::ListJobsResponse response;
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < jobs->size() && i < page_size; ++i) {
    Job& job = (*jobs)[i];
    // The store has the last persisted state; a running job's progress lives in memory.
    auto it = active_.find(job.id());
    if (it != active_.end()) job = it->second.job;
    job.clear_result();
    *response.add_jobs() = std::move(job);
  }
  if (jobs->size() > page_size) response.set_next_page_token(response.jobs(response.jobs_size() - 1).id());
  return response;
}

absl::StatusOr<Job> JobManager::Cancel(const std::string& id, const std::string& reason) {
  if (id.empty()) return absl::InvalidArgumentError("id: is required");
  if (reason.size() > kMaxReasonBytes) {
    return absl::InvalidArgumentError(absl::StrCat("reason: must be at most ", kMaxReasonBytes, " bytes"));
  }
  Job cancelled;
  {
    absl::MutexLock lock(&mu_);
    auto it = active_.find(id);
    if (it == active_.end()) {
      absl::StatusOr<Job> stored = jobs_->Get(id, false);
      if (!stored.ok()) return stored.status();
      return absl::FailedPreconditionError(absl::StrCat("job ", id, " has already ended (",
                                                        clm::v1::JobState_Name(stored->state()), ")"));
    }
    std::string why = reason.empty() ? "cancelled by request" : absl::StrCat("cancelled: ", reason);
    if (it->second.job.state() == clm::v1::RUNNING) {
      // The worker notices at its next progress report and ends the job CANCELLED.
      it->second.cancel_requested = true;
      it->second.cancel_reason = why;
      return it->second.job;
    }
    queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
    cancelled = std::move(it->second.job);
    active_.erase(it);
    cancelled.set_state(clm::v1::CANCELLED);
    cancelled.set_error(why);
    *cancelled.mutable_finished_at() = ToTimestamp(absl::Now());
    absl::Status status = jobs_->Put(cancelled);
    if (!status.ok()) return status;
    if (observer_ != nullptr) {
      observer_->OnJobEnded(cancelled, absl::ZeroDuration());
      observer_->OnQueueChanged(queue_.size(), running_);
    }
  }
  Publish(cancelled);
  return cancelled;
}

JobManager::Subscription JobManager::Subscribe(const std::string& job_id, JobCallback callback) {
  Subscription subscription;
  {
    absl::MutexLock lock(&mu_);
    subscription.active = active_.count(job_id) > 0;
    if (!subscription.active) return subscription;
    // Registered under mu_, so no transition is published between the caller's Get and this.
    absl::MutexLock subs_lock(&subs_mu_);
    subscription.id = next_subscriber_++;
    subscribers_[subscription.id] = Subscriber{job_id, std::move(callback)};
  }
  return subscription;
}

void JobManager::Unsubscribe(uint64_t subscription_id) {
  absl::MutexLock lock(&subs_mu_);
  subscribers_.erase(subscription_id);
}

size_t JobManager::queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void JobManager::Publish(const Job& job) {
  Job without_result = job;
  without_result.clear_result();
  absl::MutexLock lock(&subs_mu_);
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    if (it->second.job_id != job.id()) {
      ++it;
      continue;
    }
    it->second.callback(without_result);
    // Nothing more will come for an ended job: drop its subscribers.
    it = Ended(job.state()) ? subscribers_.erase(it) : std::next(it);
  }
}

void JobManager::Worker() {
  while (true) {
    std::string id;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](JobManager* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      if (stopping_) return;  // queued jobs stay QUEUED in the store and run after the next start
      id = queue_.front();
      queue_.pop_front();
      ++running_;
      if (observer_ != nullptr) observer_->OnQueueChanged(queue_.size(), running_);
    }
    Run(id);
    absl::MutexLock lock(&mu_);
    --running_;
    if (observer_ != nullptr) observer_->OnQueueChanged(queue_.size(), running_);
  }
}

void JobManager::Run(const std::string& id) {
  const absl::Time started = absl::Now();
  Job job;
  absl::Status persisted;
  {
    absl::MutexLock lock(&mu_);
    Active& active = active_[id];
    active.job.set_state(clm::v1::RUNNING);
    *active.job.mutable_started_at() = ToTimestamp(started);
    job = active.job;
    // Stored before anyone can read RUNNING (Get and Watch read it under this lock, List from the store):
    // whoever saw the job running finds it FAILED after a crash, never queued and run again. One row per job.
    persisted = jobs_->Put(job);
  }
  Publish(job);

  absl::Status status = persisted;
  clm::v1::CalibrationResult result;
  if (status.ok()) {
    // The job sees the trades stored up to now; the training record says so, and the cadence triggers count
    // the trades stored after it.
    absl::StatusOr<int64_t> max_seq = trades_->MaxSeq();
    store::DatasetQuery query = ToQuery(job.request().filter());
    absl::StatusOr<std::vector<Trade>> trades =
        max_seq.ok() ? trades_->LoadTrades(query) : absl::StatusOr<std::vector<Trade>>(max_seq.status());
    if (!trades.ok()) {
      status = absl::Status(trades.status().code(), absl::StrCat("loading trades: ", trades.status().message()));
    } else {
      trades->erase(std::remove_if(trades->begin(), trades->end(), [&](const Trade& t) { return t.seq > *max_seq; }),
                    trades->end());
      job.set_max_seq(static_cast<uint64_t>(*max_seq));
      job.set_trades_seen(trades->size());
    }
    // Nothing to fit or measure: a job that "succeeded" on no evidence would read as a result.
    if (trades.ok() && trades->empty()) {
      status = absl::FailedPreconditionError(NoTradesReason(job.request().filter()));
    }
    if (status.ok()) {
      clm::v1::CalibrationOptions options = job.request().options();
      if (job.request().method() != clm::v1::CALIBRATION_METHOD_UNSPECIFIED) {
        options.set_method(job.request().method());
      }
      calibration::EnsembleWeights weights(job.request().current_weights().begin(),
                                           job.request().current_weights().end());
      double last_published = -1.0;
      absl::StatusOr<clm::v1::CalibrationResult> fitted = calibration::RunCalibration(
          *trades, options, weights, [&](double progress) {
            Job snapshot;
            {
              absl::MutexLock lock(&mu_);
              Active& active = active_[id];
              if (active.cancel_requested) return false;
              if (progress - last_published < 0.01) return true;
              active.job.set_progress(progress);
              snapshot = active.job;
            }
            last_published = progress;
            Publish(snapshot);
            return true;
          });
      if (fitted.ok()) {
        result = std::move(*fitted);
      } else {
        status = fitted.status();
      }
    }
  }

  {
    absl::MutexLock lock(&mu_);
    Active& active = active_[id];
    job.set_progress(active.job.progress());
    if (active.cancel_requested && (status.ok() || absl::IsCancelled(status))) {
      status = absl::CancelledError(active.cancel_reason);
    }
  }
  *job.mutable_finished_at() = ToTimestamp(absl::Now());
  if (status.ok()) {
    job.set_state(clm::v1::SUCCEEDED);
    job.set_progress(1.0);
    *job.mutable_result() = std::move(result);
    status = jobs_->Complete(job);
    if (!status.ok()) job.clear_result();
  }
  if (!status.ok()) {
    job.set_state(absl::IsCancelled(status) ? clm::v1::CANCELLED : clm::v1::FAILED);
    job.set_error(std::string(status.message()));
    // Best effort: if even this write fails, the next start finds the job RUNNING and marks it FAILED.
    jobs_->Put(job).IgnoreError();
  }
  {
    absl::MutexLock lock(&mu_);
    active_.erase(id);
  }
  if (observer_ != nullptr) observer_->OnJobEnded(job, absl::Now() - started);
  Publish(job);
}

}  // namespace clm::jobs
