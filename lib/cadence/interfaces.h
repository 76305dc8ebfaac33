#ifndef CLM_LIB_CADENCE_INTERFACES_H_
#define CLM_LIB_CADENCE_INTERFACES_H_

// What the cadence monitor needs from the rest of the service. Each is an interface so the trade store, the
// job system and deployment implement them where they live, and tests inject fakes.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clm/v1/cadence.pb.h"
#include "lib/cadence/evaluator.h"

namespace clm::cadence {

// Time as the monitor reports it (generated_at, decided_at, changed_at). The monitor's waiting between
// evaluations uses the steady clock, not this, so a fake clock never has to be advanced for the thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;  // thread-safe
};

// absl::Now().
class SystemClock final : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
};

// Which trades an evaluation covers. Empty fields: no restriction.
struct Scope {
  std::string symbol;
  std::string model_id;
  bool all() const { return symbol.empty() && model_id.empty(); }
};

struct SourceSnapshot {
  DataSnapshot data;
  TrainingState training;
};

// The labelled data set and the training history. Implemented by the trade store.
//
// Contract: thread-safe; may block on I/O (the monitor only calls it from its own thread or from the
// caller of a synchronous method). The snapshot is consistent (one read transaction): total equals
// wins + losses + neutrals, and new_trades_since_training counts the trades in scope stored after the data
// the last training used (every trade in scope when there was none). TrainingState is global.
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  virtual absl::StatusOr<SourceSnapshot> Load(const Scope& scope) = 0;
};

// A job's progress as the job system reports it.
struct JobStatus {
  enum class State { kQueued, kRunning, kSucceeded, kFailed };  // kFailed includes cancelled
  State state = State::kQueued;
  // Meaningful when kSucceeded: the result passed safety validation and may be deployed into shadow.
  bool deployment_ready = false;
  std::string message;  // why it failed, or why it is not deployment ready
};

// Starts learning work. Implemented by the job system and deployment.
//
// Contract: thread-safe; calls should return promptly (queue the work, do not run it): the monitor calls
// them from its evaluation loop. NotFound from GetJobStatus means the job is unknown (e.g. purged); the
// monitor then stops waiting for it.
class JobLauncher {
 public:
  virtual ~JobLauncher() = default;
  // Queues a calibration job over all trades; returns its id. `reason` is recorded with the job.
  virtual absl::StatusOr<std::string> SubmitCalibration(const std::string& reason) = 0;
  virtual absl::StatusOr<JobStatus> GetJobStatus(const std::string& job_id) = 0;
  // Deploys a succeeded, deployment-ready job's result into shadow (never production).
  virtual absl::Status ApproveIntoShadow(const std::string& job_id, const std::string& reason) = 0;
};

// The monitor's durable state. Implemented by the SQLite store; InMemoryCadenceStateStore for tests.
//
// Contract: thread-safe; may block on I/O. A write that returns OK is durable and visible to every later
// read, including after a restart. Reads return records newest first.
class CadenceStateStore {
 public:
  virtual ~CadenceStateStore() = default;

  // The mode in force is the to_mode of the newest change; none recorded: the policy's default_mode.
  virtual absl::Status AppendModeChange(const clm::v1::ModeChange& change) = 0;
  virtual absl::StatusOr<std::vector<clm::v1::ModeChange>> LoadModeChanges(size_t limit) = 0;

  // Decisions carry increasing ids chosen by the monitor; the store keeps them as given.
  virtual absl::Status AppendDecision(const clm::v1::MonitorDecision& decision) = 0;
  virtual absl::StatusOr<std::vector<clm::v1::MonitorDecision>> LoadDecisions(size_t limit) = 0;

  // The calibration job the monitor submitted and still follows (AUTO modes), so a restart neither
  // submits a second job for the same trigger nor forgets to approve the first. Empty: none.
  virtual absl::Status SavePendingJob(const std::string& job_id) = 0;
  virtual absl::StatusOr<std::string> LoadPendingJob() = 0;
};

}  // namespace clm::cadence

#endif  // CLM_LIB_CADENCE_INTERFACES_H_
