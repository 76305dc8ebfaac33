#ifndef CLM_LIB_AUTH_CREDENTIALS_H_
#define CLM_LIB_AUTH_CREDENTIALS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clm::auth {

// What a principal may do. `kOperator` may do everything; see access.h for which calls each role allows.
enum class Role : uint8_t { kEngine = 1, kOperator = 2, kViewer = 4 };

// A set of roles as a bit mask of Role values.
using RoleSet = uint8_t;

// "engine", "operator", "viewer"; nullopt for anything else.
std::optional<Role> ParseRole(absl::string_view name);
const char* RoleName(Role role);
// "engine,viewer" (in the order engine, operator, viewer); "none" when empty.
std::string RoleSetName(RoleSet roles);

// Who is calling, once authenticated.
struct Principal {
  std::string name;
  RoleSet roles = 0;
  bool Has(Role role) const { return (roles & static_cast<RoleSet>(role)) != 0; }
};

// Lower-case hex SHA-256 of `data`: the form in which tokens are stored.
std::string Sha256Hex(absl::string_view data);

// A fresh random token (32 bytes from the system's CSPRNG, as 64 hex characters).
absl::StatusOr<std::string> NewToken();

// The credentials file (`--auth_tokens`): one entry per line, '#' starts a comment.
//
//   token  <sha256 hex of the bearer token>  <principal>  <role>[,<role>...]
//   cert   <client certificate subject CN>   <principal>  <role>[,<role>...]
//
// Tokens are stored only as their SHA-256, so the file does not hold anything a caller could present.
// `cert` entries name the principal of a mutual-TLS client by its certificate's common name.
class CredentialSet {
 public:
  // Errors name the line and the reason ("line 3: role \"admin\" is not engine, operator or viewer").
  static absl::StatusOr<CredentialSet> Parse(absl::string_view text);
  // Reads and parses `path`; errors start with the path.
  static absl::StatusOr<CredentialSet> Load(const std::string& path);

  // The principal whose token this is, or nullopt. `token` is hashed before the lookup.
  std::optional<Principal> FindToken(absl::string_view token) const;
  // The principal a client certificate with this common name stands for, or nullopt.
  std::optional<Principal> FindCertificate(absl::string_view common_name) const;

  size_t token_count() const { return tokens_.size(); }
  size_t certificate_count() const { return certificates_.size(); }

 private:
  absl::flat_hash_map<std::string, Principal> tokens_;        // by SHA-256 hex
  absl::flat_hash_map<std::string, Principal> certificates_;  // by subject common name
};

}  // namespace clm::auth

#endif  // CLM_LIB_AUTH_CREDENTIALS_H_
