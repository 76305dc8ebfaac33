#include "lib/common/thread_pool.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ThreadPoolTest, OneThreadRunsTasksInFifoOrder) {
  ThreadPool pool("fifo", 1, 100);
  absl::Notification gate;
  absl::Mutex mu;
  std::vector<int> order;
  // Hold the only thread so that every task below is queued before any runs.
  ASSERT_TRUE(pool.Schedule([&gate] { gate.WaitForNotification(); }).ok());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(pool.Schedule([&mu, &order, i] {
                      absl::MutexLock lock(&mu);
                      order.push_back(i);
                    })
                    .ok());
  }
  gate.Notify();
  pool.Stop();
  std::vector<int> expected(50);
  for (int i = 0; i < 50; ++i) expected[i] = i;
  EXPECT_EQ(order, expected);
}

TEST(ThreadPoolTest, FullQueueIsResourceExhaustedAndTheTaskIsNotRun) {
  ThreadPool pool("queries", 1, 2);
  absl::Notification started, gate;
  ASSERT_TRUE(pool.Schedule([&] {
                    started.Notify();
                    gate.WaitForNotification();
                  })
                  .ok());
  started.WaitForNotification();  // the running task no longer counts against the queue
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool.Schedule([&ran] { ++ran; }).ok());
  EXPECT_TRUE(pool.Schedule([&ran] { ++ran; }).ok());
  EXPECT_EQ(pool.QueueDepth(), 2u);
  absl::Status full = pool.Schedule([&ran] { ran += 100; });
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.message()), HasSubstr("queries: 2 requests already queued"));
  gate.Notify();
  pool.Stop();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_EQ(pool.QueueDepth(), 0u);
}

TEST(ThreadPoolTest, StopRunsQueuedTasksBeforeJoining) {
  ThreadPool pool("drain", 2, 1000);
  absl::Notification gate;
  std::atomic<int> ran{0};
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(pool.Schedule([&gate] { gate.WaitForNotification(); }).ok());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(pool.Schedule([&ran] { ++ran; }).ok());
  std::thread stopper([&pool] { pool.Stop(); });
  gate.Notify();
  stopper.join();
  EXPECT_EQ(ran.load(), 100);
}

TEST(ThreadPoolTest, ScheduleAfterStopIsUnavailableAndStopIsIdempotent) {
  ThreadPool pool("late", 2, 10);
  pool.Stop();
  pool.Stop();
  bool ran = false;
  absl::Status status = pool.Schedule([&ran] { ran = true; });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()), HasSubstr("late: shutting down"));
  EXPECT_FALSE(ran);
}

TEST(ThreadPoolTest, DestructorRunsQueuedTasks) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool("dtor", 1, 100);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(pool.Schedule([&ran] { ++ran; }).ok());
  }
  EXPECT_EQ(ran.load(), 10);
}

TEST(ThreadPoolTest, TasksRunConcurrentlyOnSeveralThreads) {
  ThreadPool pool("parallel", 3, 10);
  // Each task waits until all three are running: passes only if three threads run them at once.
  absl::Mutex mu;
  int running = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pool.Schedule([&] {
                      absl::MutexLock lock(&mu);
                      ++running;
                      mu.Await(absl::Condition(
                          +[](int* r) { return *r >= 3; }, &running));
                    })
                    .ok());
  }
  pool.Stop();
  EXPECT_EQ(running, 3);
}

}  // namespace
}  // namespace clm
