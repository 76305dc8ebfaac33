#ifndef CLM_LIB_STORE_DATA_DIR_LOCK_H_
#define CLM_LIB_STORE_DATA_DIR_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace clm::store {

// An exclusive advisory lock (flock) on `<data_dir>/LOCK`, held for the life of the object. A second server
// on the same data directory fails to take it and must refuse to start. The kernel drops the lock when the
// process dies, so a crash never leaves a stale lock behind.
class DataDirLock final {
 public:
  // Creates the directory when missing. FAILED_PRECONDITION when another process holds the lock.
  static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(const std::string& data_dir);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace clm::store

#endif  // CLM_LIB_STORE_DATA_DIR_LOCK_H_
