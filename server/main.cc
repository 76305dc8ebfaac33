// clm-server: parses flags and the configuration file, then runs Server until SIGTERM or SIGINT.
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/notification.h"
#include "lib/config/config.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, grpc_address, "127.0.0.1:8003", "gRPC listen address (host:port)");
ABSL_FLAG(std::string, metrics_address, "127.0.0.1:9103",
          "Prometheus /metrics listen address (host:port); empty disables it");
ABSL_FLAG(std::string, data_dir, "./var", "Directory of the embedded SQLite store (created when missing)");
ABSL_FLAG(std::string, config, "", "Policy and settings file (clm.v1.ServerConfig, protobuf text format)");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain of the server: serve gRPC over TLS (needs --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates: mutual TLS, every client must present a certificate they sign");
ABSL_FLAG(int32_t, tls_reload_interval_seconds, 10,
          "How often the TLS files are checked; changed files are used for new connections without a restart");
ABSL_FLAG(std::string, auth_tokens, "",
          "Credentials file (SHA-256 token hashes and client-certificate names with their roles); "
          "authentication is off without it. Re-read on SIGHUP");
ABSL_FLAG(std::string, health_address, "",
          "Optional plaintext address serving only grpc.health.v1.Health, for probes that cannot use TLS "
          "(Kubernetes gRPC probes); empty: none");
ABSL_FLAG(bool, allow_insecure_remote, false,
          "Allow serving a non-loopback --grpc_address without TLS and authentication");

namespace {

// The handler only wakes the main thread: nothing else is async-signal-safe.
int g_signal_pipe[2] = {-1, -1};

void OnSignal(int signo) {
  char c = static_cast<char>(signo);
  ssize_t ignored = write(g_signal_pipe[1], &c, 1);
  (void)ignored;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("CLM, the Continuous Learning Module server.\nUsage: clm-server [flags]");
  absl::ParseCommandLine(argc, argv);
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");

  absl::StatusOr<clm::v1::ServerConfig> config = clm::config::LoadServerConfig(absl::GetFlag(FLAGS_config));
  if (!config.ok()) {
    spdlog::error("--config: {}", config.status().ToString());
    return 2;
  }
  clm::server::Server::Options options;
  options.grpc_address = absl::GetFlag(FLAGS_grpc_address);
  options.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.config = *config;
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.tls.reload_interval = absl::Seconds(absl::GetFlag(FLAGS_tls_reload_interval_seconds));
  options.auth_tokens = absl::GetFlag(FLAGS_auth_tokens);
  options.allow_insecure_remote = absl::GetFlag(FLAGS_allow_insecure_remote);
  options.health_address = absl::GetFlag(FLAGS_health_address);

  if (pipe(g_signal_pipe) != 0) {
    spdlog::error("cannot create the signal pipe");
    return 1;
  }
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGHUP, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // A write past the file size limit (RLIMIT_FSIZE) must fail with EFBIG, which the store reports as disk
  // full, instead of killing the server.
  signal(SIGXFSZ, SIG_IGN);

  absl::StatusOr<std::unique_ptr<clm::server::Server>> server = clm::server::Server::Start(options);
  if (!server.ok()) {
    spdlog::error("cannot start: {}", server.status().ToString());
    return 1;
  }
  char signo = 0;
  while (true) {
    if (read(g_signal_pipe[0], &signo, 1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("cannot read the signal pipe: {}", strerror(errno));
      break;
    }
    if (signo != SIGHUP) break;
    spdlog::info("SIGHUP: reloading the credentials file");
    if (absl::Status reloaded = (*server)->Reload(); !reloaded.ok()) {
      spdlog::error("reload failed: {}", reloaded.ToString());
    }
  }
  spdlog::info("received signal {}", static_cast<int>(signo));
  (*server)->Shutdown();
  return 0;
}
