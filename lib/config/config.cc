#include "lib/config/config.h"

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "lib/cadence/policy.h"
#include "lib/common/file.h"

namespace clm::config {
namespace {

class CollectErrors final : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {
    errors_.push_back(absl::StrCat("line ", line + 1, ", column ", column + 1, ": ", message));
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {}
  std::string Joined() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};


absl::Status InRange(absl::string_view field, uint64_t value, uint64_t lo, uint64_t hi) {
  if (value < lo || value > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be within [", lo, ", ", hi, "], got ", value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<clm::v1::ServerConfig> ParseServerConfig(absl::string_view text) {
  clm::v1::ServerConfig config;
  google::protobuf::TextFormat::Parser parser;
  CollectErrors errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", errors.Joined()));
  }
  return config;
}

absl::StatusOr<clm::v1::ServerConfig> LoadServerConfig(const std::string& path) {
  if (path.empty()) return ResolveServerConfig(clm::v1::ServerConfig());
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<clm::v1::ServerConfig> parsed = ParseServerConfig(*text);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", parsed.status().message()));
  }
  absl::StatusOr<clm::v1::ServerConfig> resolved = ResolveServerConfig(*parsed);
  if (!resolved.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", resolved.status().message()));
  }
  return resolved;
}

absl::StatusOr<clm::v1::ServerConfig> ResolveServerConfig(const clm::v1::ServerConfig& given) {
  clm::v1::ServerConfig c = given;
  auto* ingest = c.mutable_ingest();
  if (ingest->max_batch_trades() == 0) ingest->set_max_batch_trades(1000);
  if (ingest->future_tolerance_seconds() == 0) ingest->set_future_tolerance_seconds(300);
  if (ingest->max_group_trades() == 0) ingest->set_max_group_trades(20000);
  if (ingest->max_inflight_batches_per_stream() == 0) ingest->set_max_inflight_batches_per_stream(16);
  if (ingest->max_ingest_streams() == 0) ingest->set_max_ingest_streams(64);
  if (ingest->max_inflight_bytes() == 0) ingest->set_max_inflight_bytes(256ULL << 20);
  auto* jobs = c.mutable_jobs();
  if (jobs->workers() == 0) jobs->set_workers(1);
  if (jobs->max_queued() == 0) jobs->set_max_queued(32);
  auto* deployment = c.mutable_deployment();
  if (deployment->auto_rollback_margin() == 0.0) deployment->set_auto_rollback_margin(0.01);
  if (deployment->auto_rollback_min_trades() == 0) deployment->set_auto_rollback_min_trades(200);
  if (deployment->min_shadow_trades() == 0) deployment->set_min_shadow_trades(100);
  if (!(deployment->auto_rollback_margin() > 0.0 && deployment->auto_rollback_margin() <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("deployment.auto_rollback_margin: must be within (0, 1], got ",
                                                   deployment->auto_rollback_margin()));
  }
  auto* limits = c.mutable_limits();
  if (limits->max_receive_message_bytes() == 0) limits->set_max_receive_message_bytes(4 << 20);
  if (limits->memory_quota_bytes() == 0) limits->set_memory_quota_bytes(1ULL << 30);
  if (limits->max_threads() == 0) limits->set_max_threads(64);
  if (limits->keepalive_min_ping_interval_seconds() == 0) limits->set_keepalive_min_ping_interval_seconds(10);
  if (limits->max_concurrent_streams_per_connection() == 0) limits->set_max_concurrent_streams_per_connection(100);
  if (limits->max_connection_idle_seconds() == 0) limits->set_max_connection_idle_seconds(3600);
  if (limits->keepalive_time_seconds() == 0) limits->set_keepalive_time_seconds(60);
  if (limits->keepalive_timeout_seconds() == 0) limits->set_keepalive_timeout_seconds(20);

  for (const absl::Status& status : {
           InRange("ingest.max_batch_trades", ingest->max_batch_trades(), 1, 100000),
           InRange("ingest.future_tolerance_seconds", ingest->future_tolerance_seconds(), 1, 86400),
           InRange("ingest.max_group_trades", ingest->max_group_trades(), 1, 1000000),
           InRange("ingest.max_inflight_batches_per_stream", ingest->max_inflight_batches_per_stream(), 1, 1024),
           InRange("ingest.max_ingest_streams", ingest->max_ingest_streams(), 1, 10000),
           InRange("ingest.max_inflight_bytes", ingest->max_inflight_bytes(), 1ULL << 20, 1ULL << 40),
           InRange("jobs.workers", jobs->workers(), 1, 64),
           InRange("deployment.auto_rollback_min_trades", deployment->auto_rollback_min_trades(), 1, 10000000),
           InRange("deployment.min_shadow_trades", deployment->min_shadow_trades(), 1, 10000000),
           InRange("jobs.max_queued", jobs->max_queued(), 1, 10000),
           InRange("limits.max_receive_message_bytes", limits->max_receive_message_bytes(), 1024, 1u << 30),
           InRange("limits.memory_quota_bytes", limits->memory_quota_bytes(), 16ULL << 20, 1ULL << 40),
           InRange("limits.max_threads", limits->max_threads(), 4, 4096),
           InRange("limits.keepalive_min_ping_interval_seconds", limits->keepalive_min_ping_interval_seconds(), 1,
                   3600),
           InRange("limits.max_concurrent_streams_per_connection", limits->max_concurrent_streams_per_connection(),
                   1, 100000),
           InRange("limits.max_connection_idle_seconds", limits->max_connection_idle_seconds(), 1, 7 * 86400),
           InRange("limits.keepalive_time_seconds", limits->keepalive_time_seconds(), 1, 86400),
           InRange("limits.keepalive_timeout_seconds", limits->keepalive_timeout_seconds(), 1, 3600),
       }) {
    if (!status.ok()) return status;
  }
  // The cadence library owns the policy's defaults and ranges; only the path prefix is added here.
  absl::StatusOr<clm::v1::CadencePolicy> policy = cadence::ResolvePolicy(c.policy());
  if (!policy.ok()) {
    return absl::Status(policy.status().code(), absl::StrCat("policy.", policy.status().message()));
  }
  *c.mutable_policy() = *std::move(policy);
  return c;
}

}  // namespace clm::config
