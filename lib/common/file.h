#ifndef CLM_LIB_COMMON_FILE_H_
#define CLM_LIB_COMMON_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace clm {

// The whole file. Errors read "<path>: cannot read: <reason>": NOT_FOUND when it does not exist,
// FAILED_PRECONDITION otherwise (permissions, a directory, ...). Callers prefix the flag that named it.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace clm

#endif  // CLM_LIB_COMMON_FILE_H_
