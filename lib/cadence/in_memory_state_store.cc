#include "lib/cadence/in_memory_state_store.h"

#include <algorithm>

namespace clm::cadence {
namespace {

template <typename T>
std::vector<T> NewestFirst(const std::vector<T>& oldest_first, size_t limit) {
  std::vector<T> out;
  const size_t n = std::min(limit, oldest_first.size());
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(oldest_first[oldest_first.size() - 1 - i]);
  return out;
}

}  // namespace

absl::Status InMemoryCadenceStateStore::AppendModeChange(const clm::v1::ModeChange& change) {
  absl::MutexLock lock(&mu_);
  mode_changes_.push_back(change);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<clm::v1::ModeChange>> InMemoryCadenceStateStore::LoadModeChanges(size_t limit) {
  absl::MutexLock lock(&mu_);
  return NewestFirst(mode_changes_, limit);
}

absl::Status InMemoryCadenceStateStore::AppendDecision(const clm::v1::MonitorDecision& decision) {
  absl::MutexLock lock(&mu_);
  decisions_.push_back(decision);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<clm::v1::MonitorDecision>> InMemoryCadenceStateStore::LoadDecisions(size_t limit) {
  absl::MutexLock lock(&mu_);
  return NewestFirst(decisions_, limit);
}

absl::Status InMemoryCadenceStateStore::SavePendingJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  pending_job_ = job_id;
  return absl::OkStatus();
}

absl::StatusOr<std::string> InMemoryCadenceStateStore::LoadPendingJob() {
  absl::MutexLock lock(&mu_);
  return pending_job_;
}

}  // namespace clm::cadence
