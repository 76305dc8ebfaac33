// clm-bench-isotonic --input IN.csv --output OUT.csv [--predictions PRED.csv] [--repeats N]
//
// Reads rows "confidence,label[,weight]", fits the isotonic map, predicts
// every input row, writes the thresholds as "x,y" rows to OUT.csv (and the predictions, one per line in input
// order, to PRED.csv when asked), and prints fit_predict_seconds=X: the time of fit + predict only, without
// any I/O, so it compares with timing sklearn's fit + predict on arrays already in memory. With --repeats N
// the fit + predict runs N times with one IsotonicFitter (as a service refitting would) and the fastest run
// is printed, like compare_sklearn.py keeps sklearn's fastest of N; fit_predict_seconds_first is the first,
// cold run, which also pays for first-touching its buffers.
//
// The first non-blank line is a header, and skipped, only when none of its fields begins like a number
// ("confidence,label,weight"); any other line must be a row whose every field is a whole number, or the
// program stops with exit code 1 and "IN.csv:LINE: ..." naming the field. Blank lines are skipped.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "lib/calibration/isotonic.h"

namespace {

int Usage() {
  std::cerr << "usage: clm-bench-isotonic --input IN.csv --output OUT.csv [--predictions PRED.csv] [--repeats N]\n";
  return 2;
}

constexpr const char* kColumns[] = {"confidence", "label", "weight"};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// The comma-separated fields of a line, without surrounding spaces, tabs or carriage returns.
std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    std::string_view f = line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!f.empty() && IsSpace(f.front())) f.remove_prefix(1);
    while (!f.empty() && IsSpace(f.back())) f.remove_suffix(1);
    out.push_back(f);
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

// True when the field begins like a number ("0.5", "0.5x", "-1", "nan"), whether or not it is one.
bool BeginsLikeANumber(std::string_view f) {
  double ignored;
  return std::from_chars(f.data(), f.data() + f.size(), ignored).ec == std::errc();
}

// The whole field as a number; false for anything else, including trailing garbage ("0.5x").
bool ParseNumber(std::string_view f, double* out) {
  const auto [next, ec] = std::from_chars(f.data(), f.data() + f.size(), *out);
  return ec == std::errc() && next == f.data() + f.size();
}

bool ReadFile(const std::string& path, std::string* content) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *content = ss.str();
  return true;
}

bool WriteRows(const std::string& path, const std::vector<double>& a, const std::vector<double>* b) {
  std::string out;
  out.reserve(a.size() * (b ? 48 : 24));
  char buf[64];
  for (size_t i = 0; i < a.size(); ++i) {
    char* e = std::to_chars(buf, buf + sizeof buf, a[i]).ptr;
    if (b) {
      *e++ = ',';
      e = std::to_chars(e, buf + sizeof buf, (*b)[i]).ptr;
    }
    *e++ = '\n';
    out.append(buf, e);
  }
  std::ofstream f(path, std::ios::binary);
  f << out;
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  std::string input, output, predictions;
  int repeats = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return Usage();
    if (arg == "--input") {
      input = argv[++i];
    } else if (arg == "--output") {
      output = argv[++i];
    } else if (arg == "--predictions") {
      predictions = argv[++i];
    } else if (arg == "--repeats") {
      repeats = std::atoi(argv[++i]);
      if (repeats < 1 || repeats > 1000) {
        std::cerr << "--repeats: must be within [1, 1000]\n";
        return 2;
      }
    } else {
      return Usage();
    }
  }
  if (input.empty() || output.empty()) return Usage();

  std::string content;
  if (!ReadFile(input, &content)) {
    std::cerr << "--input: cannot read " << input << "\n";
    return 1;
  }
  std::vector<double> x, y, w;
  bool weighted = false;
  const char* p = content.data();
  const char* const end = p + content.size();
  size_t line_no = 0;
  bool first_row = true;
  while (p < end) {
    const char* eol = static_cast<const char*>(std::memchr(p, '\n', end - p));
    if (eol == nullptr) eol = end;
    ++line_no;
    const std::string_view line(p, eol - p);
    p = eol + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::vector<std::string_view> fields = Fields(line);
    if (first_row) {
      first_row = false;
      if (std::none_of(fields.begin(), fields.end(), BeginsLikeANumber)) continue;  // a header
    }
    if (fields.size() < 2 || fields.size() > 3) {
      std::cerr << input << ":" << line_no << ": expected confidence,label[,weight], got " << fields.size()
                << (fields.size() == 1 ? " field" : " fields") << "\n";
      return 1;
    }
    double v[3] = {0.0, 0.0, 1.0};
    for (size_t i = 0; i < fields.size(); ++i) {
      if (!ParseNumber(fields[i], &v[i])) {
        std::cerr << input << ":" << line_no << ": " << kColumns[i] << " \"" << fields[i]
                  << "\" is not a number\n";
        return 1;
      }
    }
    if (fields.size() == 3 && !weighted) {
      weighted = true;
      w.assign(x.size(), 1.0);
    }
    x.push_back(v[0]);
    y.push_back(v[1]);
    if (weighted) w.push_back(v[2]);
  }
  if (x.empty()) {
    std::cerr << input << ": no data rows\n";
    return 1;
  }

  clm::calibration::IsotonicFitter fitter;
  clm::calibration::IsotonicThresholds t;
  std::vector<double> predicted(x.size());
  double best = 0.0, first = 0.0;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const absl::Status status = fitter.Fit(x, y, w, &t);
    if (status.ok()) {
      const clm::calibration::IsotonicPredictor predict(t.x, t.y);
      predict.Predict(x, absl::MakeSpan(predicted));
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!status.ok()) {
      std::cerr << "fit: " << status.message() << "\n";
      return 1;
    }
    if (r == 0) first = best = seconds;
    best = std::min(best, seconds);
  }
  if (!WriteRows(output, t.x, &t.y)) {
    std::cerr << "--output: cannot write " << output << "\n";
    return 1;
  }
  if (!predictions.empty() && !WriteRows(predictions, predicted, nullptr)) {
    std::cerr << "--predictions: cannot write " << predictions << "\n";
    return 1;
  }
  std::printf("n=%zu\nthresholds=%zu\nfit_predict_seconds=%.6f\nfit_predict_seconds_first=%.6f\n", x.size(),
              t.x.size(), best, first);
  return 0;
}
