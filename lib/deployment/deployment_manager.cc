#include "lib/deployment/deployment_manager.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "lib/calibration/calibrator.h"
#include "lib/deployment/rules.h"
#include "spdlog/spdlog.h"

namespace clm::deployment {
namespace {

using clm::v1::ActiveCalibration;
using clm::v1::AuditEntry;
using clm::v1::DeploymentStage;
using clm::v1::DeploymentVersion;

constexpr size_t kMaxNameBytes = 128;
constexpr size_t kMaxReasonBytes = 1024;

google::protobuf::Timestamp ToTimestamp(int64_t ns) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(ns);
}

absl::Status CheckActor(const std::string& approver, const std::string& reason) {
  if (approver.empty()) return absl::InvalidArgumentError("approver: is required");
  if (approver.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("approver: must be at most ", kMaxNameBytes, " bytes"));
  }
  if (reason.empty()) return absl::InvalidArgumentError("reason: is required");
  if (reason.size() > kMaxReasonBytes) {
    return absl::InvalidArgumentError(absl::StrCat("reason: must be at most ", kMaxReasonBytes, " bytes"));
  }
  return absl::OkStatus();
}

void ChangeStage(DeploymentVersion& version, DeploymentStage stage, int64_t at_ns, const std::string& by,
                 const std::string& reason) {
  version.set_stage(stage);
  clm::v1::StageChange* change = version.add_history();
  *change->mutable_at() = ToTimestamp(at_ns);
  change->set_stage(stage);
  change->set_by(by);
  change->set_reason(reason);
}

bool WasProduction(const DeploymentVersion& version) {
  for (const auto& change : version.history()) {
    if (change.stage() == clm::v1::STAGE_PRODUCTION) return true;
  }
  return false;
}

// Writes `text` to `path` so that a reader sees the old or the new document, whole, even across a crash.
absl::Status WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(tmp, ": ", std::strerror(errno)));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::UnavailableError(absl::StrCat(tmp, ": ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    ::unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat(tmp, ": fsync or close failed"));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(error)));
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
}

}  // namespace

// A version's maps, compiled for nanosecond application.
struct DeploymentManager::Compiled {
  uint64_t version = 0;
  calibration::SlicedCalibrator maps;

  static absl::StatusOr<std::shared_ptr<const Compiled>> Of(const DeploymentVersion& v) {
    absl::StatusOr<calibration::SlicedCalibrator> maps =
        calibration::SlicedCalibrator::Create(v.map(), v.symbol_maps(), v.model_maps());
    if (!maps.ok()) return maps.status();
    return std::make_shared<const Compiled>(Compiled{v.version(), *std::move(maps)});
  }

  double Apply(double confidence, const std::string& symbol, const std::string& model) const {
    return maps.For(symbol, model).Apply(confidence);
  }
};

absl::StatusOr<std::unique_ptr<DeploymentManager>> DeploymentManager::Create(DeploymentStore* store,
                                                                            JobSource* jobs, LevelSource* levels,
                                                                            const Options& options) {
  std::unique_ptr<DeploymentManager> manager(new DeploymentManager(store, jobs, levels, options));
  absl::StatusOr<StoredState> state = store->Load();
  if (!state.ok()) return state.status();
  ActiveCalibration active;
  {
    absl::MutexLock lock(&manager->mu_);
    for (DeploymentVersion& v : state->versions) manager->versions_[v.version()] = std::move(v);
    manager->production_ = state->production;
    manager->shadow_ = state->shadow;
    manager->sequence_ = state->sequence;
    manager->changed_at_ns_ = state->changed_at_ns;
    absl::Status compiled = manager->Recompile();
    if (!compiled.ok()) return compiled;
    manager->measuring_.store(manager->production_ != 0 || manager->shadow_ != 0);
    active = manager->ActiveLocked();
  }
  // The file follows the store: after a crash between a commit and its file write, the start repairs it.
  manager->WriteActiveFile(active);
  return manager;
}

DeploymentManager::DeploymentManager(DeploymentStore* store, JobSource* jobs, LevelSource* levels,
                                     const Options& options)
    : store_(store), jobs_(jobs), levels_(levels), options_(options) {}

DeploymentManager::~DeploymentManager() = default;

absl::Status DeploymentManager::Recompile() {
  production_compiled_.reset();
  shadow_compiled_.reset();
  for (auto [id, slot] : {std::pair{production_, &production_compiled_}, std::pair{shadow_, &shadow_compiled_}}) {
    if (id == 0) continue;
    auto it = versions_.find(id);
    if (it == versions_.end()) return absl::DataLossError(absl::StrCat("deployment version ", id, " is missing"));
    absl::StatusOr<std::shared_ptr<const Compiled>> compiled = Compiled::Of(it->second);
    if (!compiled.ok()) return compiled.status();
    *slot = std::move(*compiled);
  }
  return absl::OkStatus();
}

ActiveCalibration DeploymentManager::ActiveLocked() const {
  ActiveCalibration active;
  active.set_sequence(sequence_);
  active.set_production_version(production_);
  active.set_shadow_version(shadow_);
  *active.mutable_changed_at() = ToTimestamp(changed_at_ns_);
  if (production_ != 0) {
    const DeploymentVersion& p = versions_.at(production_);
    *active.mutable_production_map() = p.map();
    *active.mutable_symbol_maps() = p.symbol_maps();
    *active.mutable_model_maps() = p.model_maps();
    *active.mutable_ensemble_weights() = p.ensemble_weights();
  }
  if (shadow_ != 0) *active.mutable_shadow_map() = versions_.at(shadow_).map();
  return active;
}

absl::Status DeploymentManager::Refuse(AuditEntry audit, const std::string& rule, const std::string& why) {
  audit.set_ok(false);
  audit.set_rule(rule);
  audit.set_reason(absl::StrCat(why, " (reason given: ", audit.reason(), ")"));
  *audit.mutable_at() = ToTimestamp(NowNs());
  absl::Status stored = store_->AppendAudit(audit);
  if (!stored.ok()) spdlog::warn("deployment: could not audit a refusal: {}", stored.ToString());
  {
    absl::MutexLock lock(&mu_);
    ++counters_.refused_by_rule[rule];
  }
  return absl::FailedPreconditionError(absl::StrCat("rule ", rule, ": ", why));
}

int64_t DeploymentManager::NowNs() {
  return absl::ToUnixNanos(options_.clock != nullptr ? options_.clock->Now() : absl::Now());
}

bool DeploymentManager::IsAutomatic(const std::string& actor) const {
  return std::find(options_.automatic_actors.begin(), options_.automatic_actors.end(), actor) !=
         options_.automatic_actors.end();
}

ShadowState DeploymentManager::Shadow() const {
  absl::MutexLock lock(&mu_);
  ShadowState state;
  state.version = shadow_;
  if (shadow_ != 0) {
    state.job_id = versions_.at(shadow_).job_id();
    state.live = KpisLocked(shadow_);
  }
  return state;
}

RuleSettings DeploymentManager::Settings(const std::string& approver) const {
  RuleSettings settings;
  settings.min_shadow_trades = options_.min_shadow_trades;
  settings.margin = options_.auto_rollback_margin;
  settings.approver_is_automatic = IsAutomatic(approver);
  return settings;
}

absl::Status DeploymentManager::Apply(std::vector<DeploymentVersion> changed, uint64_t production,
                                      uint64_t shadow, AuditEntry audit, int64_t now_ns) {
  uint64_t sequence;
  {
    absl::MutexLock lock(&mu_);
    sequence = sequence_ + 1;
  }
  audit.set_ok(true);
  *audit.mutable_at() = ToTimestamp(now_ns);
  // Versions entering shadow or production measure the trades stored from now on.
  if (options_.max_seq) {
    absl::StatusOr<int64_t> max_seq = options_.max_seq();
    if (!max_seq.ok()) return max_seq.status();
    for (DeploymentVersion& v : changed) {
      if (v.stage() == clm::v1::STAGE_SHADOW || v.stage() == clm::v1::STAGE_PRODUCTION) {
        v.set_live_from_seq(static_cast<uint64_t>(*max_seq));
      }
    }
  }
  absl::Status stored = store_->Commit(changed, production, shadow, sequence, now_ns, audit);
  if (!stored.ok()) return stored;  // nothing changed, in the store or here

  ActiveCalibration active;
  absl::MutexLock subs_lock(&subs_mu_);  // held across the update so a new watcher misses nothing
  {
    absl::MutexLock lock(&mu_);
    for (DeploymentVersion& v : changed) {
      // Live figures are "since it was deployed": a version entering shadow or production starts afresh.
      if (v.stage() == clm::v1::STAGE_SHADOW || v.stage() == clm::v1::STAGE_PRODUCTION) live_[v.version()] = Live();
      versions_[v.version()] = std::move(v);
    }
    production_ = production;
    shadow_ = shadow;
    sequence_ = sequence;
    changed_at_ns_ = now_ns;
    absl::Status compiled = Recompile();
    if (!compiled.ok()) spdlog::error("deployment: {}", compiled.ToString());
    measuring_.store(production_ != 0 || shadow_ != 0);
    switch (audit.action()) {
      case AuditEntry::APPROVE:
        ++counters_.approvals;
        if (audit.skip_shadow()) ++counters_.skip_shadow_approvals;
        break;
      case AuditEntry::PROMOTE: ++counters_.promotions; break;
      case AuditEntry::AUTO_ROLLBACK: ++counters_.auto_rollbacks; break;
      default: ++counters_.rollbacks; break;
    }
    active = ActiveLocked();
  }
  spdlog::info("deployment: {} by {}: production v{}, shadow v{} ({})", AuditEntry::Action_Name(audit.action()),
               audit.actor(), production, shadow, audit.reason());
  for (auto& [id, callback] : subscribers_) callback(active);
  WriteActiveFile(active);
  return absl::OkStatus();
}

absl::StatusOr<DeploymentVersion> DeploymentManager::Approve(const clm::v1::ApproveRequest& request) {
  if (absl::Status actor = CheckActor(request.approver(), request.reason()); !actor.ok()) return actor;
  if (request.job_id().empty()) return absl::InvalidArgumentError("job_id: is required");
  if (request.stage() != clm::v1::STAGE_SHADOW && request.stage() != clm::v1::STAGE_PRODUCTION) {
    return absl::InvalidArgumentError("stage: must be STAGE_SHADOW or STAGE_PRODUCTION");
  }
  if (request.include_ensemble_weights() && request.stage() != clm::v1::STAGE_PRODUCTION) {
    return absl::InvalidArgumentError("include_ensemble_weights: only with stage STAGE_PRODUCTION");
  }
  if (request.skip_shadow() && request.stage() != clm::v1::STAGE_PRODUCTION) {
    return absl::InvalidArgumentError("skip_shadow: only with stage STAGE_PRODUCTION");
  }
  absl::MutexLock change(&change_mu_);
  AuditEntry audit;
  audit.set_action(AuditEntry::APPROVE);
  audit.set_actor(request.approver());
  audit.set_stage(request.stage());
  audit.set_job_id(request.job_id());
  audit.set_reason(request.reason());
  audit.set_skip_shadow(request.skip_shadow());
  {
    absl::MutexLock lock(&mu_);
    audit.set_from_version(production_);
  }

  absl::StatusOr<clm::v1::Job> job = jobs_->GetJob(request.job_id());
  if (!job.ok()) return job.status();
  absl::StatusOr<clm::v1::CadenceReport> report = levels_->CurrentReport();
  if (!report.ok()) return report.status();
  const Verdict verdict = CheckApproval(request, *job, *report, Shadow(), Settings(request.approver()));
  if (!verdict.allowed()) return Refuse(audit, verdict.rule, verdict.why);
  // The rules passed: a production approval without skip_shadow is of the job in shadow, whose shadow
  // version retires as it goes on into production.
  const bool retire_shadow = request.stage() == clm::v1::STAGE_PRODUCTION && !request.skip_shadow();
  const clm::v1::EnsembleCheck& ensemble = job->result().ensemble();
  const clm::v1::SafetyValidation& safety = job->result().safety();

  const int64_t now_ns = NowNs();

  std::vector<DeploymentVersion> changed;
  DeploymentVersion version;
  uint64_t production, shadow;
  {
    absl::MutexLock lock(&mu_);
    version.set_version(versions_.empty() ? 1 : versions_.rbegin()->first + 1);
    production = production_;
    shadow = shadow_;
    // The slot's previous occupant retires, and so does this job's shadow version when it goes on into
    // production.
    const uint64_t replaced = request.stage() == clm::v1::STAGE_SHADOW ? shadow_ : production_;
    for (uint64_t old_id : {replaced, retire_shadow ? shadow_ : uint64_t{0}}) {
      if (old_id == 0) continue;
      DeploymentVersion old = versions_.at(old_id);
      ChangeStage(old, clm::v1::STAGE_RETIRED, now_ns, request.approver(),
                  absl::StrCat("replaced by v", version.version()));
      changed.push_back(std::move(old));
    }
    if (retire_shadow) shadow = 0;
  }
  version.set_job_id(job->id());
  *version.mutable_map() = job->result().global_map();
  *version.mutable_symbol_maps() = job->result().symbol_maps();
  *version.mutable_model_maps() = job->result().model_maps();
  *version.mutable_evaluation() = job->result().evaluation();
  *version.mutable_safety() = safety;
  // The win rate of the fitted data (WIN / (WIN + LOSS)), whatever label neutrals were given.
  const uint64_t decided = job->result().wins() + job->result().losses();
  version.set_win_rate_before(decided == 0 ? 0.0
                                           : static_cast<double>(job->result().wins()) / static_cast<double>(decided));
  if (request.include_ensemble_weights()) {
    for (const auto& model : ensemble.models()) {
      (*version.mutable_ensemble_weights())[model.model()] = model.proposed_weight();
    }
  }
  version.set_approved_by(request.approver());
  version.set_reason(request.reason());
  *version.mutable_approved_at() = ToTimestamp(now_ns);
  ChangeStage(version, request.stage(), now_ns, request.approver(), request.reason());
  if (request.stage() == clm::v1::STAGE_SHADOW) {
    shadow = version.version();
  } else {
    production = version.version();
  }
  audit.set_to_version(version.version());
  changed.push_back(version);
  absl::Status applied = Apply(std::move(changed), production, shadow, audit, now_ns);
  if (!applied.ok()) return applied;
  return version;
}

absl::StatusOr<DeploymentVersion> DeploymentManager::Promote(const clm::v1::PromoteRequest& request) {
  if (absl::Status actor = CheckActor(request.approver(), request.reason()); !actor.ok()) return actor;
  absl::MutexLock change(&change_mu_);
  AuditEntry audit;
  audit.set_action(AuditEntry::PROMOTE);
  audit.set_actor(request.approver());
  audit.set_stage(clm::v1::STAGE_PRODUCTION);
  audit.set_reason(request.reason());
  audit.set_to_version(request.version());
  std::vector<DeploymentVersion> changed;
  DeploymentVersion promoted;
  {
    absl::MutexLock lock(&mu_);
    audit.set_from_version(production_);
  }
  absl::StatusOr<clm::v1::CadenceReport> report = levels_->CurrentReport();
  if (!report.ok()) return report.status();
  const Verdict verdict = CheckPromotion(request, *report, Shadow(), Settings(request.approver()));
  if (!verdict.allowed()) return Refuse(audit, verdict.rule, verdict.why);
  const int64_t now_ns = NowNs();
  {
    absl::MutexLock lock(&mu_);
    promoted = versions_.at(shadow_);
    audit.set_job_id(promoted.job_id());
    if (production_ != 0) {
      DeploymentVersion old = versions_.at(production_);
      ChangeStage(old, clm::v1::STAGE_RETIRED, now_ns, request.approver(),
                  absl::StrCat("replaced by v", promoted.version()));
      changed.push_back(std::move(old));
    }
  }
  ChangeStage(promoted, clm::v1::STAGE_PRODUCTION, now_ns, request.approver(), request.reason());
  changed.push_back(promoted);
  absl::Status applied = Apply(std::move(changed), promoted.version(), 0, audit, now_ns);
  if (!applied.ok()) return applied;
  return promoted;
}

absl::StatusOr<ActiveCalibration> DeploymentManager::Rollback(const clm::v1::RollbackRequest& request) {
  const absl::Time requested = absl::Now();
  if (absl::Status actor = CheckActor(request.approver(), request.reason()); !actor.ok()) return actor;
  if (request.approver() == kAutoRollbackActor) {
    return absl::InvalidArgumentError(
        absl::StrCat("approver: \"", kAutoRollbackActor, "\" is reserved for the automatic rollback"));
  }
  return DoRollback(request, AuditEntry::ROLLBACK, requested);
}

void DeploymentManager::AutoRollback(uint64_t version, const std::string& why, absl::Time detected) {
  {
    absl::MutexLock lock(&mu_);
    if (production_ != version) return;  // a person changed production meanwhile
  }
  clm::v1::RollbackRequest request;
  request.set_approver(kAutoRollbackActor);
  request.set_reason(why);
  absl::StatusOr<ActiveCalibration> active = DoRollback(request, AuditEntry::AUTO_ROLLBACK, detected);
  if (!active.ok()) spdlog::error("deployment: automatic rollback of v{} failed: {}", version, active.status().ToString());
}

absl::StatusOr<ActiveCalibration> DeploymentManager::DoRollback(const clm::v1::RollbackRequest& request,
                                                                AuditEntry::Action action,
                                                                absl::Time requested) {
  absl::MutexLock change(&change_mu_);
  const int64_t now_ns = NowNs();
  AuditEntry audit;
  audit.set_action(action);
  audit.set_actor(request.approver());
  audit.set_stage(clm::v1::STAGE_PRODUCTION);
  audit.set_reason(request.reason());
  std::vector<DeploymentVersion> changed;
  uint64_t target = 0;
  uint64_t shadow;
  std::string refusal;
  {
    absl::MutexLock lock(&mu_);
    audit.set_from_version(production_);
    shadow = shadow_;
    if (request.target_case() == clm::v1::RollbackRequest::kToVersion) {
      target = request.to_version();
      auto it = versions_.find(target);
      if (it == versions_.end()) {
        refusal = absl::StrCat("v", target, " does not exist");
      } else if (!WasProduction(it->second)) {
        refusal = absl::StrCat("v", target, " was never in production");
      } else if (target == production_) {
        refusal = absl::StrCat("v", target, " is already in production");
      }
    } else if (request.target_case() == clm::v1::RollbackRequest::kToIdentity) {
      if (production_ == 0) refusal = "no calibration is in production already";
    } else {
      if (production_ == 0) refusal = "no calibration is in production: nothing to roll back";
      for (auto it = versions_.rbegin(); it != versions_.rend() && refusal.empty(); ++it) {
        if (it->first < production_ && WasProduction(it->second)) {
          target = it->first;
          break;
        }
      }
    }
    if (!refusal.empty()) {
      audit.set_to_version(target);
    } else if (production_ != 0) {
      DeploymentVersion old = versions_.at(production_);
      ChangeStage(old, clm::v1::STAGE_RETIRED, now_ns, request.approver(),
                  absl::StrCat("rolled back: ", request.reason()));
      changed.push_back(std::move(old));
    }
    if (refusal.empty() && target != 0) {
      DeploymentVersion back = versions_.at(target);
      if (target == shadow_) shadow = 0;
      ChangeStage(back, clm::v1::STAGE_PRODUCTION, now_ns, request.approver(),
                  absl::StrCat("rollback: ", request.reason()));
      changed.push_back(std::move(back));
    }
  }
  if (!refusal.empty()) return Refuse(audit, "rollback_target", refusal);
  audit.set_to_version(target);
  absl::Status applied = Apply(std::move(changed), target, shadow, audit, now_ns);
  if (!applied.ok()) return applied;
  const double delivery_seconds = absl::ToDoubleSeconds(absl::Now() - requested);
  absl::MutexLock lock(&mu_);
  counters_.last_rollback_delivery_seconds = delivery_seconds;
  counters_.rollback_delivery_seconds_sum += delivery_seconds;
  return ActiveLocked();
}

ActiveCalibration DeploymentManager::Active() const {
  absl::MutexLock lock(&mu_);
  return ActiveLocked();
}

clm::v1::ListDeploymentsResponse DeploymentManager::List() const {
  clm::v1::ListDeploymentsResponse response;
  absl::MutexLock lock(&mu_);
  for (auto it = versions_.rbegin(); it != versions_.rend(); ++it) {
    clm::v1::DeploymentVersion* v = response.add_versions();
    *v = it->second;
    *v->mutable_live() = KpisLocked(it->first);
  }
  return response;
}

clm::v1::ListDeploymentsResponse DeploymentManager::List(const clm::v1::ListDeploymentsRequest& request) const {
  clm::v1::ListDeploymentsResponse response = List();
  if (request.has_production_at()) {
    response.set_production_version_at(ProductionVersionAt(
        absl::FromUnixNanos(google::protobuf::util::TimeUtil::TimestampToNanoseconds(request.production_at()))));
  }
  return response;
}

uint64_t DeploymentManager::ProductionVersionAt(absl::Time at) const {
  const int64_t at_ns = absl::ToUnixNanos(at);
  absl::MutexLock lock(&mu_);
  // A version's stage at `at` is that of its last change at or before `at`. Changes made together share
  // one instant, so the retired version and its successor never both read as production.
  uint64_t found = 0;
  int64_t entered_ns = INT64_MIN;
  for (const auto& [id, version] : versions_) {
    const clm::v1::StageChange* last = nullptr;
    for (const clm::v1::StageChange& change : version.history()) {
      if (google::protobuf::util::TimeUtil::TimestampToNanoseconds(change.at()) > at_ns) break;
      last = &change;
    }
    if (last == nullptr || last->stage() != clm::v1::STAGE_PRODUCTION) continue;
    const int64_t since = google::protobuf::util::TimeUtil::TimestampToNanoseconds(last->at());
    if (since >= entered_ns) {
      found = id;
      entered_ns = since;
    }
  }
  return found;
}

absl::StatusOr<clm::v1::GetAuditResponse> DeploymentManager::Audit(uint32_t limit, uint64_t before_id) {
  if (limit > 1000) return absl::InvalidArgumentError(absl::StrCat("limit: must be at most 1000, got ", limit));
  return store_->ListAudit(limit == 0 ? 100 : limit, before_id);
}

absl::StatusOr<clm::v1::CalibrateResponse> DeploymentManager::Calibrate(
    const clm::v1::CalibrateRequest& request) const {
  for (int i = 0; i < request.confidences_size(); ++i) {
    const double c = request.confidences(i);
    if (!std::isfinite(c) || c < 0.0 || c > 1.0) {
      return absl::InvalidArgumentError(absl::StrCat("confidences[", i, "]: must be within [0, 1], got ", c));
    }
  }
  std::shared_ptr<const Compiled> compiled;
  {
    absl::MutexLock lock(&mu_);
    compiled = request.shadow() ? shadow_compiled_ : production_compiled_;
  }
  clm::v1::CalibrateResponse response;
  response.mutable_calibrated()->Reserve(request.confidences_size());
  response.mutable_lower()->Reserve(request.confidences_size());
  response.mutable_upper()->Reserve(request.confidences_size());
  const calibration::Calibrator* calibrator =
      compiled ? &compiled->maps.For(request.symbol(), request.model_id()) : nullptr;
  for (double c : request.confidences()) {
    const calibration::Calibrated v = calibrator ? calibrator->ApplyWithBounds(c) : calibration::Calibrated{c, c, c};
    response.add_calibrated(v.probability);
    response.add_lower(v.lower);
    response.add_upper(v.upper);
  }
  response.set_version(compiled ? compiled->version : 0);
  return response;
}

clm::v1::LiveKpis DeploymentManager::Kpis(uint64_t version) const {
  absl::MutexLock lock(&mu_);
  return KpisLocked(version);
}

clm::v1::LiveKpis DeploymentManager::KpisLocked(uint64_t version) const {
  clm::v1::LiveKpis kpis;
  auto it = live_.find(version);
  if (it == live_.end()) return kpis;
  const Live& live = it->second;
  kpis.set_trades(live.trades);
  kpis.set_trades_seen(live.seen);
  kpis.set_shadow_trades(live.shadow_trades);
  if (live.trades > 0) {
    kpis.set_mse_raw(live.sq_raw / static_cast<double>(live.trades));
    kpis.set_mse_production(live.sq_production / static_cast<double>(live.trades));
    kpis.set_win_rate(static_cast<double>(live.wins) / static_cast<double>(live.trades));
  }
  if (live.shadow_trades > 0) kpis.set_mse_shadow(live.sq_shadow / static_cast<double>(live.shadow_trades));
  kpis.set_win_rate_before(versions_.at(version).win_rate_before());
  kpis.set_cumulative_pnl(live.pnl);
  kpis.set_max_drawdown(live.max_drawdown);
  return kpis;
}

void DeploymentManager::Score(Live& live, const LiveTrade& t, const Compiled* production, const Compiled* shadow) {
  ++live.seen;
  live.pnl += t.pnl;
  live.peak = std::max(live.peak, live.pnl);
  live.max_drawdown = std::max(live.max_drawdown, live.peak - live.pnl);
  if (t.outcome != clm::v1::TradeOutcome::WIN && t.outcome != clm::v1::TradeOutcome::LOSS) return;
  const double label = t.outcome == clm::v1::TradeOutcome::WIN ? 1.0 : 0.0;
  ++live.trades;
  if (label == 1.0) ++live.wins;
  live.sq_raw += (t.confidence - label) * (t.confidence - label);
  const double p = production != nullptr ? production->Apply(t.confidence, t.symbol, t.model_id) : t.confidence;
  live.sq_production += (p - label) * (p - label);
  if (shadow != nullptr) {
    const double s = shadow->Apply(t.confidence, t.symbol, t.model_id);
    live.sq_shadow += (s - label) * (s - label);
    ++live.shadow_trades;
  }
}

void DeploymentManager::ReplayLive(const std::vector<std::pair<int64_t, LiveTrade>>& trades) {
  absl::MutexLock lock(&mu_);
  const Compiled* production = production_compiled_.get();
  const Compiled* shadow = shadow_compiled_.get();
  for (uint64_t version : {production_, shadow_}) {
    if (version == 0) continue;
    Live& live = live_[version];
    live = Live();
    const int64_t from = static_cast<int64_t>(versions_.at(version).live_from_seq());
    for (const auto& [seq, t] : trades) {
      if (seq > from) Score(live, t, production, shadow);
    }
  }
}

std::optional<int64_t> DeploymentManager::ReplayFrom() const {
  absl::MutexLock lock(&mu_);
  std::optional<int64_t> from;
  for (uint64_t version : {production_, shadow_}) {
    if (version == 0) continue;
    const auto seq = static_cast<int64_t>(versions_.at(version).live_from_seq());
    from = from ? std::min(*from, seq) : seq;
  }
  return from;
}

void DeploymentManager::OnTradesCommitted(const std::vector<LiveTrade>& trades) {
  std::string rollback_why;
  uint64_t rollback_version = 0;
  {
    absl::MutexLock lock(&mu_);
    if (production_ == 0 && shadow_ == 0) return;
    const Compiled* production = production_compiled_.get();
    const Compiled* shadow = shadow_compiled_.get();
    for (uint64_t version : {production_, shadow_}) {
      if (version == 0) continue;
      Live& live = live_[version];
      for (const LiveTrade& t : trades) Score(live, t, production, shadow);
    }
    if (options_.auto_rollback && options_.run_async && production_ != 0) {
      Live& live = live_[production_];
      if (!live.auto_rollback_scheduled && live.trades >= options_.auto_rollback_min_trades) {
        const double mse_raw = live.sq_raw / static_cast<double>(live.trades);
        const double mse_production = live.sq_production / static_cast<double>(live.trades);
        if (mse_production - mse_raw > options_.auto_rollback_margin) {
          live.auto_rollback_scheduled = true;
          rollback_version = production_;
          rollback_why = absl::StrCat("live MSE of v", production_, " is ", mse_production, " against ", mse_raw,
                                      " for the raw confidence over ", live.trades, " trades (margin ",
                                      options_.auto_rollback_margin, ")");
        }
      }
    }
  }
  if (rollback_version != 0) {
    spdlog::warn("deployment: automatic rollback: {}", rollback_why);
    const absl::Time detected = absl::Now();
    options_.run_async([this, rollback_version, rollback_why, detected] {
      AutoRollback(rollback_version, rollback_why, detected);
    });
  }
}

DeploymentManager::Subscription DeploymentManager::Subscribe(ActiveCallback callback) {
  absl::MutexLock subs_lock(&subs_mu_);
  Subscription subscription;
  subscription.id = next_subscriber_++;
  subscription.current = Active();
  subscribers_[subscription.id] = std::move(callback);
  return subscription;
}

void DeploymentManager::Unsubscribe(uint64_t id) {
  absl::MutexLock lock(&subs_mu_);
  subscribers_.erase(id);
}

DeploymentManager::Counters DeploymentManager::counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

void DeploymentManager::WriteActiveFile(const ActiveCalibration& active) {
  if (options_.active_json_path.empty()) return;
  std::string json;
  google::protobuf::util::JsonPrintOptions print;
  print.add_whitespace = true;
  print.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(active, &json, print).ok()) return;
  absl::Status written = WriteAtomically(options_.active_json_path, json);
  if (!written.ok()) spdlog::error("deployment: active calibration file: {}", written.ToString());
}

}  // namespace clm::deployment
