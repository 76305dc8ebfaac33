// A real full disk under the real clm-server binary. Two ways to run out of room:
// - RLIMIT_FSIZE set on the running server with prlimit(2) (no privileges needed, runs everywhere): writes past
//   the limit fail with EFBIG, which the server must survive (it ignores SIGXFSZ) and report as disk full;
// - a small tmpfs filled to the last byte by a ballast file (needs CAP_SYS_ADMIN to mount; skipped without).
// Either way: the batch that does not fit gets no ack but RESOURCE_EXHAUSTED, health turns NOT_SERVING, and
// once there is room again health is SERVING, the resent batch is stored, and after a restart every
// acknowledged trade is there exactly once.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace clm {
namespace {

using clm::testing::ServerProcess;
using grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

clm::v1::RecordRequest Batch(uint64_t batch_id, int trades) {
  clm::v1::RecordRequest request;
  request.set_batch_id(batch_id);
  for (int i = 0; i < trades; ++i) {
    *request.add_trades() = clm::testing::MakeTrade(absl::StrCat("full-", batch_id, "-", i), 0.3 + 0.005 * (i % 100));
  }
  return request;
}

// One client of a running server, keeping every batch it got an ack for.
class Client {
 public:
  explicit Client(const std::string& address)
      : channel_(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
        stub_(clm::v1::TradeIngest::NewStub(channel_)),
        health_(grpc::health::v1::Health::NewStub(channel_)) {}

  grpc::Status Record(const clm::v1::RecordRequest& batch, clm::v1::IngestAck* ack) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    grpc::Status status = stub_->Record(&context, batch, ack);
    if (status.ok()) acked_.push_back(batch);
    return status;
  }

  // Polls the overall health until it is `want`; false after 15 s.
  bool HealthBecomes(HealthCheckResponse::ServingStatus want) {
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (absl::Now() < deadline) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      HealthCheckResponse response;
      if (health_->Check(&context, grpc::health::v1::HealthCheckRequest(), &response).ok() &&
          response.status() == want) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  uint64_t StoredTotal() {
    grpc::ClientContext context;
    clm::v1::DatasetSummary summary;
    grpc::Status status = stub_->GetDatasetSummary(&context, clm::v1::GetDatasetSummaryRequest(), &summary);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return summary.total();
  }

  const std::vector<clm::v1::RecordRequest>& acked() const { return acked_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<clm::v1::TradeIngest::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::vector<clm::v1::RecordRequest> acked_;
};

// After a restart on `data_dir`, every acknowledged trade is stored exactly once.
void ExpectEveryAcknowledgedTradeOnceAfterRestart(const std::string& data_dir,
                                                  const std::vector<clm::v1::RecordRequest>& acked) {
  ServerProcess server(CLM_SERVER_BINARY, data_dir);
  ASSERT_TRUE(server.WaitUntilServing()) << "the server did not restart";
  uint64_t trades = 0;
  {
    Client client(server.address());
    for (const clm::v1::RecordRequest& batch : acked) {
      clm::v1::IngestAck ack;
      grpc::Status status = client.Record(batch, &ack);
      ASSERT_TRUE(status.ok()) << status.error_message();
      EXPECT_EQ(ack.accepted(), 0u) << "an acknowledged trade of batch " << batch.batch_id() << " was lost";
      EXPECT_EQ(ack.duplicates(), static_cast<uint32_t>(batch.trades_size()));
      trades += static_cast<uint64_t>(batch.trades_size());
    }
    EXPECT_EQ(client.StoredTotal(), trades) << "stored trades differ from the acknowledged ones";
  }
  EXPECT_EQ(server.Stop(), 0);
}

bool Alive(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, WNOHANG) == 0;
}

TEST(DiskFullTest, FileSizeLimitIsDiskFullNotServingAndRecoversWhenRaised) {
  clm::testing::TempDir dir;
  std::vector<clm::v1::RecordRequest> acked;
  {
    ServerProcess server(CLM_SERVER_BINARY, dir.path());
    ASSERT_TRUE(server.WaitUntilServing());
    Client client(server.address());
    clm::v1::IngestAck ack;
    ASSERT_TRUE(client.Record(Batch(1, 50), &ack).ok());

    // Only the soft limit: an unprivileged process may raise it back up to the hard one.
    rlimit before = {};
    ASSERT_EQ(prlimit(server.pid(), RLIMIT_FSIZE, nullptr, &before), 0) << std::strerror(errno);
    rlimit tiny = before;
    tiny.rlim_cur = 1024;  // below one page of the write-ahead log: no commit fits
    ASSERT_EQ(prlimit(server.pid(), RLIMIT_FSIZE, &tiny, nullptr), 0) << std::strerror(errno);

    const clm::v1::RecordRequest batch = Batch(2, 50);
    grpc::Status status = client.Record(batch, &ack);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("batch 2 was not stored and may be resent: the store "));
    EXPECT_THAT(status.error_message(), HasSubstr("is out of disk space (File too large)"));
    ASSERT_TRUE(client.HealthBecomes(HealthCheckResponse::NOT_SERVING));
    EXPECT_TRUE(Alive(server.pid())) << "SIGXFSZ killed the server";
    EXPECT_EQ(client.StoredTotal(), 50u) << "reads must go on while writes fail";

    ASSERT_EQ(prlimit(server.pid(), RLIMIT_FSIZE, &before, nullptr), 0) << std::strerror(errno);
    ASSERT_TRUE(client.HealthBecomes(HealthCheckResponse::SERVING)) << "health did not recover";
    status = client.Record(batch, &ack);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(ack.accepted(), 50u);
    acked = client.acked();
    EXPECT_EQ(server.Stop(), 0) << "graceful stop after the fault failed";
  }
  ExpectEveryAcknowledgedTradeOnceAfterRestart(dir.path(), acked);
}

// A tmpfs of its own, unmounted by the destructor.
class SmallFilesystem {
 public:
  SmallFilesystem(const std::string& path, const std::string& size) : path_(path) {
    mkdir(path.c_str(), 0700);
    const std::string options = "size=" + size + ",mode=0700";
    if (mount("clm-test", path.c_str(), "tmpfs", 0, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~SmallFilesystem() {
    if (mounted_) umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

// Fills the filesystem of `path` to the last byte. Returns false when it could not.
bool FillWithBallast(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return false;
  std::vector<char> chunk(1 << 20, 'x');
  size_t size = chunk.size();
  while (size > 0) {
    ssize_t n = write(fd, chunk.data(), size);
    if (n < 0 && errno == ENOSPC) {
      size /= 2;  // finish with ever smaller writes, down to the last byte
    } else if (n < 0) {
      close(fd);
      return false;
    }
  }
  close(fd);
  return true;
}

TEST(DiskFullTest, FullFilesystemIsResourceExhaustedNotServingAndRecoversWhenSpaceIsFreed) {
  clm::testing::TempDir dir;
  const std::string data_dir = dir.path() + "/small";
  SmallFilesystem fs(data_dir, "32m");
  if (!fs.mounted()) {
    GTEST_SKIP() << "cannot mount a 32 MiB tmpfs at " << data_dir << " (" << fs.error()
                 << "; needs CAP_SYS_ADMIN). The RLIMIT_FSIZE test covers disk full without privileges.";
  }
  std::vector<clm::v1::RecordRequest> acked;
  {
    ServerProcess server(CLM_SERVER_BINARY, data_dir);
    ASSERT_TRUE(server.WaitUntilServing());
    Client client(server.address());
    clm::v1::IngestAck ack;
    ASSERT_TRUE(client.Record(Batch(1, 100), &ack).ok());

    const std::string ballast = data_dir + "/ballast";
    ASSERT_TRUE(FillWithBallast(ballast)) << std::strerror(errno);
    // The log may still have room for a while; ingest until a commit needs space that is not there.
    grpc::Status status;
    clm::v1::RecordRequest failed;
    for (uint64_t b = 2; b < 500 && status.ok(); ++b) {
      failed = Batch(b, 200);
      status = client.Record(failed, &ack);
    }
    ASSERT_FALSE(status.ok()) << "500 batches fitted on a full filesystem";
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(absl::StrCat("batch ", failed.batch_id(),
                                                               " was not stored and may be resent: the store ",
                                                               data_dir, "/clm.db is out of disk space")));
    ASSERT_TRUE(client.HealthBecomes(HealthCheckResponse::NOT_SERVING));

    ASSERT_EQ(unlink(ballast.c_str()), 0);
    ASSERT_TRUE(client.HealthBecomes(HealthCheckResponse::SERVING)) << "health did not recover";
    status = client.Record(failed, &ack);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(ack.accepted(), 200u);
    acked = client.acked();
    EXPECT_EQ(server.Stop(), 0) << "graceful stop after the fault failed";
  }
  ExpectEveryAcknowledgedTradeOnceAfterRestart(data_dir, acked);
}

}  // namespace
}  // namespace clm
