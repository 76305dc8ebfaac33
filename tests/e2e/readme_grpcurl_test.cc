// Runs the README's grpcurl section against the real clm-server binary, command by command, through a
// reflection-only client (what grpcurl does), so the documented commands cannot rot.
#include <signal.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/testing/reflection_client.h"
#include "tests/testing/test_util.h"

namespace clm {
namespace {

// The README's example job id (the audit report's), replaced by the id Submit returns.
constexpr char kExampleJobId[] = "cal_20260209_215107";

std::vector<std::string> ReadmeCommands(const std::string& begin_marker = "<!-- grpcurl:begin -->",
                                        const std::string& end_marker = "<!-- grpcurl:end -->") {
  std::ifstream in(CLM_README_PATH);
  std::stringstream text;
  text << in.rdbuf();
  std::string readme = text.str();
  const size_t begin = readme.find(begin_marker);
  const size_t end = readme.find(end_marker);
  std::vector<std::string> commands;
  if (begin == std::string::npos || end == std::string::npos) return commands;
  std::istringstream section(readme.substr(begin, end - begin));
  std::string line;
  while (std::getline(section, line)) {
    if (absl::StartsWith(line, "grpcurl ")) commands.push_back(line);
  }
  return commands;
}

// Splits a command line into words; single quotes group, as in a shell.
std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool quoted = false, any = false;
  for (char c : line) {
    if (c == '\'') {
      quoted = !quoted;
      any = true;
    } else if (c == ' ' && !quoted) {
      if (any) words.push_back(word);
      word.clear();
      any = false;
    } else {
      word += c;
      any = true;
    }
  }
  if (any) words.push_back(word);
  return words;
}

TEST(ReadmeGrpcurlTest, EveryDocumentedCommandWorks) {
  std::vector<std::string> commands = ReadmeCommands();
  ASSERT_GE(commands.size(), 10u) << "the README's grpcurl section is missing or was not found";

  clm::testing::TempDir dir;
  clm::testing::ServerProcess server(CLM_SERVER_BINARY, dir.path());
  ASSERT_TRUE(server.WaitUntilServing());
  auto client = std::make_unique<clm::testing::ReflectionClient>(
      grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));

  std::string job_id;
  for (std::string command : commands) {
    if (!job_id.empty()) command = absl::StrReplaceAll(command, {{kExampleJobId, job_id}});
    SCOPED_TRACE(command);
    std::vector<std::string> words = Words(command);
    ASSERT_GE(words.size(), 3u);
    ASSERT_EQ(words[1], "-plaintext");
    std::string json = "{}";
    size_t i = 2;
    if (words[i] == "-d") {
      json = words[i + 1];
      i += 2;
    }
    ASSERT_EQ(words[i], "127.0.0.1:8003") << "commands use the default address";
    ++i;
    ASSERT_LT(i, words.size());
    if (words[i] == "list") {
      auto services = client->ListServices();
      ASSERT_TRUE(services.ok()) << services.status();
      EXPECT_GE(services->size(), 3u);
      continue;
    }
    if (words[i] == "describe") {
      ASSERT_LT(i + 1, words.size());
      auto service = client->DescribeService(words[i + 1]);
      ASSERT_TRUE(service.ok()) << service.status();
      continue;
    }
    const size_t slash = words[i].find('/');
    ASSERT_NE(slash, std::string::npos);
    const std::string service_name = words[i].substr(0, slash);
    const std::string method_name = words[i].substr(slash + 1);
    auto service = client->DescribeService(service_name);
    ASSERT_TRUE(service.ok()) << service.status();
    const auto* method = (*service)->FindMethodByName(method_name);
    ASSERT_NE(method, nullptr) << method_name;
    std::string response;
    if (method->server_streaming() || method->client_streaming()) {
      // A job's Watch ends with the job; a status watch never ends, so the first report is enough.
      const bool ends_by_itself = method->client_streaming() || service_name == "clm.v1.CalibrationJob";
      auto responses = client->CallStream(service_name, method_name, {json}, ends_by_itself ? SIZE_MAX : 1);
      ASSERT_TRUE(responses.ok()) << responses.status();
      ASSERT_FALSE(responses->empty());
      response = responses->back();
    } else {
      auto answer = client->CallUnary(service_name, method_name, json);
      ASSERT_TRUE(answer.ok()) << answer.status();
      response = *answer;
    }
    if (method_name == "Submit") {
      const size_t at = response.find(R"("id":")");
      ASSERT_NE(at, std::string::npos) << response;
      job_id = response.substr(at + 6, response.find('"', at + 6) - at - 6);
    }
    if (method_name == "Watch") {
      EXPECT_NE(response.find(R"("state":"SUCCEEDED")"), std::string::npos) << response;
    }
    if (method_name == "Record" || method_name == "Ingest") {
      EXPECT_NE(response.find(R"("accepted":1)"), std::string::npos) << response;
    }
  }
  EXPECT_FALSE(job_id.empty()) << "the section never submits a job";

  // The commands that change deployments: each names a real method and parses as its request.
  std::vector<std::string> syntax_only = ReadmeCommands("<!-- grpcurl:syntax-begin -->", "<!-- grpcurl:syntax-end -->");
  EXPECT_GE(syntax_only.size(), 3u);
  for (const std::string& command : syntax_only) {
    SCOPED_TRACE(command);
    std::vector<std::string> words = Words(command);
    ASSERT_EQ(words.size(), 6u);
    ASSERT_EQ(words[2], "-d");
    const size_t slash = words[5].find('/');
    ASSERT_NE(slash, std::string::npos);
    absl::Status valid = client->ValidateRequest(words[5].substr(0, slash), words[5].substr(slash + 1), words[3]);
    EXPECT_TRUE(valid.ok()) << valid;
  }
  client.reset();
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace clm
