#include "lib/store/data_dir_lock.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clm::store {
namespace {

using ::testing::HasSubstr;

class DataDirLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "clm_lock_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  std::filesystem::path root_;
};

TEST_F(DataDirLockTest, SecondAcquireFailsWhileHeldAndSucceedsAfterRelease) {
  const std::string dir = (root_ / "data").string();
  absl::StatusOr<std::unique_ptr<DataDirLock>> first = DataDirLock::Acquire(dir);
  ASSERT_TRUE(first.ok()) << first.status();

  // flock locks belong to the open file description, so a second open in the same process conflicts just as
  // a second server process would.
  absl::StatusOr<std::unique_ptr<DataDirLock>> second = DataDirLock::Acquire(dir);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("is in use by another clm-server"));

  first->reset();
  absl::StatusOr<std::unique_ptr<DataDirLock>> third = DataDirLock::Acquire(dir);
  ASSERT_TRUE(third.ok()) << third.status();
}

TEST_F(DataDirLockTest, CreatesMissingDirectoryAndRecordsPid) {
  const std::filesystem::path dir = root_ / "a" / "b";
  absl::StatusOr<std::unique_ptr<DataDirLock>> lock = DataDirLock::Acquire(dir.string());
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_TRUE(std::filesystem::is_directory(dir));
  std::ifstream in(dir / "LOCK");
  std::string pid;
  std::getline(in, pid);
  EXPECT_EQ(pid, std::to_string(::getpid()));
}

TEST_F(DataDirLockTest, DifferentDirectoriesDoNotConflict) {
  absl::StatusOr<std::unique_ptr<DataDirLock>> a = DataDirLock::Acquire((root_ / "a").string());
  absl::StatusOr<std::unique_ptr<DataDirLock>> b = DataDirLock::Acquire((root_ / "b").string());
  EXPECT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(b.ok()) << b.status();
}

TEST_F(DataDirLockTest, UncreatableDirectoryIsFailedPrecondition) {
  // A regular file where the directory should be.
  const std::filesystem::path file = root_ / "file";
  std::ofstream(file) << "x";
  absl::StatusOr<std::unique_ptr<DataDirLock>> lock = DataDirLock::Acquire((file / "data").string());
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace clm::store
