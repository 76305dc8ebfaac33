#include "tests/testing/test_util.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>

#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"

namespace clm::testing {

TempDir::TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/clm_test_XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

clm::v1::TradeOutcome MakeTrade(const std::string& id, double confidence, clm::v1::TradeOutcome::Outcome outcome,
                                absl::Duration age, const std::string& symbol) {
  clm::v1::TradeOutcome t;
  t.set_trade_id(id);
  t.set_symbol(symbol);
  t.set_model_id("ensemble_v1");
  t.set_confidence(confidence);
  t.set_outcome(outcome);
  t.set_pnl(outcome == clm::v1::TradeOutcome::WIN ? 12.5 : -7.25);
  absl::Time closed = absl::Now() - age;
  t.mutable_closed_at()->set_seconds(absl::ToUnixSeconds(closed));
  t.mutable_opened_at()->set_seconds(absl::ToUnixSeconds(closed - absl::Minutes(30)));
  t.set_side(clm::v1::TradeOutcome::LONG);
  (*t.mutable_model_confidences())["xgboost"] = 0.61;
  (*t.mutable_model_confidences())["lightgbm"] = 0.57;
  return t;
}

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    throw std::runtime_error("bind failed");
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

ChildProcess::ChildProcess(std::vector<std::string> argv, const std::string& log_path) {
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    if (!log_path.empty()) {
      int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
    }
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    Wait();
  }
}

void ChildProcess::Signal(int signo) {
  if (pid_ > 0) kill(pid_, signo);
}

int ChildProcess::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool WaitForServing(const std::string& address, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    // A fresh channel each time: a channel that found nobody listening backs off for seconds.
    auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    if (health->Check(&context, request, &response).ok() &&
        response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

namespace {

std::string FreeAddress() { return "127.0.0.1:" + std::to_string(PickFreePort()); }

}  // namespace

namespace {

std::vector<std::string> Concat(std::vector<std::string> a, std::vector<std::string> b) {
  a.insert(a.end(), std::make_move_iterator(b.begin()), std::make_move_iterator(b.end()));
  return a;
}

}  // namespace

ServerProcess::ServerProcess(const std::string& binary, const std::string& data_dir,
                             std::vector<std::string> extra_args)
    : address_(FreeAddress()),
      log_path_(data_dir + "/server.log"),
      process_(Concat({binary, "--grpc_address=" + address_, "--metrics_address=", "--data_dir=" + data_dir,
                       "--log_level=warn"},
                      std::move(extra_args)),
               log_path_) {}

int ServerProcess::Stop() {
  process_.Signal(SIGTERM);
  return Wait();
}

int ServerProcess::Wait() {
  const int code = process_.Wait();
  std::ifstream log(log_path_);
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  if (text.find("Sanitizer") != std::string::npos) std::cerr << "clm-server log " << log_path_ << ":\n" << text;
  return code;
}

}  // namespace clm::testing
