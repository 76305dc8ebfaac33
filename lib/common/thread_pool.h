#ifndef CLM_LIB_COMMON_THREAD_POOL_H_
#define CLM_LIB_COMMON_THREAD_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace clm {

// A fixed set of threads running queued tasks in FIFO order, with a bounded queue. It exists so that gRPC's
// callback threads never block: handlers hand work that touches storage to a pool and return.
class ThreadPool final {
 public:
  ThreadPool(std::string name, size_t threads, size_t max_queue);
  ~ThreadPool();  // runs what is queued, then joins
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // RESOURCE_EXHAUSTED when the queue is full, UNAVAILABLE after Stop(); the task is not run then.
  absl::Status Schedule(std::function<void()> task);

  // Refuses new tasks, runs the queued ones, joins the threads. Idempotent.
  void Stop();

  size_t QueueDepth() const;

 private:
  void Run();

  const std::string name_;
  const size_t max_queue_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace clm

#endif  // CLM_LIB_COMMON_THREAD_POOL_H_
