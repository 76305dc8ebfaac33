#include "server/auth.h"

#include <sys/stat.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "grpc/grpc_security_constants.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace clm::server {
namespace {

constexpr absl::string_view kBearer = "bearer ";

// The value of the first `authorization` header, if any.
std::optional<absl::string_view> AuthorizationHeader(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return std::nullopt;
  return absl::string_view(it->second.data(), it->second.size());
}

std::optional<std::string> ClientCertificateCommonName(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return std::nullopt;
  std::vector<grpc::string_ref> names = auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  if (names.empty()) return std::nullopt;
  return std::string(names.front().data(), names.front().size());
}

}  // namespace

Authenticator::Authenticator(Options options, prometheus::Registry& registry)
    : options_(std::move(options)) {
  auto& reloads = prometheus::BuildCounter()
                      .Name("clm_auth_reloads_total")
                      .Help("Reloads of the credentials file (SIGHUP), by result")
                      .Register(registry);
  reloads_ok_ = &reloads.Add({{"result", "ok"}});
  reloads_failed_ = &reloads.Add({{"result", "error"}});
  enabled_gauge_ = &prometheus::BuildGauge()
                        .Name("clm_auth_enabled")
                        .Help("1 when calls need credentials (--auth_tokens), 0 when every caller is allowed")
                        .Register(registry)
                        .Add({});
  principals_ = &prometheus::BuildGauge()
                     .Name("clm_auth_credentials")
                     .Help("Entries in the credentials file in use (tokens and client certificates)")
                     .Register(registry)
                     .Add({});
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(const Options& options,
                                                                     prometheus::Registry& registry) {
  std::unique_ptr<Authenticator> authenticator(new Authenticator(options, registry));
  authenticator->enabled_gauge_->Set(authenticator->enabled() ? 1 : 0);
  if (!authenticator->enabled()) return authenticator;
  absl::StatusOr<auth::CredentialSet> credentials = auth::CredentialSet::Load(options.credentials_path);
  if (!credentials.ok()) {
    return absl::Status(credentials.status().code(), absl::StrCat("--auth_tokens ", credentials.status().message()));
  }
  struct stat info {};
  if (stat(options.credentials_path.c_str(), &info) == 0 && (info.st_mode & S_IROTH) != 0) {
    spdlog::warn("--auth_tokens {}: readable by every user of this machine; chmod 600 it", options.credentials_path);
  }
  spdlog::info("authentication on: {} tokens, {} client certificates from {}", credentials->token_count(),
               credentials->certificate_count(), options.credentials_path);
  authenticator->principals_->Set(
      static_cast<double>(credentials->token_count() + credentials->certificate_count()));
  authenticator->credentials_ = std::make_shared<const auth::CredentialSet>(*std::move(credentials));
  return authenticator;
}

absl::Status Authenticator::Reload() {
  if (!enabled()) return absl::OkStatus();
  absl::StatusOr<auth::CredentialSet> credentials = auth::CredentialSet::Load(options_.credentials_path);
  if (!credentials.ok()) {
    reloads_failed_->Increment();
    return absl::Status(credentials.status().code(),
                        absl::StrCat("--auth_tokens ", credentials.status().message(), "; the previous credentials stay in use"));
  }
  spdlog::info("credentials reloaded: {} tokens, {} client certificates", credentials->token_count(),
               credentials->certificate_count());
  principals_->Set(static_cast<double>(credentials->token_count() + credentials->certificate_count()));
  auto fresh = std::make_shared<const auth::CredentialSet>(*std::move(credentials));
  {
    absl::MutexLock lock(&mu_);
    credentials_ = std::move(fresh);
  }
  reloads_ok_->Increment();
  return absl::OkStatus();
}

absl::StatusOr<auth::Principal> Authenticator::Check(const grpc::ServerContextBase& context,
                                                     absl::string_view method) const {
  if (!enabled()) return auth::Principal{"", static_cast<auth::RoleSet>(0xff)};
  std::shared_ptr<const auth::CredentialSet> credentials;
  {
    absl::MutexLock lock(&mu_);
    credentials = credentials_;
  }
  std::optional<auth::Principal> caller;
  // The token itself is never logged or put in a status message: only whether it was known.
  if (std::optional<absl::string_view> header = AuthorizationHeader(context)) {
    if (header->size() <= kBearer.size() || !absl::StartsWithIgnoreCase(*header, kBearer)) {
      return absl::UnauthenticatedError("authorization metadata must be \"Bearer <token>\"");
    }
    caller = credentials->FindToken(absl::StripAsciiWhitespace(header->substr(kBearer.size())));
    if (!caller.has_value()) {
      spdlog::debug("{}: refused an unknown bearer token from {}", std::string(method), context.peer());
      return absl::UnauthenticatedError("unknown bearer token");
    }
  } else if (std::optional<std::string> common_name = ClientCertificateCommonName(context)) {
    caller = credentials->FindCertificate(*common_name);
    if (!caller.has_value()) {
      return absl::UnauthenticatedError(absl::StrCat("client certificate \"", *common_name,
                                                     "\" has no cert entry in the credentials file, and no bearer "
                                                     "token was sent"));
    }
  } else {
    return absl::UnauthenticatedError(
        "credentials required: send \"authorization: Bearer <token>\" metadata (or a client certificate over "
        "mutual TLS)");
  }
  if (absl::Status allowed = auth::Authorize(*caller, method); !allowed.ok()) {
    spdlog::info("{}", std::string(allowed.message()));
    return allowed;
  }
  return *caller;
}

}  // namespace clm::server
