#ifndef CLM_BENCH_INGEST_TRADE_GEN_H_
#define CLM_BENCH_INGEST_TRADE_GEN_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "clm/v1/trade.pb.h"

namespace clm::bench {

// Realistic closed trades for the ingest benchmarks. Both clm-load and clm-sqlite-ceiling use it, so the
// server and the storage ceiling store rows of the same shape and size.
class TradeGenerator final {
 public:
  struct Options {
    std::vector<std::string> symbols = {"BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT",
                                        "XRPUSDT", "ADAUSDT", "DOGEUSDT", "AVAXUSDT"};
    uint64_t seed = 1;
    // Trade ids are "<id_prefix>-<index>"; a fresh prefix per run keeps runs from colliding.
    std::string id_prefix = "bench";
    // closed_at falls within this many seconds before `now_unix_seconds`.
    int64_t window_seconds = 3 * 86400;
    int64_t now_unix_seconds = 0;  // 0: the start of the current hour
    // false: closed_at uniform over the window (a backfill in no particular order, the worst case for the
    // time indexes). true: closed_at rises with the index across the window, as a live engine reports them;
    // needs `total`.
    bool ascending_close = false;
    uint64_t total = 0;
  };

  explicit TradeGenerator(Options options);

  // Fills `out` with trade number `index`. Valid by the ingest contract: it is never rejected.
  void Fill(uint64_t index, clm::v1::TradeOutcome* out);

 private:
  Options options_;
  std::mt19937_64 rng_;
};

// A run id for --id_prefix: random, so repeated runs against one server never send an id twice.
std::string RandomRunId();

// Splits "a,b,c"; empty entries are dropped.
std::vector<std::string> SplitList(const std::string& list);

}  // namespace clm::bench

#endif  // CLM_BENCH_INGEST_TRADE_GEN_H_
