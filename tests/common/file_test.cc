#include "lib/common/file.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace clm {
namespace {

using ::testing::HasSubstr;

TEST(ReadFileTest, ReturnsTheWholeFileByteForByte) {
  clm::testing::TempDir dir;
  const std::string path = dir.path() + "/f";
  const std::string contents("line 1\nline 2\0binary\r\n", 22);
  std::ofstream(path, std::ios::binary) << contents;
  absl::StatusOr<std::string> read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, contents);
}

TEST(ReadFileTest, AMissingFileIsNotFoundNamingThePath) {
  absl::StatusOr<std::string> read = ReadFile("/nonexistent/clm/file");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(read.status().message(), "/nonexistent/clm/file: cannot read: No such file or directory");
}

TEST(ReadFileTest, ADirectoryIsAFailedPrecondition) {
  clm::testing::TempDir dir;
  absl::StatusOr<std::string> read = ReadFile(dir.path());
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(read.status().message(), HasSubstr(dir.path() + ": cannot read: "));
}

}  // namespace
}  // namespace clm
