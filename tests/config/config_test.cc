#include "lib/config/config.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clm::config {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

void ExpectDefaults(const clm::v1::ServerConfig& c) {
  EXPECT_EQ(c.ingest().max_batch_trades(), 1000u);
  EXPECT_EQ(c.ingest().future_tolerance_seconds(), 300u);
  EXPECT_EQ(c.ingest().max_group_trades(), 20000u);
  EXPECT_EQ(c.ingest().max_inflight_batches_per_stream(), 16u);
  EXPECT_EQ(c.ingest().max_ingest_streams(), 64u);
  EXPECT_EQ(c.ingest().max_inflight_bytes(), 256ULL << 20);
  EXPECT_EQ(c.limits().max_receive_message_bytes(), 4u << 20);
  EXPECT_EQ(c.limits().memory_quota_bytes(), 1ULL << 30);
  EXPECT_EQ(c.limits().max_threads(), 64u);
  EXPECT_EQ(c.limits().keepalive_min_ping_interval_seconds(), 10u);
  EXPECT_EQ(c.limits().max_concurrent_streams_per_connection(), 100u);
  EXPECT_EQ(c.limits().max_connection_idle_seconds(), 3600u);
  EXPECT_EQ(c.limits().keepalive_time_seconds(), 60u);
  EXPECT_EQ(c.limits().keepalive_timeout_seconds(), 20u);
  EXPECT_EQ(c.jobs().workers(), 1u);
  EXPECT_EQ(c.jobs().max_queued(), 32u);
}

TEST(ResolveServerConfigTest, FillsEveryDefault) {
  absl::StatusOr<clm::v1::ServerConfig> c = ResolveServerConfig(clm::v1::ServerConfig());
  ASSERT_TRUE(c.ok()) << c.status();
  ExpectDefaults(*c);
}

TEST(ResolveServerConfigTest, KeepsGivenValuesAndFillsTheRest) {
  absl::StatusOr<clm::v1::ServerConfig> parsed =
      ParseServerConfig("ingest { max_batch_trades: 50 }\nlimits { max_threads: 8 }\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<clm::v1::ServerConfig> c = ResolveServerConfig(*parsed);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ingest().max_batch_trades(), 50u);
  EXPECT_EQ(c->limits().max_threads(), 8u);
  EXPECT_EQ(c->ingest().max_group_trades(), 20000u);
  EXPECT_EQ(c->limits().memory_quota_bytes(), 1ULL << 30);
}

struct RangeCase {
  std::string text;
  std::string message;
};

class OutOfRangeTest : public ::testing::TestWithParam<RangeCase> {};

TEST_P(OutOfRangeTest, NamesTheFieldAndTheRange) {
  absl::StatusOr<clm::v1::ServerConfig> parsed = ParseServerConfig(GetParam().text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<clm::v1::ServerConfig> c = ResolveServerConfig(*parsed);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Fields, OutOfRangeTest,
    ::testing::Values(
        RangeCase{"ingest { max_batch_trades: 100001 }",
                  "ingest.max_batch_trades: must be within [1, 100000], got 100001"},
        RangeCase{"ingest { future_tolerance_seconds: 86401 }",
                  "ingest.future_tolerance_seconds: must be within [1, 86400], got 86401"},
        RangeCase{"ingest { max_group_trades: 1000001 }",
                  "ingest.max_group_trades: must be within [1, 1000000], got 1000001"},
        RangeCase{"ingest { max_inflight_batches_per_stream: 1025 }",
                  "ingest.max_inflight_batches_per_stream: must be within [1, 1024], got 1025"},
        RangeCase{"ingest { max_ingest_streams: 10001 }",
                  "ingest.max_ingest_streams: must be within [1, 10000], got 10001"},
        RangeCase{"ingest { max_inflight_bytes: 1048575 }",
                  "ingest.max_inflight_bytes: must be within [1048576, 1099511627776], got 1048575"},
        RangeCase{"limits { max_concurrent_streams_per_connection: 100001 }",
                  "limits.max_concurrent_streams_per_connection: must be within [1, 100000], got 100001"},
        RangeCase{"limits { max_connection_idle_seconds: 604801 }",
                  "limits.max_connection_idle_seconds: must be within [1, 604800], got 604801"},
        RangeCase{"limits { keepalive_time_seconds: 86401 }",
                  "limits.keepalive_time_seconds: must be within [1, 86400], got 86401"},
        RangeCase{"limits { keepalive_timeout_seconds: 3601 }",
                  "limits.keepalive_timeout_seconds: must be within [1, 3600], got 3601"},
        RangeCase{"limits { max_receive_message_bytes: 1023 }",
                  "limits.max_receive_message_bytes: must be within [1024, 1073741824], got 1023"},
        RangeCase{"limits { memory_quota_bytes: 1024 }",
                  "limits.memory_quota_bytes: must be within [16777216, 1099511627776], got 1024"},
        RangeCase{"limits { max_threads: 3 }", "limits.max_threads: must be within [4, 4096], got 3"},
        RangeCase{"jobs { workers: 65 }", "jobs.workers: must be within [1, 64], got 65"},
        RangeCase{"limits { keepalive_min_ping_interval_seconds: 3601 }",
                  "limits.keepalive_min_ping_interval_seconds: must be within [1, 3600], got 3601"}));

TEST(ResolveServerConfigTest, RangeBoundariesAreAccepted) {
  absl::StatusOr<clm::v1::ServerConfig> parsed = ParseServerConfig(
      "ingest { max_batch_trades: 100000 future_tolerance_seconds: 1 max_group_trades: 1000000 "
      "max_inflight_batches_per_stream: 1024 max_ingest_streams: 1 max_inflight_bytes: 1048576 }\n"
      "limits { max_receive_message_bytes: 1024 memory_quota_bytes: 16777216 max_threads: 4096 "
      "keepalive_min_ping_interval_seconds: 3600 max_concurrent_streams_per_connection: 100000 "
      "max_connection_idle_seconds: 604800 keepalive_time_seconds: 86400 keepalive_timeout_seconds: 3600 }");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(ResolveServerConfig(*parsed).ok());
}

TEST(ParseServerConfigTest, SyntaxErrorReportsLineAndColumn) {
  absl::StatusOr<clm::v1::ServerConfig> c = ParseServerConfig("ingest {\n  max_batch_trades: abc\n}\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), StartsWith("config: line 2, column 21: "));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("abc"));
}

TEST(ParseServerConfigTest, UnterminatedBlockReportsPosition) {
  absl::StatusOr<clm::v1::ServerConfig> c = ParseServerConfig("ingest {\n  max_batch_trades: 5\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("line 3, column 1"));
}

TEST(ParseServerConfigTest, UnknownFieldIsAnError) {
  absl::StatusOr<clm::v1::ServerConfig> c = ParseServerConfig("ingest { max_batch_trade: 5 }");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  // protobuf points just past the unknown name; the position is 1-based.
  EXPECT_THAT(std::string(c.status().message()), StartsWith("config: line 1, column 25: "));
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("Message type \"clm.v1.IngestConfig\" has no field named \"max_batch_trade\""));
}

TEST(ParseServerConfigTest, NegativeValueForUnsignedIsAnError) {
  EXPECT_FALSE(ParseServerConfig("limits { max_threads: -1 }").ok());
}

TEST(ParseServerConfigTest, EmptyTextIsAnEmptyConfig) {
  absl::StatusOr<clm::v1::ServerConfig> c = ParseServerConfig("# only a comment\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->has_ingest());
}

class LoadServerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "clm_config_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(LoadServerConfigTest, MissingFileIsNotFound) {
  std::string path = (dir_ / "missing.textproto").string();
  absl::StatusOr<clm::v1::ServerConfig> c = LoadServerConfig(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(path));
}

TEST_F(LoadServerConfigTest, EmptyPathGivesDefaults) {
  absl::StatusOr<clm::v1::ServerConfig> c = LoadServerConfig("");
  ASSERT_TRUE(c.ok()) << c.status();
  ExpectDefaults(*c);
}

TEST_F(LoadServerConfigTest, ReadsResolvesAndNamesTheFileInErrors) {
  absl::StatusOr<clm::v1::ServerConfig> c = LoadServerConfig(Write("ok.textproto", "ingest { max_group_trades: 7 }"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ingest().max_group_trades(), 7u);
  EXPECT_EQ(c->ingest().max_batch_trades(), 1000u);

  std::string bad_syntax = Write("syntax.textproto", "\n\nlimits { max_threads: x }");
  c = LoadServerConfig(bad_syntax);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), StartsWith(bad_syntax + ": config: line 3, column 23: "));

  std::string out_of_range = Write("range.textproto", "limits { max_threads: 1 }");
  c = LoadServerConfig(out_of_range);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(), out_of_range + ": limits.max_threads: must be within [4, 4096], got 1");
}

}  // namespace
}  // namespace clm::config
