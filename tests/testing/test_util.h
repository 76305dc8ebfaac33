#ifndef CLM_TESTS_TESTING_TEST_UTIL_H_
#define CLM_TESTS_TESTING_TEST_UTIL_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "clm/v1/trade.pb.h"

namespace clm::testing {

// A fresh, empty directory under the test temp dir; removed by the destructor.
class TempDir final {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A valid trade closed `age` ago.
clm::v1::TradeOutcome MakeTrade(const std::string& id, double confidence = 0.6,
                                clm::v1::TradeOutcome::Outcome outcome = clm::v1::TradeOutcome::WIN,
                                absl::Duration age = absl::Hours(1), const std::string& symbol = "BTCUSDT");

// A port on 127.0.0.1 that was free a moment ago (for child processes that cannot report theirs).
int PickFreePort();

// A child process started with fork/exec; killed with SIGKILL by the destructor if still running.
class ChildProcess final {
 public:
  // argv[0] is the binary's path. Standard output and error go to `log_path` when given.
  explicit ChildProcess(std::vector<std::string> argv, const std::string& log_path = "");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  pid_t pid() const { return pid_; }
  void Signal(int signo);
  // Waits for the exit; returns the exit code, or 128 + signal number when killed by a signal.
  int Wait();

 private:
  pid_t pid_ = -1;
};

// Polls grpc.health.v1.Health/Check on `address` until SERVING or the timeout passes.
bool WaitForServing(const std::string& address, absl::Duration timeout);

// The real clm-server binary on a free 127.0.0.1 port with `data_dir`, the way an operator starts it (no
// metrics endpoint, warnings only; its log goes to <data_dir>/server.log). Killed by the destructor if
// still running.
class ServerProcess final {
 public:
  // `extra_args` are appended to the command line (e.g. "--config=...").
  ServerProcess(const std::string& binary, const std::string& data_dir, std::vector<std::string> extra_args = {});
  pid_t pid() const { return process_.pid(); }
  const std::string& address() const { return address_; }
  // Waits until the health service reports SERVING.
  bool WaitUntilServing() const { return WaitForServing(address_, absl::Seconds(20)); }
  void Signal(int signo) { process_.Signal(signo); }
  // SIGTERM, then the exit code (0 for a graceful stop). Drop client channels first: a connection with a
  // flow-control (BDP) ping in flight holds a stopping gRPC 1.51 server until its grace period ends.
  int Stop();
  // The exit code. Both print the server's log when it holds a sanitizer report (the log goes with the
  // test's temporary directory).
  int Wait();

 private:
  std::string address_;
  std::string log_path_;
  ChildProcess process_;
};

}  // namespace clm::testing

#endif  // CLM_TESTS_TESTING_TEST_UTIL_H_
