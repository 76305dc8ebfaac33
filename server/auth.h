#ifndef CLM_SERVER_AUTH_H_
#define CLM_SERVER_AUTH_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "lib/auth/access.h"
#include "lib/auth/credentials.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "server/metrics.h"

namespace clm::server {

// Who may call what. Every handler asks it first (gRPC 1.51 runs AuthMetadataProcessor only on TLS
// credentials and its interceptors cannot refuse a call, so the check lives in one place all handlers call).
//
// Off (no credentials file): every caller is allowed and anonymous, and the names typed into requests
// (approver, changed_by, submitted_by) are recorded as given. On: a caller is the principal of its bearer
// token ("authorization: Bearer <token>"), or, without a token, of its mutual-TLS client certificate's
// common name; the names recorded are that principal's.
class Authenticator final {
 public:
  struct Options {
    std::string credentials_path;  // --auth_tokens; empty: authentication off
  };

  // Loads the credentials file; its errors name the file and line. Metrics go to `registry`; refusals are
  // counted where every call is, in clm_grpc_requests_total{code="UNAUTHENTICATED"|"PERMISSION_DENIED"}.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(const Options& options,
                                                               prometheus::Registry& registry);

  bool enabled() const { return !options_.credentials_path.empty(); }

  // Re-reads the credentials file (SIGHUP). On error the credentials in use stay and the error is returned.
  absl::Status Reload();

  // The caller of `method` ("/clm.v1.Deployment/Approve"): UNAUTHENTICATED without valid credentials,
  // PERMISSION_DENIED when its roles do not allow the method. Off: an anonymous principal with every role.
  absl::StatusOr<auth::Principal> Check(const grpc::ServerContextBase& context, absl::string_view method) const;

  // The name to record for an action: the authenticated principal when on, else what the caller typed.
  std::string Actor(const auth::Principal& caller, const std::string& typed) const {
    return enabled() ? caller.name : typed;
  }

 private:
  Authenticator(Options options, prometheus::Registry& registry);

  const Options options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const auth::CredentialSet> credentials_ ABSL_GUARDED_BY(mu_);
  prometheus::Counter* reloads_ok_;
  prometheus::Counter* reloads_failed_;
  prometheus::Gauge* enabled_gauge_;
  prometheus::Gauge* principals_;
};

// A stream refused before it started (credentials, a limit): finishes at once with `status`, records it in
// the method's metrics and deletes itself when done. `Reactor` is a server streaming reactor type.
template <typename Reactor>
class Refused final : public Reactor {
 public:
  Refused(MethodMetrics& metrics, const grpc::Status& status) : metrics_(metrics), status_(status) {
    this->Finish(status_);
  }
  void OnDone() override {
    metrics_.Record(status_, absl::ZeroDuration());
    delete this;
  }

 private:
  MethodMetrics& metrics_;
  const grpc::Status status_;
};

template <typename Response>
using RefusedWrite = Refused<grpc::ServerWriteReactor<Response>>;
template <typename Request, typename Response>
using RefusedBidi = Refused<grpc::ServerBidiReactor<Request, Response>>;

}  // namespace clm::server

#endif  // CLM_SERVER_AUTH_H_
