// clmctl's Deployment commands end to end against the real server in-process, through clm::clmctl::Run.
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/clmctl/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/deployable_server.h"

namespace clm::clmctl {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Result {
  int rc = -1;
  std::string out;
  std::string err;
};

class ClmctlDeploymentTest : public clm::testing::DeployableServerTest {
 protected:
  Result Clmctl(std::vector<std::string> args) {
    args.insert(args.begin(), "--server=" + address_);
    std::ostringstream out;
    std::ostringstream err;
    Result r;
    r.rc = clm::clmctl::Run(args, out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
  }
};

TEST_F(ClmctlDeploymentTest, ApprovePromoteRollbackListAuditActive) {
  Result r = Clmctl({"active"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("production: none (engines use the raw confidence)"));
  EXPECT_THAT(r.out, HasSubstr("shadow:     none"));
  r = Clmctl({"deployments"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("no deployments yet"));

  const std::string job = PrepareDeployableJob();
  r = Clmctl({"approve", job, "--stage", "shadow", "--by", "alice", "--reason", "reviewed the report"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_EQ(r.out, "1\n");
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("job ", job, " approved as v1 into shadow")));

  r = Clmctl({"active", "--json"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"shadow_version\":\"1\""));
  EXPECT_THAT(r.out, HasSubstr("\"production_version\":\"0\""));

  // Promotion waits for shadow evidence: live trades scored by the shadow map.
  r = Clmctl({"promote", "1", "--by=alice", "--reason=too early"});
  EXPECT_EQ(r.rc, kExitServerError);
  EXPECT_EQ(r.err, "error: FAILED_PRECONDITION: rule shadow_evidence: v1 has 0 labelled live trades scored in "
                   "shadow, 100 needed\n");
  RecordTrades("live", 150, absl::Minutes(1), 17);
  r = Clmctl({"promote", "1", "--by=alice", "--reason=shadow looked right"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_EQ(r.out, "1\n");
  EXPECT_THAT(r.err, HasSubstr("v1 is now production"));

  r = Clmctl({"active"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("production: v1 (isotonic"));

  // A second version straight into production (an override of the shadow rule), then roll back to the
  // previous one, then to none.
  r = Clmctl({"approve", job, "--stage=PRODUCTION", "--by", "alice", "--reason", "again"});
  EXPECT_EQ(r.rc, kExitServerError);
  EXPECT_THAT(r.err, HasSubstr("rule shadow_evidence: job "));
  r = Clmctl({"approve", job, "--stage=PRODUCTION", "--skip_shadow", "--by", "alice", "--reason", "again"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_EQ(r.out, "2\n");
  r = Clmctl({"rollback", "--by", "bob", "--reason", "back to the previous one"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_EQ(r.out, "1\n");
  EXPECT_THAT(r.err, HasSubstr("production is now v1"));
  r = Clmctl({"rollback", "--to", "2", "--by", "bob", "--reason", "forward again"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_EQ(r.out, "2\n");
  r = Clmctl({"rollback", "--identity", "--by", "bob", "--reason", "live win rate dropped"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_EQ(r.out, "0\n");
  EXPECT_THAT(r.err, HasSubstr("production is now identity"));

  r = Clmctl({"deployments"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("VERSION  STAGE"));
  EXPECT_THAT(r.out, HasSubstr("MSE_RAW"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("v2       retired  ", job, "  alice")));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("v1       retired  ", job, "  alice")));
  r = Clmctl({"deployments", "--json"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("{\"versions\":[{\"version\":\"2\""));

  r = Clmctl({"audit"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  std::vector<std::string> lines = absl::StrSplit(absl::StripSuffix(r.out, "\n"), '\n');
  // header + approve, refused promote, promote, refused approve, approve, 3 rollbacks
  ASSERT_EQ(lines.size(), 9u) << r.out;
  EXPECT_THAT(lines[0], StartsWith("ID"));
  EXPECT_THAT(lines[1], HasSubstr("rollback  bob"));
  EXPECT_THAT(lines[1], HasSubstr(" ok "));
  EXPECT_THAT(lines[1], HasSubstr(" v2 "));
  EXPECT_THAT(lines[1], HasSubstr(" identity "));
  EXPECT_THAT(lines[1], HasSubstr("live win rate dropped"));
  EXPECT_THAT(lines[8], HasSubstr("approve   alice"));
  EXPECT_THAT(lines[7], HasSubstr("refused  shadow_evidence"));
  r = Clmctl({"audit", "--limit", "2", "--json"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"action\":\"ROLLBACK\""));
  EXPECT_THAT(r.out, HasSubstr("\"next_before_id\""));
}

TEST_F(ClmctlDeploymentTest, RefusalsAndUsageErrors) {
  // A job fitted on too few trades succeeds but fails safety validation: it cannot be approved, the rule
  // is named, exit 1.
  RecordTrades("few", 30, absl::Hours(2), 5);
  Result r = Clmctl({"jobs", "submit"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  ASSERT_THAT(r.err, HasSubstr("NOT deployment ready"));
  const std::string failed_job(absl::StripSuffix(r.out, "\n"));
  ASSERT_FALSE(failed_job.empty());
  r = Clmctl({"approve", failed_job, "--stage", "production", "--by", "alice", "--reason", "why not"});
  EXPECT_EQ(r.rc, kExitServerError);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith("error: FAILED_PRECONDITION: rule deployment_ready: "));

  r = Clmctl({"rollback", "--by", "bob", "--reason", "panic"});
  EXPECT_EQ(r.rc, kExitServerError);
  EXPECT_EQ(r.err, "error: FAILED_PRECONDITION: rule rollback_target: no calibration is in production: nothing "
                   "to roll back\n");
  r = Clmctl({"promote", "7", "--by", "bob", "--reason", "r"});
  EXPECT_EQ(r.rc, kExitServerError);
  EXPECT_THAT(r.err, StartsWith("error: "));

  r = Clmctl({"audit"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("refused  deployment_ready"));

  // Usage errors never reach the server.
  EXPECT_EQ(Clmctl({"approve", failed_job, "--stage", "canary", "--by", "a", "--reason", "r"}).rc, kExitUsage);
  EXPECT_EQ(Clmctl({"approve", failed_job, "--stage", "shadow", "--reason", "r"}).rc, kExitUsage);
  EXPECT_EQ(Clmctl({"approve", "--stage", "shadow", "--by", "a", "--reason", "r"}).rc, kExitUsage);
  EXPECT_EQ(Clmctl({"promote", "one", "--by", "a", "--reason", "r"}).rc, kExitUsage);
  r = Clmctl({"rollback", "--to", "1", "--identity", "--by", "a", "--reason", "r"});
  EXPECT_EQ(r.rc, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("exclude each other"));
  EXPECT_EQ(Clmctl({"audit", "--limit", "0"}).rc, kExitUsage);
  EXPECT_EQ(Clmctl({"active", "--stage", "shadow"}).rc, kExitUsage);

  // Unreachable server: exit 3.
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(clm::clmctl::Run({"--server=127.0.0.1:1", "--timeout=1", "deployments"}, out, err), kExitUnreachable);
}

TEST_F(ClmctlDeploymentTest, DemoApprovesAReadyJobIntoShadow) {
  Result r = Clmctl({"demo", "--trades", "1500"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("== 5. Deployment: approve the map into shadow =="));
  EXPECT_THAT(r.out, HasSubstr(" as v1 into shadow\n")) << r.out.substr(r.out.find("== 5."));
  EXPECT_THAT(r.out, HasSubstr("production: none (engines use the raw confidence)"));
  EXPECT_THAT(r.out, HasSubstr("shadow:     v1 (isotonic"));
  r = Clmctl({"deployments"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("shadow"));
  EXPECT_THAT(r.out, HasSubstr("demo"));
}

TEST_F(ClmctlDeploymentTest, HelpListsTheDeploymentCommands) {
  std::ostringstream out;
  std::ostringstream err;
  ASSERT_EQ(clm::clmctl::Run({"--help"}, out, err), kExitOk);
  for (const char* command : {"approve", "promote", "rollback", "deployments", "audit", "active"}) {
    EXPECT_THAT(out.str(), HasSubstr(absl::StrCat("\n  ", command, " "))) << command;
  }
  std::ostringstream rollback_out;
  ASSERT_EQ(clm::clmctl::Run({"rollback", "--help"}, rollback_out, err), kExitOk);
  EXPECT_THAT(rollback_out.str(), HasSubstr("usage: clmctl rollback [--to VERSION | --identity] --by NAME"));
}

}  // namespace
}  // namespace clm::clmctl
