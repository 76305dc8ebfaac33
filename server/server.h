#ifndef CLM_SERVER_SERVER_H_
#define CLM_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clm/v1/config.pb.h"
#include "grpcpp/server.h"
#include "server/tls.h"

namespace clm::server {

class HealthProbeService;
class Services;

// The whole CLM server: store, pipelines, gRPC services and the metrics endpoint.
class Server final {
 public:
  struct Options {
    std::string grpc_address = "127.0.0.1:8003";    // port 0 picks a free port (tests)
    std::string metrics_address = "127.0.0.1:9103"; // empty: no metrics endpoint
    std::string data_dir = "./var";                 // holds clm.db and the LOCK file
    clm::v1::ServerConfig config;                   // resolved (defaults filled in)
    absl::Duration shutdown_grace = absl::Seconds(5);  // calls still running after this are cancelled
    TlsOptions tls;                                  // off unless a certificate is given
    std::string auth_tokens;                         // credentials file; empty: authentication off
    // Serving a non-loopback address without TLS and authentication is refused unless this is set.
    bool allow_insecure_remote = false;
    // A second, plaintext port that serves only grpc.health.v1.Health (which needs no credentials), for
    // probes that cannot speak TLS, such as Kubernetes' gRPC probes. Empty: none.
    std::string health_address;
    std::string sqlite_vfs;  // SQLite VFS (registered name) for every store connection; empty: the default
  };

  // Opens the store (refusing a data directory another server holds), starts every service, and reports
  // SERVING on the health service (NOT_SERVING later while the store is unusable, see store::StoreHealth).
  // Errors name the flag or file at fault.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const Options& options);
  ~Server();

  // Graceful stop: health NOT_SERVING, ingest streams drained (acks for everything received are sent),
  // no new calls, queued trades committed, then the store is closed. Idempotent.
  void Shutdown();

  // SIGHUP: re-reads the credentials file (TLS files are re-read by themselves when they change). On error
  // the credentials in use stay and the error is returned.
  absl::Status Reload();

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  int health_port() const { return health_port_; }

 private:
  Server() = default;
  Options options_;
  std::unique_ptr<Services> services_;
  void SetServing(bool serving);

  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<HealthProbeService> health_probe_;
  std::unique_ptr<grpc::Server> health_server_;  // --health_address: health only
  int grpc_port_ = 0;
  int health_port_ = 0;
  int metrics_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace clm::server

#endif  // CLM_SERVER_SERVER_H_
