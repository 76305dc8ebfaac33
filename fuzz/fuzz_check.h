#ifndef CLM_FUZZ_FUZZ_CHECK_H_
#define CLM_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#include "google/protobuf/stubs/logging.h"

// An invariant of the code under test. On violation it names the condition and aborts, which libFuzzer
// reports as a crash and saves the input (and the replay test fails).
#define CLM_FUZZ_CHECK(condition)                                                                  \
  do {                                                                                             \
    if (!(condition)) {                                                                            \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #condition);     \
      std::abort();                                                                                \
    }                                                                                              \
  } while (false)

namespace clm::fuzz {

// Protobuf logs every malformed input it rejects (e.g. invalid UTF-8 in a string field) to stderr; under a
// fuzzer that is most inputs. The rejection itself is what the targets check.
inline bool SilenceProtobufLogs() {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}

}  // namespace clm::fuzz

#endif  // CLM_FUZZ_FUZZ_CHECK_H_
