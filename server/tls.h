#ifndef CLM_SERVER_TLS_H_
#define CLM_SERVER_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/security/server_credentials.h"

namespace clm::server {

struct TlsOptions {
  std::string cert_file;       // --tls_cert: PEM certificate chain of the server
  std::string key_file;        // --tls_key: PEM private key of tls_cert
  std::string client_ca_file;  // --tls_client_ca: PEM roots; set, clients must present a certificate they sign
  absl::Duration reload_interval = absl::Seconds(10);  // how often the files are checked for changes

  bool enabled() const { return !cert_file.empty() || !key_file.empty() || !client_ca_file.empty(); }
  bool mutual() const { return !client_ca_file.empty(); }
};

// Checks the files at start (readable, PEM, the key belongs to the certificate, the CA parses) so a mistake
// is a clear error instead of failing handshakes, then builds credentials that re-read the files whenever
// they change (certificate rotation without a restart). Errors name the flag.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const TlsOptions& options);

// Whether `address` ("host:port", "[v6]:port", "unix:path") listens only on this machine.
bool IsLoopbackAddress(absl::string_view address);

}  // namespace clm::server

#endif  // CLM_SERVER_TLS_H_
