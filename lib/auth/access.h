#ifndef CLM_LIB_AUTH_ACCESS_H_
#define CLM_LIB_AUTH_ACCESS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lib/auth/credentials.h"

namespace clm::auth {

// Which roles may make a call. Every method of the API belongs to exactly one class (see AccessFor).
enum class Access {
  kTradeWrite,  // TradeIngest.Ingest, Record: engine, operator
  kTradeRead,   // TradeIngest.GetDatasetSummary, ListDeadLetters: engine, operator, viewer
  kEngineRead,  // Deployment.GetActive, WatchActive, Calibrate: engine, operator, viewer
  kRead,        // every other read-only call: operator, viewer
  kChange,      // calls that change state (SetMode, Submit, Cancel, Approve, Promote, Rollback): operator
  kAnyRole,     // server reflection: any authenticated principal
};

// The access class of a full gRPC method name ("/clm.v1.Deployment/Approve"). Unknown methods are kChange,
// the most restrictive class, so a method added without a table entry is refused to all but operators.
Access AccessFor(absl::string_view method);

// Whether a principal with `roles` may make a call of class `access`.
bool Allows(RoleSet roles, Access access);

// OK, or PERMISSION_DENIED naming the principal, its roles, the method and the roles that would do.
absl::Status Authorize(const Principal& principal, absl::string_view method);

}  // namespace clm::auth

#endif  // CLM_LIB_AUTH_ACCESS_H_
