#ifndef CLM_TESTS_CADENCE_FAKES_H_
#define CLM_TESTS_CADENCE_FAKES_H_

// Test doubles for the cadence monitor's dependencies.

#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "lib/cadence/interfaces.h"

namespace clm::cadence::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time now) : now_(now) {}
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_;
};

// Serves a settable snapshot and remembers the scopes it was asked for.
class FakeSource final : public SnapshotSource {
 public:
  absl::StatusOr<SourceSnapshot> Load(const Scope& scope) override {
    absl::MutexLock lock(&mu_);
    scopes_.push_back(scope);
    if (!error_.ok()) return error_;
    return snapshot_;
  }
  void Set(SourceSnapshot snapshot) {
    absl::MutexLock lock(&mu_);
    snapshot_ = std::move(snapshot);
  }
  void Fail(absl::Status error) {
    absl::MutexLock lock(&mu_);
    error_ = std::move(error);
  }
  std::vector<Scope> scopes() {
    absl::MutexLock lock(&mu_);
    return scopes_;
  }

 private:
  absl::Mutex mu_;
  SourceSnapshot snapshot_;
  absl::Status error_;
  std::vector<Scope> scopes_;
};

// Hands out "job-1", "job-2", ...; job states and failures are set by the test.
class FakeLauncher final : public JobLauncher {
 public:
  absl::StatusOr<std::string> SubmitCalibration(const std::string& reason) override {
    absl::MutexLock lock(&mu_);
    if (!submit_error_.ok()) return submit_error_;
    submit_reasons_.push_back(reason);
    std::string id = absl::StrCat("job-", submit_reasons_.size());
    jobs_[id] = JobStatus{JobStatus::State::kQueued, false, ""};
    return id;
  }
  absl::StatusOr<JobStatus> GetJobStatus(const std::string& job_id) override {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job ", job_id));
    return it->second;
  }
  absl::Status ApproveIntoShadow(const std::string& job_id, const std::string& reason) override {
    absl::MutexLock lock(&mu_);
    if (!approve_error_.ok()) return approve_error_;
    approvals_.push_back(job_id);
    return absl::OkStatus();
  }

  void SetJob(const std::string& id, JobStatus status) {
    absl::MutexLock lock(&mu_);
    jobs_[id] = std::move(status);
  }
  void FailSubmit(absl::Status s) {
    absl::MutexLock lock(&mu_);
    submit_error_ = std::move(s);
  }
  void FailApprove(absl::Status s) {
    absl::MutexLock lock(&mu_);
    approve_error_ = std::move(s);
  }
  std::vector<std::string> submit_reasons() {
    absl::MutexLock lock(&mu_);
    return submit_reasons_;
  }
  std::vector<std::string> approvals() {
    absl::MutexLock lock(&mu_);
    return approvals_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, JobStatus> jobs_;
  std::vector<std::string> submit_reasons_;
  std::vector<std::string> approvals_;
  absl::Status submit_error_;
  absl::Status approve_error_;
};

// A CadenceStateStore in an append-only file, one record per line: "<kind> <base64 of the serialized
// proto>". Reopening the path is a restart: everything is read back from disk.
class FileCadenceStateStore final : public CadenceStateStore {
 public:
  explicit FileCadenceStateStore(std::string path) : path_(std::move(path)) {}

  absl::Status AppendModeChange(const clm::v1::ModeChange& change) override {
    return Append("mode", change.SerializeAsString());
  }
  absl::StatusOr<std::vector<clm::v1::ModeChange>> LoadModeChanges(size_t limit) override {
    return LoadAll<clm::v1::ModeChange>("mode", limit);
  }
  absl::Status AppendDecision(const clm::v1::MonitorDecision& decision) override {
    return Append("decision", decision.SerializeAsString());
  }
  absl::StatusOr<std::vector<clm::v1::MonitorDecision>> LoadDecisions(size_t limit) override {
    return LoadAll<clm::v1::MonitorDecision>("decision", limit);
  }
  absl::Status SavePendingJob(const std::string& job_id) override { return Append("pending", job_id); }
  absl::StatusOr<std::string> LoadPendingJob() override {
    absl::StatusOr<std::vector<std::string>> all = Lines("pending");
    if (!all.ok()) return all.status();
    return all->empty() ? std::string() : all->back();
  }

 private:
  absl::Status Append(const std::string& kind, const std::string& bytes) {
    absl::MutexLock lock(&mu_);
    std::ofstream out(path_, std::ios::app | std::ios::binary);
    out << kind << ' ' << absl::Base64Escape(bytes) << '\n';
    out.flush();
    return out ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path_));
  }

  // Payloads of `kind`, oldest first.
  absl::StatusOr<std::vector<std::string>> Lines(const std::string& kind) {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    std::ifstream in(path_, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(' ', 1));
      if (parts.size() != 2) return absl::DataLossError(absl::StrCat("bad line in ", path_));
      if (parts[0] != kind) continue;
      std::string bytes;
      if (!absl::Base64Unescape(parts[1], &bytes)) return absl::DataLossError("bad base64");
      out.push_back(std::move(bytes));
    }
    return out;
  }

  template <typename Message>
  absl::StatusOr<std::vector<Message>> LoadAll(const std::string& kind, size_t limit) {
    absl::StatusOr<std::vector<std::string>> lines = Lines(kind);
    if (!lines.ok()) return lines.status();
    std::vector<Message> out;
    for (auto it = lines->rbegin(); it != lines->rend() && out.size() < limit; ++it) {
      Message m;
      if (!m.ParseFromString(*it)) return absl::DataLossError("bad record");
      out.push_back(std::move(m));
    }
    return out;
  }

  absl::Mutex mu_;
  const std::string path_;
};

// Wraps a store and fails writes on demand, to show the monitor does not change state it could not
// persist.
class FailingStateStore final : public CadenceStateStore {
 public:
  explicit FailingStateStore(CadenceStateStore* inner) : inner_(inner) {}
  void FailWrites(bool fail) { fail_writes_ = fail; }

  absl::Status AppendModeChange(const clm::v1::ModeChange& change) override {
    if (fail_writes_) return absl::UnavailableError("disk full");
    return inner_->AppendModeChange(change);
  }
  absl::StatusOr<std::vector<clm::v1::ModeChange>> LoadModeChanges(size_t limit) override {
    return inner_->LoadModeChanges(limit);
  }
  absl::Status AppendDecision(const clm::v1::MonitorDecision& decision) override {
    if (fail_writes_) return absl::UnavailableError("disk full");
    return inner_->AppendDecision(decision);
  }
  absl::StatusOr<std::vector<clm::v1::MonitorDecision>> LoadDecisions(size_t limit) override {
    return inner_->LoadDecisions(limit);
  }
  absl::Status SavePendingJob(const std::string& job_id) override {
    if (fail_writes_) return absl::UnavailableError("disk full");
    return inner_->SavePendingJob(job_id);
  }
  absl::StatusOr<std::string> LoadPendingJob() override { return inner_->LoadPendingJob(); }

 private:
  CadenceStateStore* inner_;
  bool fail_writes_ = false;
};

}  // namespace clm::cadence::testing

#endif  // CLM_TESTS_CADENCE_FAKES_H_
