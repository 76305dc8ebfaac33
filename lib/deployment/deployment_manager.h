#ifndef CLM_LIB_DEPLOYMENT_DEPLOYMENT_MANAGER_H_
#define CLM_LIB_DEPLOYMENT_DEPLOYMENT_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clm/v1/cadence.pb.h"
#include "clm/v1/calibration_job.pb.h"
#include "clm/v1/deployment.pb.h"
#include "lib/deployment/rules.h"

namespace clm::deployment {

// The deployment state as stored.
struct StoredState {
  std::vector<clm::v1::DeploymentVersion> versions;  // any order
  uint64_t production = 0;                           // 0: identity
  uint64_t shadow = 0;                               // 0: none
  uint64_t sequence = 0;                             // ActiveCalibration.sequence
  int64_t changed_at_ns = 0;
};

// Durable storage of versions, the active state and the audit.
//
// Contract: thread-safe. Commit is one transaction: the changed versions, the new state and the audit entry
// are stored together or not at all, so after a crash the production version and the audit agree.
class DeploymentStore {
 public:
  virtual ~DeploymentStore() = default;
  virtual absl::StatusOr<StoredState> Load() = 0;
  virtual absl::Status Commit(const std::vector<clm::v1::DeploymentVersion>& changed, uint64_t production,
                              uint64_t shadow, uint64_t sequence, int64_t changed_at_ns,
                              const clm::v1::AuditEntry& audit) = 0;
  // A refused attempt: audited, nothing else changes. The entry's id is assigned by the store.
  virtual absl::Status AppendAudit(const clm::v1::AuditEntry& audit) = 0;
  virtual absl::StatusOr<clm::v1::GetAuditResponse> ListAudit(uint32_t limit, uint64_t before_id) = 0;
};

// A job with its result (the job system).
class JobSource {
 public:
  virtual ~JobSource() = default;
  virtual absl::StatusOr<clm::v1::Job> GetJob(const std::string& id) = 0;
};

// The cadence policy's verdict now (the cadence monitor).
class LevelSource {
 public:
  virtual ~LevelSource() = default;
  virtual absl::StatusOr<clm::v1::CadenceReport> CurrentReport() = 0;
};

// The time stamped on versions, stage changes and audit entries. Contract: thread-safe, never blocks.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
};

// The actor the automatic rollback records; an operator's Rollback may not use it.
inline constexpr char kAutoRollbackActor[] = "clm-auto-rollback";

// Versions, approvals, promotion and rollback of calibrations, and their delivery.
//
// Contract:
// - Approve, Promote and Rollback are transactional (DeploymentStore::Commit) and take effect in memory,
//   for GetActive, Calibrate and subscribers, only after the commit succeeded. They do store I/O: call them
//   off gRPC's reactor threads. Every refusal is FAILED_PRECONDITION naming the rule, and is audited.
// - Active, List, Calibrate, Subscribe and Unsubscribe never block on I/O.
// - Subscribers are called after each change, in order, on the thread that made it (for an automatic
//   rollback, an Options::run_async thread); they must not block and must not call back into changes.
// - With a JSON path, the active calibration is rewritten atomically (temporary file, fsync, rename, fsync of
//   the directory) after every change and at start: a reader always sees a complete document.
class DeploymentManager final {
 public:
  struct Options {
    std::string active_json_path;  // empty: no file
    bool auto_rollback = true;
    double auto_rollback_margin = 0.01;
    uint64_t auto_rollback_min_trades = 200;
    // Labelled live trades a version must have been scored on in shadow before it may enter production
    // (ShadowEvidenceRefusal), unless approved with skip_shadow.
    uint64_t min_shadow_trades = 100;
    // Runs a task off the caller's thread (the automatic rollback writes the store, and OnTradesCommitted
    // runs on the ingest writer). Required for automatic rollback; without it there is none.
    std::function<void(std::function<void()>)> run_async;
    // The trade store's last sequence number, recorded as a version's live_from_seq when it is deployed so
    // its live KPIs can be rebuilt after a restart (ReplayLive). Without it they start at 0.
    std::function<absl::StatusOr<int64_t>()> max_seq;
    // Stamps versions, stage changes and the audit; nullptr: the system clock. Not owned.
    Clock* clock = nullptr;
    // Approvers that are not a person: an ensemble-weight change into production is refused for them.
    std::vector<std::string> automatic_actors = {"cadence-monitor", kAutoRollbackActor};
  };

  // A newly stored trade, as live measurement needs it.
  struct LiveTrade {
    double confidence = 0.0;
    int outcome = 0;  // clm.v1.TradeOutcome.Outcome
    double pnl = 0.0;
    std::string symbol;
    std::string model_id;
  };
  using ActiveCallback = std::function<void(const clm::v1::ActiveCalibration&)>;

  static absl::StatusOr<std::unique_ptr<DeploymentManager>> Create(DeploymentStore* store, JobSource* jobs,
                                                                    LevelSource* levels, const Options& options);
  ~DeploymentManager();
  DeploymentManager(const DeploymentManager&) = delete;
  DeploymentManager& operator=(const DeploymentManager&) = delete;

  // Rules, checked in this order, each refusal FAILED_PRECONDITION "rule <name>: <why>" and audited:
  // job_succeeded, deployment_ready (safety validation and a global map), manual_approval (weights need a
  // person: the approver is not one of Options::automatic_actors), ensemble_available (the job scored models),
  // level_authorized (SHADOW for shadow and for production, PRODUCTION too with weights), shadow_evidence
  // (production only: the current shadow version is this job's and has ShadowEvidenceRefusal's evidence;
  // skip_shadow waives it, is audited as an override, and is refused for an automatic actor).
  // Nothing reaches production with less evidence than shadow needs.
  // A missing job is the JobSource's status (NOT_FOUND); a malformed request INVALID_ARGUMENT naming the field.
  absl::StatusOr<clm::v1::DeploymentVersion> Approve(const clm::v1::ApproveRequest& request);
  // Rules: is_shadow (the version is the current shadow one), level_authorized (SHADOW), shadow_evidence.
  absl::StatusOr<clm::v1::DeploymentVersion> Promote(const clm::v1::PromoteRequest& request);
  absl::StatusOr<clm::v1::ActiveCalibration> Rollback(const clm::v1::RollbackRequest& request);

  clm::v1::ActiveCalibration Active() const;
  clm::v1::ListDeploymentsResponse List() const;
  // As List(); with request.production_at set, also the version in production at that instant.
  clm::v1::ListDeploymentsResponse List(const clm::v1::ListDeploymentsRequest& request) const;
  // The version in production at `at` (0: identity), from the stage histories.
  uint64_t ProductionVersionAt(absl::Time at) const;
  absl::StatusOr<clm::v1::GetAuditResponse> Audit(uint32_t limit, uint64_t before_id);
  absl::StatusOr<clm::v1::CalibrateResponse> Calibrate(const clm::v1::CalibrateRequest& request) const;

  // Scores newly stored trades by the raw confidence and the production and shadow calibrations, updates
  // the live KPIs, and schedules the automatic rollback when production does worse than raw by more than
  // the margin. Short lock, no I/O: safe on the ingest writer's thread.
  void OnTradesCommitted(const std::vector<LiveTrade>& trades);
  // Rebuilds the live KPIs of the production and shadow versions from the trades stored since each was
  // deployed (pairs of store sequence number and trade, in sequence order), as after a restart.
  void ReplayLive(const std::vector<std::pair<int64_t, LiveTrade>>& trades);
  // The smallest live_from_seq of the deployed versions (what ReplayLive needs), or nothing when none is.
  std::optional<int64_t> ReplayFrom() const;

  // Whether a calibration is deployed (production or shadow), so callers can skip building LiveTrades.
  bool measuring() const { return measuring_.load(std::memory_order_relaxed); }
  // The live KPIs of a version (zero when it was never deployed).
  clm::v1::LiveKpis Kpis(uint64_t version) const;

  // `current` is the active calibration at registration, so a watcher sends it first and misses nothing.
  struct Subscription {
    uint64_t id = 0;
    clm::v1::ActiveCalibration current;
  };
  Subscription Subscribe(ActiveCallback callback);
  // After it returns the callback is not running and never runs again.
  void Unsubscribe(uint64_t id);

  struct Counters {
    uint64_t approvals = 0;
    uint64_t promotions = 0;
    uint64_t rollbacks = 0;       // by a person
    uint64_t auto_rollbacks = 0;  // by the live-MSE check
    uint64_t skip_shadow_approvals = 0;  // approvals into production without shadow evidence (overrides)
    std::map<std::string, uint64_t> refused_by_rule;
    // From a rollback's request (for an automatic one: from detecting the regression) until subscribers
    // were told and the JSON file was written. Count: rollbacks + auto_rollbacks.
    double last_rollback_delivery_seconds = 0.0;
    double rollback_delivery_seconds_sum = 0.0;
  };
  Counters counters() const;

 private:
  struct Compiled;
  struct Live {
    uint64_t trades = 0, shadow_trades = 0, seen = 0, wins = 0;
    double sq_raw = 0, sq_production = 0, sq_shadow = 0, pnl = 0, peak = 0, max_drawdown = 0;
    bool auto_rollback_scheduled = false;
  };

  DeploymentManager(DeploymentStore* store, JobSource* jobs, LevelSource* levels, const Options& options);
  absl::Status Refuse(clm::v1::AuditEntry audit, const std::string& rule, const std::string& why);
  bool IsAutomatic(const std::string& actor) const;
  absl::StatusOr<clm::v1::ActiveCalibration> DoRollback(const clm::v1::RollbackRequest& request,
                                                        clm::v1::AuditEntry::Action action, absl::Time requested);
  void AutoRollback(uint64_t version, const std::string& why, absl::Time detected);
  int64_t NowNs();
  // The inputs of the rules (rules.h): the shadow slot now, and the settings for this approver.
  ShadowState Shadow() const ABSL_LOCKS_EXCLUDED(mu_);
  RuleSettings Settings(const std::string& approver) const;
  clm::v1::LiveKpis KpisLocked(uint64_t version) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  static void Score(Live& live, const LiveTrade& trade, const Compiled* production, const Compiled* shadow);
  // Stores the change; on success applies it in memory, tells subscribers and writes the file.
  absl::Status Apply(std::vector<clm::v1::DeploymentVersion> changed, uint64_t production, uint64_t shadow,
                     clm::v1::AuditEntry audit, int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(change_mu_);
  clm::v1::ActiveCalibration ActiveLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status Recompile() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteActiveFile(const clm::v1::ActiveCalibration& active);

  DeploymentStore* const store_;
  JobSource* const jobs_;
  LevelSource* const levels_;
  const Options options_;

  // Serializes changes (held across store I/O, never on a non-blocking path).
  absl::Mutex change_mu_;
  // The state readers see; held only for copies.
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(change_mu_);
  std::map<uint64_t, clm::v1::DeploymentVersion> versions_ ABSL_GUARDED_BY(mu_);
  uint64_t production_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t shadow_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t changed_at_ns_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<const Compiled> production_compiled_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const Compiled> shadow_compiled_ ABSL_GUARDED_BY(mu_);
  Counters counters_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Live> live_ ABSL_GUARDED_BY(mu_);  // per version, since it entered its current stage
  std::atomic<bool> measuring_{false};

  absl::Mutex subs_mu_ ABSL_ACQUIRED_AFTER(change_mu_);
  std::map<uint64_t, ActiveCallback> subscribers_ ABSL_GUARDED_BY(subs_mu_);
  uint64_t next_subscriber_ ABSL_GUARDED_BY(subs_mu_) = 1;
};

}  // namespace clm::deployment

#endif  // CLM_LIB_DEPLOYMENT_DEPLOYMENT_MANAGER_H_
