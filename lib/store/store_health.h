#ifndef CLM_LIB_STORE_STORE_HEALTH_H_
#define CLM_LIB_STORE_STORE_HEALTH_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lib/store/sqlite.h"

namespace clm::store {

// Whether the store can durably write and read back, judged from what its connections report and from a
// probe of its own.
//
// Contract:
// - A storage fault alone does not make the store unusable (one busy timeout, one failed fsync): the health
//   probes at once, on a fresh connection (rewrites the store_probe row, commits, reads it back), and only
//   when that fails too is the store unusable.
// - While unusable it probes every `probe_interval`. The first probe that succeeds, or the first write any
//   store connection commits, makes it usable again. After a disk-full fault a probe succeeds only when the
//   filesystem also has `min_free_bytes` free, so health does not flap while the disk is still full.
// - The observer hears every fault and every change, in order, one call at a time.
// Thread-safe. Pass it as StoreOptions::fault_listener to every store opened on the same file.
class StoreHealth final : public StoreFaultListener {
 public:
  class Observer {
   public:
    virtual ~Observer() = default;
    // Each storage fault a store connection reported. Runs on that connection's thread: must be quick.
    virtual void OnStorageFault(StorageFault fault, const absl::Status& status) = 0;
    // Usability changed; also called once from SetObserver with the current state. `cause` is why the store
    // is unusable (the probe's error), OK when usable.
    virtual void OnUsableChanged(bool usable, const absl::Status& cause) = 0;
  };

  struct Options {
    absl::Duration probe_interval = absl::Seconds(1);  // while unusable
    int64_t min_free_bytes = int64_t{16} << 20;        // needed to recover from a disk-full fault
    std::string vfs;                                    // as the stores', see StoreOptions
    int probe_busy_timeout_ms = 2000;                   // a probe waits this long for the write lock
  };

  // `path` is the database file the stores open.
  StoreHealth(std::string path, Options options);
  ~StoreHealth() override;
  StoreHealth(const StoreHealth&) = delete;
  StoreHealth& operator=(const StoreHealth&) = delete;

  // `observer` must outlive this object, or be replaced by nullptr first.
  void SetObserver(Observer* observer);
  bool usable() const { return usable_.load(); }
  // The outcome of the latest background probe (OK before the first): why the store is still unusable.
  absl::Status last_probe() const;

  // One probe on the caller's thread; changes nothing.
  absl::Status Probe() const;

  void OnStorageFault(const absl::Status& status) override;
  void OnCommitted() override;

 private:
  void ProbeLoop();
  // Calls the observer when the state changes.
  void SetUsableLocked(bool usable, const absl::Status& cause) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const Options options_;
  std::atomic<bool> usable_{true};
  std::atomic<uint64_t> commits_{0};  // lets a commit that succeeded during a failing probe win

  mutable absl::Mutex mu_;
  Observer* observer_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool probe_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool last_fault_disk_full_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status last_probe_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread prober_;
};

}  // namespace clm::store

#endif  // CLM_LIB_STORE_STORE_HEALTH_H_
