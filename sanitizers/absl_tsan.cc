// ThreadSanitizer only sees code compiled with -fsanitize=thread. Debian's Abseil is not, so the lock and
// unlock inside libabsl_synchronization are invisible to it: every absl::Mutex looks like no lock at all
// and every guarded member that one thread writes and another reads is reported as a data race.
//
// Linked into every executable of a CLM_SANITIZE=thread build, the definitions below take the place of
// Abseil's out-of-line synchronization functions (the executable comes first in the dynamic linker's
// lookup, so gRPC's and Abseil's own calls through the PLT land here too). Each one calls the real function
// and tells TSan about the happens-before edge the primitive creates, the same edges Abseil's own TSan
// annotations describe when Abseil is built with TSan:
//   - unlocking (and waiting, which unlocks) releases the mutex; locking (and waking) acquires it;
//   - a Condition is evaluated as if the mutex were held, on whichever thread evaluates it: Abseil runs a
//     waiter's predicate inside another thread's Unlock;
//   - Notify releases the Notification, a wait that returns acquires it (its fast path reads an atomic
//     inside the library); BlockingCounter and Barrier likewise.
// Only happens-before is modelled (__tsan_acquire/__tsan_release), not lock ownership: TSan's lock-order
// (deadlock) detector does not see absl::Mutex.
#include <sanitizer/tsan_interface.h>

#include "absl/synchronization/barrier.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "sanitizers/interpose.h"

using clm::sanitizers::Real;

namespace {

// The mutex whose operation this thread is inside: a Condition evaluated meanwhile belongs to it.
thread_local absl::Mutex* current_mutex = nullptr;

class InMutexOp {
 public:
  explicit InMutexOp(absl::Mutex* mu) : saved_(current_mutex) { current_mutex = mu; }
  ~InMutexOp() { current_mutex = saved_; }
  InMutexOp(const InMutexOp&) = delete;
  InMutexOp& operator=(const InMutexOp&) = delete;

 private:
  absl::Mutex* saved_;
};

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

// ---- Mutex ----

void Mutex::Lock() {
  static const auto real = Real(&Mutex::Lock);
  {
    InMutexOp op(this);
    (this->*real)();
  }
  __tsan_acquire(this);
}

void Mutex::ReaderLock() {
  static const auto real = Real(&Mutex::ReaderLock);
  {
    InMutexOp op(this);
    (this->*real)();
  }
  __tsan_acquire(this);
}

bool Mutex::TryLock() {
  static const auto real = Real(&Mutex::TryLock);
  const bool locked = (this->*real)();
  if (locked) __tsan_acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  static const auto real = Real(&Mutex::ReaderTryLock);
  const bool locked = (this->*real)();
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::Unlock() {
  static const auto real = Real(&Mutex::Unlock);
  __tsan_release(this);
  InMutexOp op(this);
  (this->*real)();
}

void Mutex::ReaderUnlock() {
  static const auto real = Real(&Mutex::ReaderUnlock);
  __tsan_release(this);
  InMutexOp op(this);
  (this->*real)();
}

void Mutex::LockWhen(const Condition& cond) {
  static const auto real = Real(&Mutex::LockWhen);
  {
    InMutexOp op(this);
    (this->*real)(cond);
  }
  __tsan_acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static const auto real = Real(&Mutex::ReaderLockWhen);
  {
    InMutexOp op(this);
    (this->*real)(cond);
  }
  __tsan_acquire(this);
}

// The ...With{Timeout,Deadline} forms hold the mutex on return whatever they return.
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real(&Mutex::LockWhenWithTimeout);
  bool met;
  {
    InMutexOp op(this);
    met = (this->*real)(cond, timeout);
  }
  __tsan_acquire(this);
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real(&Mutex::LockWhenWithDeadline);
  bool met;
  {
    InMutexOp op(this);
    met = (this->*real)(cond, deadline);
  }
  __tsan_acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real(&Mutex::ReaderLockWhenWithTimeout);
  bool met;
  {
    InMutexOp op(this);
    met = (this->*real)(cond, timeout);
  }
  __tsan_acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real(&Mutex::ReaderLockWhenWithDeadline);
  bool met;
  {
    InMutexOp op(this);
    met = (this->*real)(cond, deadline);
  }
  __tsan_acquire(this);
  return met;
}

// Await* are called with the mutex held, may release it while waiting, and hold it again on return.
void Mutex::Await(const Condition& cond) {
  static const auto real = Real(&Mutex::Await);
  __tsan_release(this);
  {
    InMutexOp op(this);
    (this->*real)(cond);
  }
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real(&Mutex::AwaitWithTimeout);
  __tsan_release(this);
  bool met;
  {
    InMutexOp op(this);
    met = (this->*real)(cond, timeout);
  }
  __tsan_acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real(&Mutex::AwaitWithDeadline);
  __tsan_release(this);
  bool met;
  {
    InMutexOp op(this);
    met = (this->*real)(cond, deadline);
  }
  __tsan_acquire(this);
  return met;
}

// Runs inside a lock, unlock or wait of `current_mutex` (on this thread or, for another thread's waiter,
// inside this thread's Unlock), where Abseil holds the mutex for the predicate.
bool Condition::Eval() const {
  static const auto real = Real(&Condition::Eval);
  Mutex* const mu = current_mutex;
  if (mu != nullptr) __tsan_acquire(mu);
  const bool result = (this->*real)();
  if (mu != nullptr) __tsan_release(mu);
  return result;
}

// ---- CondVar: called with `mu` held, releases it while waiting, holds it again on return ----

void CondVar::Wait(Mutex* mu) {
  static const auto real = Real(&CondVar::Wait);
  __tsan_release(mu);
  {
    InMutexOp op(mu);
    (this->*real)(mu);
  }
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static const auto real = Real(&CondVar::WaitWithTimeout);
  __tsan_release(mu);
  bool timed_out;
  {
    InMutexOp op(mu);
    timed_out = (this->*real)(mu, timeout);
  }
  __tsan_acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static const auto real = Real(&CondVar::WaitWithDeadline);
  __tsan_release(mu);
  bool timed_out;
  {
    InMutexOp op(mu);
    timed_out = (this->*real)(mu, deadline);
  }
  __tsan_acquire(mu);
  return timed_out;
}

// ---- Notification, BlockingCounter, Barrier ----

void Notification::Notify() {
  static const auto real = Real(&Notification::Notify);
  __tsan_release(this);
  (this->*real)();
}

void Notification::WaitForNotification() const {
  static const auto real = Real(&Notification::WaitForNotification);
  (this->*real)();
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  static const auto real = Real(&Notification::WaitForNotificationWithTimeout);
  const bool notified = (this->*real)(timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  static const auto real = Real(&Notification::WaitForNotificationWithDeadline);
  const bool notified = (this->*real)(deadline);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool BlockingCounter::DecrementCount() {
  static const auto real = Real(&BlockingCounter::DecrementCount);
  __tsan_release(this);
  return (this->*real)();
}

void BlockingCounter::Wait() {
  static const auto real = Real(&BlockingCounter::Wait);
  (this->*real)();
  __tsan_acquire(this);
}

bool Barrier::Block() {
  static const auto real = Real(&Barrier::Block);
  __tsan_release(this);
  const bool last = (this->*real)();
  __tsan_acquire(this);
  return last;
}

ABSL_NAMESPACE_END
}  // namespace absl
