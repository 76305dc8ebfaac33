// WatchActiveSource + CalibrationCache against the real server in-process: the cache follows approvals and
// rollbacks made through the Deployment service.
#include "client/lib/watch_active_source.h"

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "client/lib/calibration_cache.h"
#include "clm/v1/deployment.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/client/deployable_server.h"

namespace clm::client {
namespace {

// Polls `done` until it holds or `timeout` passes; returns whether it held.
bool Eventually(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

class WatchActiveSourceTest : public clm::testing::DeployableServerTest {
 protected:
  void SetUp() override {
    DeployableServerTest::SetUp();
    deployment_ = clm::v1::Deployment::NewStub(channel_);
  }

  grpc::Status Approve(const std::string& job, clm::v1::DeploymentStage stage, bool skip_shadow = false) {
    grpc::ClientContext context;
    clm::v1::ApproveRequest request;
    request.set_job_id(job);
    request.set_stage(stage);
    request.set_skip_shadow(skip_shadow);
    request.set_approver("alice");
    request.set_reason("test");
    clm::v1::DeploymentVersion version;
    return deployment_->Approve(&context, request, &version);
  }

  grpc::Status RollbackToIdentity() {
    grpc::ClientContext context;
    clm::v1::RollbackRequest request;
    request.set_approver("bob");
    request.set_reason("test");
    request.set_to_identity(true);
    clm::v1::ActiveCalibration active;
    return deployment_->Rollback(&context, request, &active);
  }

  std::unique_ptr<clm::v1::Deployment::Stub> deployment_;
};

TEST_F(WatchActiveSourceTest, CacheFollowsApproveIntoProductionAndRollbackToIdentity) {
  CalibrationCache cache;
  auto source = std::make_unique<WatchActiveSource>(channel_);
  WatchActiveSource* watch = source.get();
  ASSERT_TRUE(cache.Follow(std::move(source)).ok());
  // The current state first: nothing in production, raw confidences.
  ASSERT_TRUE(Eventually([&] { return watch->stats().delivered == 1; }));
  EXPECT_FALSE(cache.active());
  EXPECT_EQ(cache.Apply(0.60), 0.60);

  const std::string job = PrepareDeployableJob();
  // Shadow does not affect the engine: received, not delivered.
  ASSERT_TRUE(Approve(job, clm::v1::STAGE_SHADOW).ok());
  ASSERT_TRUE(Eventually([&] { return watch->stats().received == 2; }));
  EXPECT_EQ(watch->stats().delivered, 1u);
  EXPECT_FALSE(cache.active());

  // Production after shadow evidence: live trades of the same engine, scored by the shadow map.
  EXPECT_EQ(Approve(job, clm::v1::STAGE_PRODUCTION).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  RecordTrades("live", 150, absl::Minutes(1), 17);
  grpc::Status status = Approve(job, clm::v1::STAGE_PRODUCTION);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(Eventually([&] { return cache.active(); })) << "the cache never applied the production map";
  EXPECT_LT(cache.Apply(0.60), 0.55) << "the over-confident 0.60 is calibrated down";
  EXPECT_EQ(watch->stats().production_version, 2u);
  EXPECT_EQ(cache.label().rfind("production v2 ", 0), 0u) << cache.label();
  EXPECT_TRUE(cache.last_error().ok()) << cache.last_error();

  ASSERT_TRUE(RollbackToIdentity().ok());
  ASSERT_TRUE(Eventually([&] { return !cache.active(); })) << "the cache kept the rolled-back map";
  EXPECT_EQ(cache.Apply(0.60), 0.60);
  EXPECT_EQ(watch->stats().production_version, 0u);
  EXPECT_EQ(watch->stats().reconnects, 0u);
}

// The engine applies exactly what the server would: for every symbol and model slice of the deployed
// version and for the global map, the cache and Deployment.Calibrate agree to 1e-12 on the probability
// and on both bounds.
TEST_F(WatchActiveSourceTest, CacheAgreesWithCalibrateOnEverySliceAndBound) {
  for (auto method : {clm::v1::ISOTONIC, clm::v1::VENN_ABERS, clm::v1::PLATT}) {
    SCOPED_TRACE(clm::v1::CalibrationMethod_Name(method));
    CalibrationCache cache;
    auto source = std::make_unique<WatchActiveSource>(channel_);
    WatchActiveSource* watch = source.get();
    ASSERT_TRUE(cache.Follow(std::move(source)).ok());
    const std::string job = PrepareDeployableJob(/*sliced=*/true, method);
    grpc::Status status = Approve(job, clm::v1::STAGE_PRODUCTION, /*skip_shadow=*/true);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_TRUE(Eventually([&] { return cache.active() && watch->stats().production_version > 0; }));

    grpc::ClientContext active_context;
    clm::v1::ActiveCalibration active;
    ASSERT_TRUE(deployment_->GetActive(&active_context, clm::v1::GetActiveRequest(), &active).ok());
    int own_maps = 0;
    for (const auto& slice : active.symbol_maps()) own_maps += slice.uses_global_map() ? 0 : 1;
    for (const auto& slice : active.model_maps()) own_maps += slice.uses_global_map() ? 0 : 1;
    EXPECT_EQ(own_maps, 5) << "three symbols and two models, each with its own map";

    for (const std::string symbol : {"BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT", ""}) {
      for (const std::string model : {"xgboost", "lightgbm", "other", ""}) {
        clm::v1::CalibrateRequest request;
        request.set_symbol(symbol);
        request.set_model_id(model);
        for (int i = 0; i <= 1000; ++i) request.add_confidences(i / 1000.0);
        request.add_confidences(0.6180339887498949);
        grpc::ClientContext context;
        clm::v1::CalibrateResponse response;
        ASSERT_TRUE(deployment_->Calibrate(&context, request, &response).ok());
        EXPECT_EQ(response.version(), active.production_version());
        for (int i = 0; i < request.confidences_size(); ++i) {
          const calibration::Calibrated local = cache.Apply(request.confidences(i), symbol, model);
          ASSERT_NEAR(local.probability, response.calibrated(i), 1e-12) << symbol << "/" << model << " " << i;
          ASSERT_NEAR(local.lower, response.lower(i), 1e-12) << symbol << "/" << model << " " << i;
          ASSERT_NEAR(local.upper, response.upper(i), 1e-12) << symbol << "/" << model << " " << i;
          ASSERT_GT(local.probability, 0.0);
          ASSERT_LT(local.probability, 1.0);
        }
      }
    }
    ASSERT_TRUE(RollbackToIdentity().ok());
  }
}

TEST_F(WatchActiveSourceTest, ReconnectsAfterTheServerGoesAwayAndStopsCleanly) {
  std::atomic<int> updates{0};
  auto source = std::make_unique<WatchActiveSource>(
      grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()),
      WatchActiveSource::Options{absl::Milliseconds(10), absl::Milliseconds(50), {}});
  ASSERT_TRUE(source->Start([&updates](const CalibrationUpdate&) { ++updates; }).ok());
  EXPECT_FALSE(source->Start([](const CalibrationUpdate&) {}).ok()) << "a second Start is refused";
  ASSERT_TRUE(Eventually([&] { return source->stats().reconnects >= 3; })) << "no reconnect attempts";
  EXPECT_FALSE(source->stats().last_error.empty());
  EXPECT_FALSE(source->stats().connected);
  source->Stop();
  EXPECT_EQ(updates.load(), 0);

  // Against a live server: a delivery, then the server shuts down with the stream open; the destructor
  // (not an explicit Stop) ends the reconnect loop.
  {
    WatchActiveSource live(channel_, WatchActiveSource::Options{absl::Milliseconds(10), absl::Milliseconds(50), {}});
    ASSERT_TRUE(live.Start([&updates](const CalibrationUpdate&) { ++updates; }).ok());
    ASSERT_TRUE(Eventually([&] { return updates.load() == 1; }));
    EXPECT_TRUE(live.stats().connected);
    server_.reset();
    ASSERT_TRUE(Eventually([&] { return live.stats().reconnects >= 2; }));
    EXPECT_EQ(updates.load(), 1);
  }
}

}  // namespace
}  // namespace clm::client
