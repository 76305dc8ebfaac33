#include "lib/auth/credentials.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lib/common/file.h"

namespace clm::auth {
namespace {

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return out;
}

bool IsSha256Hex(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

std::optional<Role> ParseRole(absl::string_view name) {
  if (name == "engine") return Role::kEngine;
  if (name == "operator") return Role::kOperator;
  if (name == "viewer") return Role::kViewer;
  return std::nullopt;
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kEngine:
      return "engine";
    case Role::kOperator:
      return "operator";
    case Role::kViewer:
      return "viewer";
  }
  return "unknown";
}

std::string RoleSetName(RoleSet roles) {
  std::vector<const char*> names;
  for (Role role : {Role::kEngine, Role::kOperator, Role::kViewer}) {
    if ((roles & static_cast<RoleSet>(role)) != 0) names.push_back(RoleName(role));
  }
  return names.empty() ? "none" : absl::StrJoin(names, ",");
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  return Hex(digest, size);
}

absl::StatusOr<std::string> NewToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return absl::InternalError("the system's random source failed");
  return Hex(bytes, sizeof(bytes));
}

absl::StatusOr<CredentialSet> CredentialSet::Parse(absl::string_view text) {
  CredentialSet set;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    auto error = [line_number](absl::string_view reason) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": ", reason));
    };
    if (fields.size() != 4) {
      return error(absl::StrCat("expected 4 fields (kind, credential, principal, roles), found ", fields.size()));
    }
    const absl::string_view kind = fields[0];
    if (kind != "token" && kind != "cert") {
      return error(absl::StrCat("kind \"", kind, "\" is not token or cert"));
    }
    Principal principal;
    principal.name = std::string(fields[2]);
    for (absl::string_view role_name : absl::StrSplit(fields[3], ',')) {
      std::optional<Role> role = ParseRole(role_name);
      if (!role.has_value()) {
        return error(absl::StrCat("role \"", role_name, "\" is not engine, operator or viewer"));
      }
      principal.roles |= static_cast<RoleSet>(*role);
    }
    if (kind == "token") {
      // Never echo the credential itself: it may be a token pasted in by mistake.
      if (!IsSha256Hex(fields[1])) {
        return error(
            "the token credential is not a SHA-256 hex digest (64 hex digits); store the hash, not the token "
            "(clmctl auth hash-token prints it)");
      }
      std::string digest = absl::AsciiStrToLower(fields[1]);
      if (set.tokens_.contains(digest)) return error("the same token hash appears twice");
      set.tokens_.emplace(std::move(digest), std::move(principal));
    } else {
      std::string common_name(fields[1]);
      if (set.certificates_.contains(common_name)) {
        return error(absl::StrCat("certificate common name \"", common_name, "\" appears twice"));
      }
      set.certificates_.emplace(std::move(common_name), std::move(principal));
    }
  }
  return set;
}

absl::StatusOr<CredentialSet> CredentialSet::Load(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<CredentialSet> set = Parse(*text);
  if (!set.ok()) return absl::Status(set.status().code(), absl::StrCat(path, ": ", set.status().message()));
  return set;
}

std::optional<Principal> CredentialSet::FindToken(absl::string_view token) const {
  auto it = tokens_.find(Sha256Hex(token));
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

std::optional<Principal> CredentialSet::FindCertificate(absl::string_view common_name) const {
  auto it = certificates_.find(common_name);
  if (it == certificates_.end()) return std::nullopt;
  return it->second;
}

}  // namespace clm::auth
