// Fuzz target `server_config`: bytes -> the text-format configuration parsers an operator feeds the server
// (--config, clm.v1.ServerConfig: lib/config) and the cadence policy file (clm.v1.CadencePolicy:
// lib/cadence/policy.h), then the resolution of defaults and ranges. Checks that errors are InvalidArgument
// with a message, and that a resolved configuration is valid, a fixed point of resolution, and survives a
// print/parse round trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "clm/v1/cadence.pb.h"
#include "clm/v1/config.pb.h"
#include "fuzz/fuzz_check.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "lib/cadence/policy.h"
#include "lib/config/config.h"

namespace {

using google::protobuf::util::MessageDifferencer;

// A refusal an operator can act on: InvalidArgument, naming a line or a field, then the reason.
void CheckRefusal(const absl::Status& status) {
  CLM_FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CLM_FUZZ_CHECK(absl::StrContains(status.message(), ": "));
}

void FuzzServerConfig(absl::string_view text) {
  absl::StatusOr<clm::v1::ServerConfig> parsed = clm::config::ParseServerConfig(text);
  if (!parsed.ok()) {
    CheckRefusal(parsed.status());
    return;
  }
  absl::StatusOr<clm::v1::ServerConfig> resolved = clm::config::ResolveServerConfig(*parsed);
  if (!resolved.ok()) {
    CheckRefusal(resolved.status());
    return;
  }
  // What the server runs with is valid as a whole and resolving it again changes nothing.
  CLM_FUZZ_CHECK(clm::cadence::ValidatePolicy(resolved->policy()).ok());
  absl::StatusOr<clm::v1::ServerConfig> again = clm::config::ResolveServerConfig(*resolved);
  CLM_FUZZ_CHECK(again.ok());
  CLM_FUZZ_CHECK(MessageDifferencer::Equals(*again, *resolved));
  // Printed as a file and read back, it is the same configuration (what `--config` of a dumped config does).
  std::string printed;
  CLM_FUZZ_CHECK(google::protobuf::TextFormat::PrintToString(*resolved, &printed));
  absl::StatusOr<clm::v1::ServerConfig> reparsed = clm::config::ParseServerConfig(printed);
  CLM_FUZZ_CHECK(reparsed.ok());
  CLM_FUZZ_CHECK(MessageDifferencer::Equals(*reparsed, *resolved));
}

void FuzzPolicyText(absl::string_view text) {
  absl::StatusOr<clm::v1::CadencePolicy> policy = clm::cadence::ParsePolicyText(text);
  if (!policy.ok()) {
    CheckRefusal(policy.status());
    return;
  }
  CLM_FUZZ_CHECK(clm::cadence::ValidatePolicy(*policy).ok());
  absl::StatusOr<clm::v1::CadencePolicy> again = clm::cadence::ResolvePolicy(*policy);
  CLM_FUZZ_CHECK(again.ok());
  CLM_FUZZ_CHECK(MessageDifferencer::Equals(*again, *policy));
  // Every field is set once resolved: nothing is left to a default the reader might not know.
  CLM_FUZZ_CHECK(MessageDifferencer::Equals(clm::cadence::ApplyDefaults(*policy), *policy));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = clm::fuzz::SilenceProtobufLogs();
  (void)quiet;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  FuzzServerConfig(text);
  FuzzPolicyText(text);
  return 0;
}
