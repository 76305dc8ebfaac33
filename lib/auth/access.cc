#include "lib/auth/access.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace clm::auth {
namespace {

constexpr RoleSet kEngine = static_cast<RoleSet>(Role::kEngine);
constexpr RoleSet kOperator = static_cast<RoleSet>(Role::kOperator);
constexpr RoleSet kViewer = static_cast<RoleSet>(Role::kViewer);

RoleSet RolesFor(Access access) {
  switch (access) {
    case Access::kTradeWrite:
      return kEngine | kOperator;
    case Access::kTradeRead:
    case Access::kEngineRead:
    case Access::kAnyRole:
      return kEngine | kOperator | kViewer;
    case Access::kRead:
      return kOperator | kViewer;
    case Access::kChange:
      return kOperator;
  }
  return kOperator;
}

const absl::flat_hash_map<absl::string_view, Access>& Table() {
  static const auto* table = new absl::flat_hash_map<absl::string_view, Access>{
      {"/clm.v1.TradeIngest/Ingest", Access::kTradeWrite},
      {"/clm.v1.TradeIngest/Record", Access::kTradeWrite},
      {"/clm.v1.TradeIngest/GetDatasetSummary", Access::kTradeRead},
      {"/clm.v1.TradeIngest/ListDeadLetters", Access::kTradeRead},
      {"/clm.v1.CadenceStatus/GetStatus", Access::kRead},
      {"/clm.v1.CadenceStatus/WatchStatus", Access::kRead},
      {"/clm.v1.CadenceStatus/GetPolicy", Access::kRead},
      {"/clm.v1.CadenceStatus/GetMonitorHistory", Access::kRead},
      {"/clm.v1.CadenceStatus/SetMode", Access::kChange},
      {"/clm.v1.CalibrationJob/Submit", Access::kChange},
      {"/clm.v1.CalibrationJob/Cancel", Access::kChange},
      {"/clm.v1.CalibrationJob/Get", Access::kRead},
      {"/clm.v1.CalibrationJob/List", Access::kRead},
      {"/clm.v1.CalibrationJob/Watch", Access::kRead},
      {"/clm.v1.CalibrationJob/GetReport", Access::kRead},
      {"/clm.v1.Deployment/Approve", Access::kChange},
      {"/clm.v1.Deployment/Promote", Access::kChange},
      {"/clm.v1.Deployment/Rollback", Access::kChange},
      {"/clm.v1.Deployment/GetActive", Access::kEngineRead},
      {"/clm.v1.Deployment/WatchActive", Access::kEngineRead},
      {"/clm.v1.Deployment/Calibrate", Access::kEngineRead},
      {"/clm.v1.Deployment/List", Access::kRead},
      {"/clm.v1.Deployment/GetAudit", Access::kRead},
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", Access::kAnyRole},
  };
  return *table;
}

}  // namespace

Access AccessFor(absl::string_view method) {
  auto it = Table().find(method);
  return it == Table().end() ? Access::kChange : it->second;
}

bool Allows(RoleSet roles, Access access) { return (roles & RolesFor(access)) != 0; }

absl::Status Authorize(const Principal& principal, absl::string_view method) {
  const Access access = AccessFor(method);
  if (Allows(principal.roles, access)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("principal \"", principal.name, "\" (roles: ",
                                                  RoleSetName(principal.roles), ") may not call ", method,
                                                  "; it needs one of: ", RoleSetName(RolesFor(access))));
}

}  // namespace clm::auth
