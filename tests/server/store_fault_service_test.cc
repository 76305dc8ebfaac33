// Storage faults seen from a client: the real Server in-process on 127.0.0.1:0, its store on the
// fault-injecting VFS (tests/testing/faulty_vfs). During an injected I/O error or a full disk an Ingest
// batch gets no ack but a clear status, the health service says NOT_SERVING (overall and per service) and
// /metrics says why; once the fault goes health is SERVING again and the resent batch is stored once.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lib/config/config.h"
#include "server/server.h"
#include "tests/testing/faulty_vfs.h"
#include "tests/testing/test_util.h"

namespace clm::server {
namespace {

using clm::testing::FaultyVfs;
using clm::v1::IngestAck;
using clm::v1::IngestRequest;
using grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

// The body of GET /metrics on 127.0.0.1:`port`.
std::string ScrapeMetrics(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) response.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return response;
}

IngestRequest Batch(uint64_t batch_id, int trades) {
  IngestRequest request;
  request.set_batch_id(batch_id);
  for (int i = 0; i < trades; ++i) {
    *request.add_trades() = clm::testing::MakeTrade(absl::StrCat("fault-", batch_id, "-", i), 0.5 + 0.01 * i);
  }
  return request;
}

class StoreFaultServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FaultyVfs::Set(FaultyVfs::Fault::kNone);
    Server::Options options;
    options.grpc_address = "127.0.0.1:0";
    options.metrics_address = "127.0.0.1:0";
    options.data_dir = dir_.path();
    options.sqlite_vfs = FaultyVfs::Name();
    options.health_address = "127.0.0.1:0";  // the probe port follows the store too
    absl::StatusOr<clm::v1::ServerConfig> config = config::ResolveServerConfig(clm::v1::ServerConfig());
    ASSERT_TRUE(config.ok()) << config.status();
    options.config = *config;
    options.shutdown_grace = absl::Seconds(2);
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = clm::v1::TradeIngest::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
    probe_ = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->health_port()), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    FaultyVfs::Set(FaultyVfs::Fault::kNone);
    health_.reset();
    probe_.reset();
    stub_.reset();
    channel_.reset();
    server_.reset();
  }

  // Sends one batch on a fresh Ingest stream; the ack, if any, and the stream's status.
  grpc::Status IngestOne(const IngestRequest& batch, std::optional<IngestAck>* ack) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto stream = stub_->Ingest(&context);
    EXPECT_TRUE(stream->Write(batch));
    stream->WritesDone();
    IngestAck received;
    ack->reset();
    while (stream->Read(&received)) *ack = received;
    return stream->Finish();
  }

  // The main port's health; with `probe`, the plaintext probe port's.
  HealthCheckResponse::ServingStatus Health(const std::string& service, bool probe = false) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::Status status = (probe ? probe_ : health_)->Check(&context, request, &response);
    EXPECT_TRUE(status.ok()) << service << ": " << status.error_message();
    return response.status();
  }

  // Polls until the overall and the TradeIngest health are `want`; false after 10 s.
  bool HealthBecomes(HealthCheckResponse::ServingStatus want) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (Health("") == want && Health("clm.v1.TradeIngest") == want && Health("", true) == want &&
          Health("clm.v1.TradeIngest", true) == want) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  // Asserts the whole fault cycle for one kind of fault.
  void FaultAndRecover(FaultyVfs::Fault fault, grpc::StatusCode code, const std::string& says,
                       const std::string& metric_kind) {
    std::optional<IngestAck> ack;
    ASSERT_TRUE(IngestOne(Batch(1, 10), &ack).ok());
    ASSERT_TRUE(ack.has_value());
    EXPECT_EQ(Health("clm.v1.CalibrationJob"), HealthCheckResponse::SERVING);

    FaultyVfs::Set(fault);
    const IngestRequest batch = Batch(2, 25);
    grpc::Status status = IngestOne(batch, &ack);
    EXPECT_FALSE(ack.has_value()) << "a batch was acknowledged during the fault";
    EXPECT_EQ(status.error_code(), code) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("batch 2 was not stored and may be resent: the store "));
    EXPECT_THAT(status.error_message(), HasSubstr(dir_.path() + "/clm.db"));
    EXPECT_THAT(status.error_message(), HasSubstr(says));

    ASSERT_TRUE(HealthBecomes(HealthCheckResponse::NOT_SERVING)) << "health stayed SERVING on a broken store";
    EXPECT_EQ(Health("clm.v1.Deployment"), HealthCheckResponse::NOT_SERVING);
    std::string metrics = ScrapeMetrics(server_->metrics_port());
    EXPECT_THAT(metrics, HasSubstr("\nclm_store_healthy 0\n"));
    EXPECT_THAT(metrics, HasSubstr(absl::StrCat("clm_store_errors_total{kind=\"", metric_kind, "\"} ")));
    EXPECT_THAT(metrics, ::testing::Not(HasSubstr(absl::StrCat("clm_store_errors_total{kind=\"", metric_kind,
                                                              "\"} 0\n"))));
    // Reads still work while writes do not.
    grpc::ClientContext summary_context;
    clm::v1::DatasetSummary summary;
    ASSERT_TRUE(stub_->GetDatasetSummary(&summary_context, clm::v1::GetDatasetSummaryRequest(), &summary).ok());
    EXPECT_EQ(summary.total(), 10u);

    FaultyVfs::Set(FaultyVfs::Fault::kNone);
    ASSERT_TRUE(HealthBecomes(HealthCheckResponse::SERVING)) << "health did not come back after the fault";
    EXPECT_THAT(ScrapeMetrics(server_->metrics_port()), HasSubstr("\nclm_store_healthy 1\n"));
    status = IngestOne(batch, &ack);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_TRUE(ack.has_value());
    EXPECT_EQ(ack->accepted(), 25u);
    EXPECT_EQ(ack->duplicates(), 0u);
    ASSERT_TRUE(IngestOne(batch, &ack).ok());
    EXPECT_EQ(ack->duplicates(), 25u) << "the resent batch was stored twice";
  }

  clm::testing::TempDir dir_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<clm::v1::TradeIngest::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::unique_ptr<grpc::health::v1::Health::Stub> probe_;
};

TEST_F(StoreFaultServiceTest, IoErrorDuringIngestIsUnavailableNotServingThenRecovers) {
  FaultAndRecover(FaultyVfs::Fault::kIoError, grpc::StatusCode::UNAVAILABLE, "hit an I/O error", "io_error");
}

TEST_F(StoreFaultServiceTest, DiskFullDuringIngestIsResourceExhaustedNotServingThenRecovers) {
  FaultAndRecover(FaultyVfs::Fault::kDiskFull, grpc::StatusCode::RESOURCE_EXHAUSTED,
                  "is out of disk space (database or disk is full); free space on the filesystem", "disk_full");
}

TEST_F(StoreFaultServiceTest, RecordDuringTheFaultIsRefusedAndAGracefulStopStillWorks) {
  FaultyVfs::Set(FaultyVfs::Fault::kIoError);
  clm::v1::RecordRequest request;
  request.set_batch_id(7);
  *request.mutable_trades() = Batch(7, 3).trades();
  grpc::ClientContext context;
  IngestAck ack;
  grpc::Status status = stub_->Record(&context, request, &ack);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("batch 7 was not stored and may be resent"));
  ASSERT_TRUE(HealthBecomes(HealthCheckResponse::NOT_SERVING));
  FaultyVfs::Set(FaultyVfs::Fault::kNone);
  ASSERT_TRUE(HealthBecomes(HealthCheckResponse::SERVING));
  // A graceful stop still works after a fault, and the store closes cleanly.
  health_.reset();
  stub_.reset();
  channel_.reset();
  server_->Shutdown();
}

}  // namespace
}  // namespace clm::server
