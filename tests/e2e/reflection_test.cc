// grpcurl's view of the real clm-server binary: list, describe and call through server reflection only.
#include <signal.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/e2e/real_server_fixture.h"
#include "tests/testing/reflection_client.h"
#include "tests/testing/test_util.h"

namespace clm {
namespace {

using ReflectionTest = clm::testing::RealServerTest;

TEST_F(ReflectionTest, ListShowsEveryService) {
  auto services = client_->ListServices();
  ASSERT_TRUE(services.ok()) << services.status();
  for (const char* expected : {"clm.v1.TradeIngest", "clm.v1.CadenceStatus", "clm.v1.CalibrationJob",
                               "clm.v1.Deployment", "grpc.health.v1.Health"}) {
    EXPECT_NE(std::find(services->begin(), services->end(), expected), services->end()) << expected;
  }
}

TEST_F(ReflectionTest, DescribeTradeIngestAndHealth) {
  auto ingest = client_->DescribeService("clm.v1.TradeIngest");
  ASSERT_TRUE(ingest.ok()) << ingest.status();
  for (const char* method : {"Ingest", "Record", "GetDatasetSummary", "ListDeadLetters"}) {
    EXPECT_NE((*ingest)->FindMethodByName(method), nullptr) << method;
  }
  EXPECT_TRUE((*ingest)->FindMethodByName("Ingest")->client_streaming());
  EXPECT_TRUE((*ingest)->FindMethodByName("Ingest")->server_streaming());
  // grpc 1.51 only describes the health service when its generated code is linked into the binary.
  auto health = client_->DescribeService("grpc.health.v1.Health");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_NE((*health)->FindMethodByName("Check"), nullptr);
}

TEST_F(ReflectionTest, DescribeCadenceStatus) {
  auto cadence = client_->DescribeService("clm.v1.CadenceStatus");
  ASSERT_TRUE(cadence.ok()) << cadence.status();
  for (const char* method : {"GetStatus", "WatchStatus", "GetPolicy", "SetMode", "GetMonitorHistory"}) {
    EXPECT_NE((*cadence)->FindMethodByName(method), nullptr) << method;
  }
  EXPECT_TRUE((*cadence)->FindMethodByName("WatchStatus")->server_streaming());
  EXPECT_FALSE((*cadence)->FindMethodByName("WatchStatus")->client_streaming());
}

TEST_F(ReflectionTest, CallsWorkWithJsonLikeGrpcurl) {
  auto ack = client_->CallUnary("clm.v1.TradeIngest", "Record", R"json({
      "batchId": "1",
      "trades": [{"tradeId": "t-1", "symbol": "BTCUSDT", "modelId": "ensemble", "confidence": 0.65,
                  "outcome": "WIN", "pnl": 12.5, "closedAt": "2026-01-02T03:04:05Z",
                  "modelConfidences": {"xgboost": 0.7}}]})json");
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(*ack, R"({"batchId":"1","accepted":1})");

  auto summary = client_->CallUnary("clm.v1.TradeIngest", "GetDatasetSummary", "{}");
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_NE(summary->find(R"("total":"1")"), std::string::npos) << *summary;
  EXPECT_NE(summary->find(R"("tradesPerSymbol":{"BTCUSDT":"1"})"), std::string::npos) << *summary;

  auto dead = client_->CallUnary("clm.v1.TradeIngest", "ListDeadLetters", "{}");
  ASSERT_TRUE(dead.ok()) << dead.status();
  EXPECT_EQ(*dead, "{}");

  auto health = client_->CallUnary("grpc.health.v1.Health", "Check", "{}");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, R"({"status":"SERVING"})");

  // The bidirectional Ingest stream, as `grpcurl -d @` feeds it: two batches in, two acks out, in order.
  auto acks = client_->CallStream(
      "clm.v1.TradeIngest", "Ingest",
      {R"({"batchId": "7", "trades": [{"tradeId": "s-1", "symbol": "ETHUSDT", "confidence": 0.4,
           "outcome": "LOSS", "pnl": -3, "closedAt": "2026-01-02T04:00:00Z"}]})",
       R"({"batchId": "8", "trades": [{"tradeId": "t-1", "symbol": "BTCUSDT", "modelId": "ensemble",
           "confidence": 0.65, "outcome": "WIN", "pnl": 12.5, "closedAt": "2026-01-02T03:04:05Z",
           "modelConfidences": {"xgboost": 0.7}}]})"});
  ASSERT_TRUE(acks.ok()) << acks.status();
  ASSERT_EQ(acks->size(), 2u);
  EXPECT_EQ((*acks)[0], R"({"batchId":"7","accepted":1})");
  EXPECT_EQ((*acks)[1], R"({"batchId":"8","duplicates":1})");

  auto invalid = client_->CallUnary("clm.v1.TradeIngest", "Record", R"({"trades": []})");
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clm
