#ifndef CLM_CLIENT_LIB_CONNECTION_H_
#define CLM_CLIENT_LIB_CONNECTION_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/channel_arguments.h"

namespace clm::client {

// How to reach a CLM server. Plaintext unless `tls` is set or any TLS file is given.
struct ConnectionOptions {
  std::string target = "127.0.0.1:8003";  // host:port, or any gRPC target URI
  bool tls = false;                       // TLS with the system roots when no tls_ca_file is given
  std::string tls_ca_file;                // PEM roots that sign the server's certificate
  std::string tls_cert_file;              // PEM client certificate (mutual TLS); needs tls_key_file
  std::string tls_key_file;               // PEM private key of tls_cert_file
  std::string token;                      // non-empty: every call carries "authorization: Bearer <token>"
};

// Builds the channel. Fails with INVALID_ARGUMENT when a TLS file cannot be read or a certificate is given
// without its key (or the reverse). Does not connect: the first call (or WaitForConnected) does.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ConnectionOptions& options,
                                                          grpc::ChannelArguments arguments = {});

// Channel arguments for a long-lived engine connection: reconnect attempts start after 100 ms and back off
// to at most `max_reconnect_backoff` (gRPC's default grows to 120 s, far too slow after a server restart),
// and keepalive pings every 30 s keep idle streams through NATs (the server accepts one per 10 s).
grpc::ChannelArguments EngineChannelArguments(absl::Duration max_reconnect_backoff = absl::Seconds(10));

// The metadata every call must carry (today: the bearer token, when set).
std::vector<std::pair<std::string, std::string>> CallMetadata(const ConnectionOptions& options);

// Adds `metadata` to a call's context; call before the RPC starts.
void ApplyMetadata(const std::vector<std::pair<std::string, std::string>>& metadata,
                   grpc::ClientContext* context);

}  // namespace clm::client

#endif  // CLM_CLIENT_LIB_CONNECTION_H_
