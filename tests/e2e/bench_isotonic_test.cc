// clm-bench-isotonic, the binary compare_sklearn.py times against scikit-learn, run on crafted input files:
// a first row is a header only when it is not numeric, and a bad number is an error naming its line.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace clm::testing {
namespace {

struct Outcome {
  int exit_code = -1;
  std::string output;      // standard output and error
  std::string thresholds;  // --output, when written
};

class BenchIsotonicTest : public ::testing::Test {
 protected:
  Outcome RunOn(const std::string& input) {
    const std::string in = dir_.path() + "/in.csv";
    const std::string out = dir_.path() + "/out.csv";
    const std::string log = dir_.path() + "/log.txt";
    std::remove(out.c_str());
    {
      std::ofstream f(in, std::ios::binary | std::ios::trunc);
      f << input;
    }
    Outcome run;
    {
      ChildProcess child({CLM_BENCH_ISOTONIC_BINARY, "--input", in, "--output", out}, log);
      run.exit_code = child.Wait();
    }
    run.output = Slurp(log);
    run.thresholds = Slurp(out);
    return run;
  }

  std::string Path() const { return dir_.path() + "/in.csv"; }

  static std::string Slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  TempDir dir_;
};

TEST_F(BenchIsotonicTest, ANonNumericFirstRowIsAHeader) {
  for (const char* header : {"confidence,label\n", "confidence,label,weight\n", "x , y\r\n", "\n\nc,l\n"}) {
    Outcome run = RunOn(std::string(header) + "0.2,0\n0.4,1\n0.6,0\n0.8,1\n");
    EXPECT_EQ(run.exit_code, 0) << header << run.output;
    EXPECT_NE(run.output.find("n=4\n"), std::string::npos) << header << run.output;
  }
}

TEST_F(BenchIsotonicTest, ANumericFirstRowIsData) {
  Outcome run = RunOn("0.2,0\n0.4,1\n0.6,0\n0.8,1\n");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("n=4\n"), std::string::npos) << run.output;
  // The first row counts: without it the fit would start at 0.4.
  EXPECT_EQ(run.thresholds.rfind("0.2,", 0), 0u) << run.thresholds;

  run = RunOn("0.2,0,2.5\n0.4,1\n0.6,0,0.5\n\n0.8,1\n");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("n=4\n"), std::string::npos) << run.output;
}

TEST_F(BenchIsotonicTest, ABadNumberIsAnErrorNamingTheLine) {
  struct Case {
    std::string input;
    std::string error;
  };
  const std::vector<Case> cases = {
      // A first row that begins like a number is data, so its bad number is an error, not a header.
      {"0.5x,1\n0.6,0\n", ":1: confidence \"0.5x\" is not a number"},
      {"0.5,1x\n0.6,0\n", ":1: label \"1x\" is not a number"},
      {"confidence,label\n0.2,0\n0.3,oops\n", ":3: label \"oops\" is not a number"},
      {"0.2,0\n0.3,1\n\n0.4,1,heavy\n", ":4: weight \"heavy\" is not a number"},
      {"0.2,0\n0.3\n", ":2: expected confidence,label[,weight], got 1 field"},
      {"0.2,0\n0.3,1,1,1\n", ":2: expected confidence,label[,weight], got 4 fields"},
      {"0.2,0\nconfidence,label\n", ":2: confidence \"confidence\" is not a number"},
      {"0.2,0\n,1\n", ":2: confidence \"\" is not a number"},
  };
  for (const Case& c : cases) {
    Outcome run = RunOn(c.input);
    EXPECT_EQ(run.exit_code, 1) << c.input;
    EXPECT_NE(run.output.find(Path() + c.error), std::string::npos) << c.input << "\ngot: " << run.output;
    EXPECT_TRUE(run.thresholds.empty()) << c.input;
  }
  Outcome header_only = RunOn("confidence,label\n");
  EXPECT_EQ(header_only.exit_code, 1);
  EXPECT_NE(header_only.output.find(Path() + ": no data rows"), std::string::npos) << header_only.output;
}

}  // namespace
}  // namespace clm::testing
