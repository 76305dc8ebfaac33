#ifndef CLM_CLIENT_CLMCTL_COMMANDS_H_
#define CLM_CLIENT_CLMCTL_COMMANDS_H_

#include <cstdint>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "clm/v1/trade.pb.h"

namespace clm::clmctl {

// What a script can rely on (also printed by `clmctl --help`).
enum ExitCode : int {
  kExitOk = 0,
  kExitServerError = 1,  // the server answered with an error (or refused trades, or a job did not succeed)
  kExitUsage = 2,        // unknown command or flag, missing or malformed argument
  kExitUnreachable = 3,  // cannot reach the server (connect failed, UNAVAILABLE, TLS handshake failed)
  kExitBadInput = 4,     // an input file is unreadable or has invalid lines (trades import)
};

// Runs one clmctl invocation. `args` is argv without the program name. Normal output goes to `out`, errors,
// progress and warnings to `err`. Returns the exit code. Thread-compatible; no global state.
int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// The same with standard input given (`auth hash-token` reads the token from it).
int Run(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

// The demo data set: `count` trades over the last `days` days, ids "demo-<run_id>-<n>", from a generator
// seeded by `seed`. Three symbols, per-model confidences for three models, an engine over-confident in
// 0.50-0.70 (wins ~38%) and accurate above 0.75, and ~6% NEUTRAL trades.
std::vector<clm::v1::TradeOutcome> MakeDemoTrades(const std::string& run_id, int count, double days,
                                                  uint64_t seed, absl::Time now);

}  // namespace clm::clmctl

#endif  // CLM_CLIENT_CLMCTL_COMMANDS_H_
