// clmctl end to end against the real server in-process: every command through clm::clmctl::Run, as the
// binary runs it, checking output and exit codes.
#include "client/clmctl/commands.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "clm/v1/cadence.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/config/config.h"
#include "server/server.h"
#include "tests/testing/test_util.h"

namespace clm::clmctl {
namespace {

using ::testing::HasSubstr;

struct Result {
  int rc = -1;
  std::string out;
  std::string err;
};

class ClmctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::Server::Options options;
    options.grpc_address = "127.0.0.1:0";
    options.metrics_address = "";
    options.data_dir = dir_.path();
    absl::StatusOr<clm::v1::ServerConfig> config = config::ResolveServerConfig(clm::v1::ServerConfig());
    ASSERT_TRUE(config.ok()) << config.status();
    options.config = *config;
    options.shutdown_grace = absl::Seconds(2);
    absl::StatusOr<std::unique_ptr<server::Server>> server = server::Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    address_ = absl::StrCat("127.0.0.1:", server_->grpc_port());
  }

  Result Clmctl(std::vector<std::string> args) {
    args.insert(args.begin(), "--server=" + address_);
    return RunRaw(args);
  }

  static Result RunRaw(const std::vector<std::string>& args) {
    std::ostringstream out;
    std::ostringstream err;
    Result r;
    r.rc = clm::clmctl::Run(args, out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
  }

  std::string WriteFile(const std::string& name, const std::string& contents) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << contents;
    return path;
  }

  clm::testing::TempDir dir_;
  std::unique_ptr<server::Server> server_;
  std::string address_;
};

TEST_F(ClmctlTest, HelpDocumentsCommandsAndExitCodes) {
  Result r = RunRaw({"--help"});
  EXPECT_EQ(r.rc, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("exit codes:"));
  EXPECT_THAT(r.out, HasSubstr("3  cannot reach the server"));
  EXPECT_THAT(r.out, HasSubstr("trades import"));
  Result sub = RunRaw({"jobs", "submit", "--help"});
  EXPECT_EQ(sub.rc, kExitOk);
  EXPECT_THAT(sub.out, HasSubstr("usage: clmctl jobs submit [--method isotonic|platt|venn_abers]"));
}

TEST_F(ClmctlTest, UsageErrorsExitTwo) {
  Result r = Clmctl({"frobnicate"});
  EXPECT_EQ(r.rc, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("unknown command \"frobnicate\""));
  r = Clmctl({"status", "--bogus=1"});
  EXPECT_EQ(r.rc, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("unknown flag --bogus"));
  r = Clmctl({"jobs", "show"});
  EXPECT_EQ(r.rc, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("missing argument for \"jobs show\""));
  r = Clmctl({"mode", "set", "turbo", "--by", "alice", "--reason", "x"});
  EXPECT_EQ(r.rc, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("MODE must be logging_only, auto_calibrate or auto_shadow"));
  r = Clmctl({"mode", "set", "auto_calibrate", "--reason", "x"});
  EXPECT_EQ(r.rc, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--by NAME is required"));
  r = Clmctl({"jobs", "list", "--state", "sleeping"});
  EXPECT_EQ(r.rc, kExitUsage);
  EXPECT_EQ(RunRaw({}).rc, kExitUsage);
}

TEST_F(ClmctlTest, UnreachableServerExitsThree) {
  Result r = RunRaw({absl::StrCat("--server=127.0.0.1:", clm::testing::PickFreePort()), "--timeout=1", "status"});
  EXPECT_EQ(r.rc, kExitUnreachable);
  EXPECT_THAT(r.err, HasSubstr("error: cannot reach the server at 127.0.0.1:"));
}

TEST_F(ClmctlTest, StatusAsTableAndJson) {
  Result r = Clmctl({"status"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Cadence report (all trades)"));
  EXPECT_THAT(r.out, HasSubstr("[FAIL] total_trades: 0 trades, need 50+"));
  EXPECT_THAT(r.out, HasSubstr("Next action:"));

  r = Clmctl({"--json", "status", "--symbol", "BTCUSDT"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  clm::v1::CadenceReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok()) << r.out;
  EXPECT_EQ(report.symbol(), "BTCUSDT");
  EXPECT_EQ(report.gates_size(), 4);

  r = Clmctl({"watch", "--count", "1"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Cadence report (all trades)"));
  r = Clmctl({"history"});
  EXPECT_EQ(r.rc, kExitOk) << r.err;
}

TEST_F(ClmctlTest, ModeSetAndGet) {
  Result r = Clmctl({"mode", "set", "auto-calibrate", "--by", "alice", "--reason", "enough data"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("mode: LOGGING_ONLY -> AUTO_CALIBRATE"));
  r = Clmctl({"mode", "get"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("mode: AUTO_CALIBRATE\n"));
  EXPECT_THAT(r.out, HasSubstr("by alice: enough data"));
}

TEST_F(ClmctlTest, TradesImportNamesTheBadLineThenImportsAndSummarises) {
  const std::string path = WriteFile(
      "clm_trades.jsonl",
      "{\"trade_id\":\"t1\",\"symbol\":\"BTCUSDT\",\"model_id\":\"ens\",\"confidence\":0.62,\"outcome\":\"WIN\","
      "\"pnl\":10,\"closed_at\":\"" + absl::FormatTime(absl::RFC3339_sec, absl::Now() - absl::Hours(3), absl::UTCTimeZone()) + "\"}\n"
      "{\"id\":\"t2\",\"symbol\":\"ETHUSDT\",\"model\":\"ens\",\"confidence\":0.55,\"outcome\":\"loss\",\"pnl\":-4,"
      "\"exit_time\":" + absl::StrCat(absl::ToUnixSeconds(absl::Now() - absl::Hours(2))) + "}\n"
      "\n"
      "{\"trade_id\":\"t3\",\"symbol\":\"BTCUSDT\",\"confidence\":0.5,\"outcome\":\"neutral\","
      "\"timestamp\":" + absl::StrCat(absl::ToUnixMillis(absl::Now() - absl::Hours(1))) + "}\n"
      "{\"trade_id\":\"t4\",\"symbol\":\"BTCUSDT\",\"confidence\":\"high\",\"outcome\":\"WIN\",\"closed_at\":1}\n");

  Result r = Clmctl({"trades", "import", path});
  EXPECT_EQ(r.rc, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr(path + ":5: confidence: must be a number, got \"high\"\n"));
  EXPECT_THAT(r.err, HasSubstr("1 of 4 lines in " + path + " are invalid; nothing was imported"));
  r = Clmctl({"--json", "trades", "summary"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"total\":\"0\""));

  r = Clmctl({"trades", "import", path, "--skip-invalid"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("4 lines, 3 accepted, 0 duplicates, 0 rejected, 1 invalid lines skipped"));
  // Importing again is harmless.
  r = Clmctl({"trades", "import", path, "--skip_invalid"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("0 accepted, 3 duplicates"));

  r = Clmctl({"trades", "summary"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("trades:    3 (1 WIN, 1 LOSS, 1 NEUTRAL)"));
  EXPECT_THAT(r.out, HasSubstr("symbols:   BTCUSDT 2, ETHUSDT 1"));
  r = Clmctl({"trades", "summary", "--symbol", "ETHUSDT", "--from", "2000-01-01T00:00:00Z"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("trades:    1 (0 WIN, 1 LOSS, 0 NEUTRAL)"));

  // A trade only the server can judge: refused there, reported with its line, exit 1.
  const std::string bad = WriteFile(
      "bad.jsonl", "{\"trade_id\":\"t9\",\"symbol\":\"BTCUSDT\",\"confidence\":1.7,\"outcome\":\"WIN\","
                   "\"closed_at\":\"2024-05-01T00:00:00Z\"}\n");
  r = Clmctl({"trades", "import", bad});
  EXPECT_EQ(r.rc, kExitServerError);
  EXPECT_THAT(r.err, HasSubstr(bad + ":1: trade_id t9: confidence: must be within [0, 1], got 1.7"));
  EXPECT_THAT(r.out, HasSubstr("1 rejected"));
  r = Clmctl({"trades", "dead-letters"});
  ASSERT_EQ(r.rc, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("t9"));
  EXPECT_THAT(r.out, HasSubstr("confidence"));

  EXPECT_EQ(Clmctl({"trades", "import", dir_.path() + "/missing.jsonl"}).rc, kExitBadInput);
}

TEST_F(ClmctlTest, DemoThenJobsSubmitListShowReportCancel) {
  Result demo = Clmctl({"demo", "--trades", "400"});
  ASSERT_EQ(demo.rc, kExitOk) << demo.err;
  EXPECT_THAT(demo.out, HasSubstr("400 accepted"));
  EXPECT_THAT(demo.out, HasSubstr("Data: 400 trades"));
  EXPECT_THAT(demo.out, HasSubstr("# CLM Calibration Report"));
  EXPECT_THAT(demo.err, HasSubstr("SUCCEEDED"));

  Result submit = Clmctl({"jobs", "submit", "--method", "platt", "--neutral", "half", "--folds", "3"});
  ASSERT_EQ(submit.rc, kExitOk) << submit.err;
  const std::string id(absl::StripTrailingAsciiWhitespace(submit.out));
  EXPECT_TRUE(absl::StartsWith(id, "cal_")) << submit.out;
  EXPECT_THAT(submit.err, HasSubstr("100%"));  // the progress bar

  Result list = Clmctl({"jobs", "list", "--state", "succeeded"});
  ASSERT_EQ(list.rc, kExitOk) << list.err;
  EXPECT_THAT(list.out, HasSubstr(id));
  EXPECT_THAT(list.out, HasSubstr("SUCCEEDED"));

  Result show = Clmctl({"jobs", "show", id});
  ASSERT_EQ(show.rc, kExitOk) << show.err;
  EXPECT_THAT(show.out, HasSubstr("state:      SUCCEEDED"));
  EXPECT_THAT(show.out, HasSubstr("method:     platt"));

  Result report = Clmctl({"jobs", "report", id});
  ASSERT_EQ(report.rc, kExitOk) << report.err;
  EXPECT_THAT(report.out, HasSubstr("# CLM Calibration Report: job " + id));

  Result cancel = Clmctl({"jobs", "cancel", id});
  EXPECT_EQ(cancel.rc, kExitServerError);
  EXPECT_TRUE(absl::StartsWith(cancel.err, "error: FAILED_PRECONDITION: ")) << cancel.err;

  Result missing = Clmctl({"jobs", "show", "cal_19990101_000000"});
  EXPECT_EQ(missing.rc, kExitServerError);
  EXPECT_THAT(missing.err, HasSubstr("error: NOT_FOUND: "));

  Result queued = Clmctl({"jobs", "submit", "--no-wait"});
  ASSERT_EQ(queued.rc, kExitOk) << queued.err;
  EXPECT_TRUE(absl::StartsWith(queued.out, "cal_")) << queued.out;
}

}  // namespace
}  // namespace clm::clmctl
