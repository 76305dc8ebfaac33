#include "lib/auth/access.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clm::auth {
namespace {

constexpr RoleSet kEngine = static_cast<RoleSet>(Role::kEngine);
constexpr RoleSet kOperator = static_cast<RoleSet>(Role::kOperator);
constexpr RoleSet kViewer = static_cast<RoleSet>(Role::kViewer);

TEST(AccessTest, EachRoleGetsWhatTheIssueGivesIt) {
  // engine: TradeIngest, GetActive, WatchActive, Calibrate.
  EXPECT_TRUE(Allows(kEngine, AccessFor("/clm.v1.TradeIngest/Ingest")));
  EXPECT_TRUE(Allows(kEngine, AccessFor("/clm.v1.TradeIngest/ListDeadLetters")));
  EXPECT_TRUE(Allows(kEngine, AccessFor("/clm.v1.Deployment/WatchActive")));
  EXPECT_TRUE(Allows(kEngine, AccessFor("/clm.v1.Deployment/Calibrate")));
  EXPECT_FALSE(Allows(kEngine, AccessFor("/clm.v1.Deployment/Approve")));
  EXPECT_FALSE(Allows(kEngine, AccessFor("/clm.v1.CadenceStatus/GetStatus")));
  // viewer: read-only calls.
  EXPECT_TRUE(Allows(kViewer, AccessFor("/clm.v1.CalibrationJob/GetReport")));
  EXPECT_TRUE(Allows(kViewer, AccessFor("/clm.v1.Deployment/GetAudit")));
  EXPECT_FALSE(Allows(kViewer, AccessFor("/clm.v1.TradeIngest/Ingest")));
  EXPECT_FALSE(Allows(kViewer, AccessFor("/clm.v1.CalibrationJob/Submit")));
  EXPECT_FALSE(Allows(kViewer, AccessFor("/clm.v1.CadenceStatus/SetMode")));
  // operator: everything.
  EXPECT_TRUE(Allows(kOperator, AccessFor("/clm.v1.Deployment/Rollback")));
  EXPECT_TRUE(Allows(kOperator, AccessFor("/clm.v1.TradeIngest/Record")));
  // Reflection: any role.
  for (RoleSet role : {kEngine, kOperator, kViewer}) {
    EXPECT_TRUE(Allows(role, AccessFor("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")));
  }
  EXPECT_FALSE(Allows(0, AccessFor("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")));
}

TEST(AccessTest, AnUnknownMethodIsForOperatorsOnly) {
  EXPECT_EQ(AccessFor("/clm.v1.Deployment/SomethingNew"), Access::kChange);
  EXPECT_FALSE(Allows(kViewer | kEngine, AccessFor("/clm.v1.Deployment/SomethingNew")));
}

TEST(AccessTest, RefusalNamesPrincipalRolesMethodAndWhatWouldDo) {
  absl::Status refused = Authorize(Principal{"bob", kViewer}, "/clm.v1.Deployment/Approve");
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(refused.message(),
            "principal \"bob\" (roles: viewer) may not call /clm.v1.Deployment/Approve; it needs one of: operator");
  EXPECT_TRUE(Authorize(Principal{"alice", kOperator}, "/clm.v1.Deployment/Approve").ok());
}

}  // namespace
}  // namespace clm::auth
