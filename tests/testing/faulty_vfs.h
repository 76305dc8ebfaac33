#ifndef CLM_TESTS_TESTING_FAULTY_VFS_H_
#define CLM_TESTS_TESTING_FAULTY_VFS_H_

#include <string>

namespace clm::testing {

// An SQLite VFS that wraps the default one and, on demand, fails what a dying or full disk fails: with
// kDiskFull every write returns SQLITE_FULL; with kIoError every write, truncate and fsync returns
// SQLITE_IOERR_*. Reads, locks and the shared-memory index keep working, as they do on a real full disk.
// A store opened with StoreOptions::vfs = FaultyVfs::Name() goes through it; the fault applies to every file
// of every connection on it.
class FaultyVfs final {
 public:
  enum class Fault { kNone, kDiskFull, kIoError };

  // Registers the VFS (not as the default) on first use. Thread-safe.
  static const char* Name();
  static void Set(Fault fault);
  // Writes, truncates and fsyncs failed since the process started.
  static int FailedCalls();
};

}  // namespace clm::testing

#endif  // CLM_TESTS_TESTING_FAULTY_VFS_H_
