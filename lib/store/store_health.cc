#include "lib/store/store_health.h"

#include <sys/statvfs.h>

#include <filesystem>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace clm::store {
namespace {

// Bytes an unprivileged process may still write on the filesystem that holds `path`; -1 when unknown.
int64_t FreeBytes(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  struct statvfs fs;
  if (statvfs(dir.empty() ? "." : dir.c_str(), &fs) != 0) return -1;
  return static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
}

}  // namespace

StoreHealth::StoreHealth(std::string path, Options options)
    : path_(std::move(path)), options_(std::move(options)), prober_([this] { ProbeLoop(); }) {}

StoreHealth::~StoreHealth() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  prober_.join();
}

void StoreHealth::SetObserver(Observer* observer) {
  absl::MutexLock lock(&mu_);
  observer_ = observer;
  if (observer_ != nullptr) {
    observer_->OnUsableChanged(usable_.load(),
                               usable_.load() ? absl::OkStatus() : absl::UnavailableError("the store is unusable"));
  }
}

absl::Status StoreHealth::last_probe() const {
  absl::MutexLock lock(&mu_);
  return last_probe_;
}

void StoreHealth::OnStorageFault(const absl::Status& status) {
  const StorageFault fault = StorageFaultOf(status);
  absl::MutexLock lock(&mu_);
  if (observer_ != nullptr) observer_->OnStorageFault(fault, status);
  last_fault_disk_full_ = fault == StorageFault::kDiskFull;
  if (usable_.load()) probe_requested_ = true;  // while unusable the prober is already at it
}

void StoreHealth::OnCommitted() {
  commits_.fetch_add(1);
  if (usable_.load()) return;  // the common case: no lock on the commit path
  absl::MutexLock lock(&mu_);
  SetUsableLocked(true, absl::OkStatus());
}

void StoreHealth::SetUsableLocked(bool usable, const absl::Status& cause) {
  if (usable_.load() == usable) return;
  usable_.store(usable);
  if (observer_ != nullptr) observer_->OnUsableChanged(usable, cause);
}

absl::Status StoreHealth::Probe() const {
  Database::Options options;
  options.vfs = options_.vfs;
  options.busy_timeout_ms = options_.probe_busy_timeout_ms;
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path_, options);
  if (!db.ok()) return db.status();
  const int64_t now_ns = absl::ToUnixNanos(absl::Now());
  {
    absl::StatusOr<Transaction> txn = Transaction::Begin(**db);
    if (!txn.ok()) return txn.status();
    absl::StatusOr<Statement> write = (*db)->Prepare(
        "INSERT INTO store_probe(id, probed_at_ns) VALUES(1, ?) "
        "ON CONFLICT(id) DO UPDATE SET probed_at_ns = excluded.probed_at_ns");
    if (!write.ok()) return write.status();
    write->BindInt(1, now_ns);
    if (absl::Status s = write->Run(); !s.ok()) return s;
    if (absl::Status s = txn->Commit(); !s.ok()) return s;
  }
  absl::StatusOr<Statement> read = (*db)->Prepare("SELECT probed_at_ns FROM store_probe WHERE id = 1");
  if (!read.ok()) return read.status();
  absl::StatusOr<bool> row = read->Step();
  if (!row.ok()) return row.status();
  if (!*row || read->ColumnInt(0) != now_ns) {
    return absl::DataLossError(absl::StrCat("the store ", path_, " did not read back the probe row it just wrote"));
  }
  return absl::OkStatus();
}

void StoreHealth::ProbeLoop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    if (usable_.load()) {
      mu_.Await(absl::Condition(
          +[](StoreHealth* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stop_ || self->probe_requested_;
          },
          this));
    } else {
      mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.probe_interval);
    }
    if (stop_) return;
    probe_requested_ = false;
    const bool need_room = last_fault_disk_full_;
    const uint64_t commits_before = commits_.load();
    mu_.Unlock();
    absl::Status probed = Probe();
    if (probed.ok() && need_room) {
      const int64_t free_bytes = FreeBytes(path_);
      if (free_bytes >= 0 && free_bytes < options_.min_free_bytes) {
        probed = absl::ResourceExhaustedError(
            absl::StrCat("the store ", path_, " has ", free_bytes, " bytes free on its filesystem, needs at least ",
                         options_.min_free_bytes, " after running out of disk space"));
      }
    }
    mu_.Lock();
    last_probe_ = probed;
    if (probed.ok()) {
      last_fault_disk_full_ = false;
      SetUsableLocked(true, absl::OkStatus());
    } else if (commits_.load() == commits_before) {
      SetUsableLocked(false, probed);
    }
  }
}

}  // namespace clm::store
