#ifndef CLM_LIB_JOBS_JOB_MANAGER_H_
#define CLM_LIB_JOBS_JOB_MANAGER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clm/v1/calibration_job.pb.h"
#include "lib/jobs/job_store.h"
#include "lib/store/trade_store.h"

namespace clm::jobs {

// Told about job transitions, for metrics. Runs on a worker thread; must be quick.
class JobObserver {
 public:
  virtual ~JobObserver() = default;
  virtual void OnJobEnded(const clm::v1::Job& job, absl::Duration run_time) = 0;
  virtual void OnQueueChanged(size_t queued, size_t running) = 0;
};

// Runs calibration jobs on a fixed pool of worker threads, off the gRPC threads, and keeps every job in the
// JobStore.
//
// Contract:
// - Submit validates, persists the job as QUEUED and returns at once; RESOURCE_EXHAUSTED when max_queued
//   jobs are already waiting.
// - A job ends exactly once: SUCCEEDED (result and training record stored together), FAILED (with the
//   error) or CANCELLED. A job the previous process left RUNNING is marked FAILED at Start() with a reason
//   saying so; one it left QUEUED runs again (nothing of it had started).
// - Every public method is thread-safe. Submit, Get, List and Cancel do store I/O: call them off gRPC's
//   reactor threads. Subscribe and Unsubscribe never block on I/O.
class JobManager final {
 public:
  struct Options {
    size_t workers = 1;      // calibration is CPU-bound: keep cores for ingestion
    size_t max_queued = 32;
  };
  using JobCallback = std::function<void(const clm::v1::Job&)>;

  JobManager(store::TradeStore* trades, JobStore* jobs, JobObserver* observer, const Options& options);
  ~JobManager();  // Stop()s
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // Recovers what a previous process left unfinished, then starts the workers.
  absl::Status Start();
  // Cancels running jobs (they end CANCELLED, "the server is shutting down"), leaves queued ones QUEUED for
  // the next start, joins the workers. Idempotent.
  void Stop();

  absl::StatusOr<clm::v1::Job> Submit(const clm::v1::SubmitJobRequest& request);
  absl::StatusOr<clm::v1::Job> Get(const std::string& id, bool with_result);
  // page_token is the last id of the previous page.
  absl::StatusOr<clm::v1::ListJobsResponse> List(const clm::v1::ListJobsRequest& request);
  absl::StatusOr<clm::v1::Job> Cancel(const std::string& id, const std::string& reason);

  // Calls `callback` with the job (without result) on every state or progress change until it ends;
  // `current` is the job at subscription when it is still queued or running. NOT_FOUND for an unknown id
  // is left to the caller (use Get first). After Unsubscribe returns the callback is not running and never
  // runs again. Callbacks run on worker threads and must not block.
  struct Subscription {
    uint64_t id = 0;
    bool active = false;  // false: the job already ended, nothing will be delivered
  };
  Subscription Subscribe(const std::string& job_id, JobCallback callback);
  void Unsubscribe(uint64_t subscription_id);

  size_t queued() const;

 private:
  struct Active {
    clm::v1::Job job;
    bool cancel_requested = false;
    std::string cancel_reason;
  };
  struct Subscriber {
    std::string job_id;
    JobCallback callback;
  };

  void Worker();
  void Run(const std::string& id);
  // Updates the in-memory job and tells its subscribers.
  void Publish(const clm::v1::Job& job);
  std::string NextId(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Finish(clm::v1::Job& job, absl::Time started);

  store::TradeStore* const trades_;
  JobStore* const jobs_;
  JobObserver* const observer_;
  const Options options_;

  mutable absl::Mutex mu_;
  std::map<std::string, Active> active_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  size_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_id_base_ ABSL_GUARDED_BY(mu_);
  int last_id_suffix_ ABSL_GUARDED_BY(mu_) = 1;

  absl::Mutex subs_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::map<uint64_t, Subscriber> subscribers_ ABSL_GUARDED_BY(subs_mu_);
  uint64_t next_subscriber_ ABSL_GUARDED_BY(subs_mu_) = 1;

  std::vector<std::thread> workers_;
};

// Checks a SubmitJobRequest; errors name the field.
absl::Status ValidateSubmit(const clm::v1::SubmitJobRequest& request);

}  // namespace clm::jobs

#endif  // CLM_LIB_JOBS_JOB_MANAGER_H_
