#ifndef CLM_TESTS_CALIBRATION_REF_DATA_H_
#define CLM_TESTS_CALIBRATION_REF_DATA_H_

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace clm::calibration::testing {

// One reference file of gen_sklearn_refs.py: named sections of rows of doubles.
struct RefFile {
  std::string sklearn_version;
  std::map<std::string, std::vector<std::vector<double>>> sections;

  std::vector<double> Column(const std::string& section, size_t col) const {
    std::vector<double> out;
    for (const auto& row : sections.at(section)) out.push_back(row.at(col));
    return out;
  }
};

inline RefFile LoadRef(const std::string& name) {
  RefFile ref;
  const std::string path = std::string(CLM_TESTDATA_DIR) + "/" + name + ".txt";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::string word;
  in >> word >> ref.sklearn_version;
  std::string title;
  size_t rows = 0;
  while (in >> title >> rows) {
    auto& section = ref.sections[title];
    std::string line;
    std::getline(in, line);
    for (size_t r = 0; r < rows; ++r) {
      std::getline(in, line);
      std::vector<double> row;
      size_t pos = 0;
      while (pos < line.size()) {
        size_t used = 0;
        row.push_back(std::stod(line.substr(pos), &used));
        pos += used;
        while (pos < line.size() && line[pos] == ' ') ++pos;
      }
      section.push_back(row);
    }
  }
  return ref;
}

}  // namespace clm::calibration::testing

#endif  // CLM_TESTS_CALIBRATION_REF_DATA_H_
