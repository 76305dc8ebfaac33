#ifndef CLM_LIB_CADENCE_POLICY_H_
#define CLM_LIB_CADENCE_POLICY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clm/v1/cadence.pb.h"

namespace clm::cadence {

// Defaults of every CadencePolicy field (see proto/clm/v1/cadence.proto).
inline constexpr int64_t kDefaultMinTotalTrades = 50;
inline constexpr double kDefaultMinSpanDays = 3.0;
inline constexpr double kDefaultMinWinShare = 0.20;
inline constexpr double kDefaultMinLossShare = 0.20;
inline constexpr int64_t kDefaultCalibrationMinTrades = 50;
inline constexpr int64_t kDefaultShadowMinTrades = 100;
inline constexpr double kDefaultShadowMinSpanDays = 3.0;
inline constexpr int64_t kDefaultProductionMinTrades = 500;
inline constexpr double kDefaultProductionMinSpanDays = 14.0;
inline constexpr int64_t kDefaultBatchNewTrades = 100;
inline constexpr int64_t kDefaultTimeMaxIntervalSeconds = 24 * 3600;
inline constexpr int64_t kDefaultTimeMinNewTrades = 20;
inline constexpr int64_t kDefaultMonitorIntervalSeconds = 300;
inline constexpr int64_t kDefaultNudgeDebounceMs = 1000;
inline constexpr int64_t kDefaultHistoryLimit = 1000;

// The policy with every field set to its default.
clm::v1::CadencePolicy DefaultPolicy();

// `given` with every unset field filled from DefaultPolicy(); set fields are kept as they are, even when
// invalid (ValidatePolicy reports those).
clm::v1::CadencePolicy ApplyDefaults(const clm::v1::CadencePolicy& given);

// OK when the policy, with unset fields read as their defaults, is usable. Otherwise InvalidArgument naming
// the first offending field by its text-format path, e.g.
// "gates.min_win_share: must be within [0, 1], got 1.5".
absl::Status ValidatePolicy(const clm::v1::CadencePolicy& policy);

// Defaults applied, then validated: the policy the evaluator and the monitor run with. The server calls it
// on the `policy` field of its ServerConfig.
absl::StatusOr<clm::v1::CadencePolicy> ResolvePolicy(const clm::v1::CadencePolicy& given);

// Parses a CadencePolicy in protobuf text format and resolves it. Syntax errors and unknown fields are
// InvalidArgument "line L, column C: <parser message>" (1-based, every error, joined by "; "); invalid
// values are reported as by ValidatePolicy. An empty text yields DefaultPolicy().
absl::StatusOr<clm::v1::CadencePolicy> ParsePolicyText(absl::string_view text);

// Reads and parses a policy file; errors are prefixed with the path. NotFound when it does not exist.
absl::StatusOr<clm::v1::CadencePolicy> LoadPolicyFile(const std::string& path);

// "LOGGING_ONLY", "CALIBRATION", "BATCH", ...: the names operators see in text and logs.
std::string ModeName(clm::v1::LearningMode mode);
std::string LevelName(clm::v1::AuthorizationLevel level);
std::string TriggerName(clm::v1::TriggerType type);

}  // namespace clm::cadence

#endif  // CLM_LIB_CADENCE_POLICY_H_
