// clm-bench-isotonic --input IN.csv --output OUT.csv [--predictions PRED.csv] [--repeats N]
//
// Reads rows "confidence,label[,weight]" (an optional header line is skipped), fits the isotonic map, predicts
// every input row, writes the thresholds as "x,y" rows to OUT.csv (and the predictions, one per line in input
// order, to PRED.csv when asked), and prints fit_predict_seconds=X: the time of fit + predict only, without
// any I/O, so it compares with timing sklearn's fit + predict on arrays already in memory. With --repeats N
// the fit + predict runs N times with one IsotonicFitter (as a service refitting would) and the fastest run
// is printed, like compare_sklearn.py keeps sklearn's fastest of N; fit_predict_seconds_first is the first,
// cold run, which also pays for first-touching its buffers.
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
#include <vector>

#include "lib/calibration/isotonic.h"

namespace {

int Usage() {
  std::cerr << "usage: clm-bench-isotonic --input IN.csv --output OUT.csv [--predictions PRED.csv] [--repeats N]\n";
  return 2;
}

// Parses one field; false when it is not a number.
bool ParseDouble(const char*& p, const char* end, double* out) {
  while (p < end && (*p == ' ' || *p == '\t')) ++p;
  const auto [next, ec] = std::from_chars(p, end, *out);
  if (ec != std::errc()) return false;
  p = next;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) ++p;
  return true;
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
  while (p < end) {
    const char* eol = static_cast<const char*>(std::memchr(p, '\n', end - p));
    if (eol == nullptr) eol = end;
    ++line_no;
    const char* q = p;
    double c, l, wt = 1.0;
    bool ok = ParseDouble(q, eol, &c) && q < eol && *q++ == ',' && ParseDouble(q, eol, &l);
    bool has_weight = false;
    if (ok && q < eol && *q == ',') {
      ++q;
      ok = ParseDouble(q, eol, &wt);
      has_weight = true;
    }
    ok = ok && q == eol;
    if (!ok) {
      const bool blank = std::string_view(p, eol - p).find_first_not_of(" \t\r") == std::string_view::npos;
      if (!(line_no == 1 || blank)) {  // the first line may be a header
        std::cerr << input << ":" << line_no << ": expected confidence,label[,weight]\n";
        return 1;
      }
    } else {
      if (has_weight && !weighted) {
        weighted = true;
        w.assign(x.size(), 1.0);
      }
      x.push_back(c);
      y.push_back(l);
      if (weighted) w.push_back(wt);
    }
    p = eol + 1;
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
