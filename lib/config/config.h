#ifndef CLM_LIB_CONFIG_CONFIG_H_
#define CLM_LIB_CONFIG_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clm/v1/config.pb.h"

namespace clm::config {

// Parses a ServerConfig in protobuf text format. Errors name the line and column, or the field and why.
absl::StatusOr<clm::v1::ServerConfig> ParseServerConfig(absl::string_view text);

// Reads and parses the file; an empty path gives the defaults.
absl::StatusOr<clm::v1::ServerConfig> LoadServerConfig(const std::string& path);

// Fills every unset field with its documented default and checks ranges.
absl::StatusOr<clm::v1::ServerConfig> ResolveServerConfig(const clm::v1::ServerConfig& given);

}  // namespace clm::config

#endif  // CLM_LIB_CONFIG_CONFIG_H_
