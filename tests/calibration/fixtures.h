#ifndef CLM_TESTS_CALIBRATION_FIXTURES_H_
#define CLM_TESTS_CALIBRATION_FIXTURES_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "lib/trade/trade.h"

namespace clm::calibration::testing {

// Uniform in [0, 1) from the top 53 bits: the same sequence on every standard library.
inline double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

inline clm::Trade MakeTrade(int64_t seq, const std::string& symbol, double confidence, clm::Outcome outcome,
                            int64_t closed_at_us) {
  clm::Trade t;
  t.seq = seq;
  t.trade_id = "t" + std::to_string(seq);
  t.symbol = symbol;
  t.model_id = "ensemble_v3";
  t.confidence = confidence;
  t.outcome = outcome;
  t.closed_at_us = closed_at_us;
  return t;
}

// An engine that is over-confident on 0.50-0.70 (it wins 38% there) and calibrated elsewhere; confidences
// are rounded to 0.01 like the engine's. Trades close a minute apart from 2026-02-06, in shuffled input
// order; outcomes follow the win rates exactly at every confidence level (error diffusion rather than coin
// flips, so a test can assert the 0.50-0.70 range without sampling noise); symbols BTCUSDT 50%, ETHUSDT 30%, SOLUSDT 20%; model ids ensemble_v3 (80%) and exit_v1 (20%). With
// per_model, each trade carries "xgboost" (informative) and "lightgbm" (always 0.5) confidences.
inline std::vector<clm::Trade> OverconfidentTrades(size_t n, uint64_t seed, bool per_model = false,
                                                   double neutral_share = 0.0) {
  std::mt19937_64 rng(seed);
  std::vector<clm::Trade> trades;
  std::vector<double> owed(101, 0.5);  // per confidence level: wins owed so far, started half-way
  const int64_t start_us = 1770336000LL * 1000000;
  for (size_t i = 0; i < n; ++i) {
    const double c = std::round((0.30 + 0.65 * Uniform(rng)) * 100.0) / 100.0;
    const double p_win = (c >= 0.50 && c < 0.70) ? 0.38 : c;
    double& debt = owed[static_cast<size_t>(std::lround(c * 100.0))];
    debt += p_win;
    clm::Outcome outcome = clm::Outcome::kLoss;
    if (debt >= 1.0) {
      outcome = clm::Outcome::kWin;
      debt -= 1.0;
    }
    if (Uniform(rng) < neutral_share) outcome = clm::Outcome::kNeutral;
    const double s = Uniform(rng);
    const std::string symbol = s < 0.5 ? "BTCUSDT" : (s < 0.8 ? "ETHUSDT" : "SOLUSDT");
    clm::Trade t = MakeTrade(static_cast<int64_t>(i + 1), symbol, c, outcome,
                             start_us + static_cast<int64_t>(i) * 60 * 1000000);
    if (Uniform(rng) < 0.2) t.model_id = "exit_v1";
    if (per_model) {
      const double noisy = std::min(1.0, std::max(0.0, p_win + 0.1 * (Uniform(rng) - 0.5)));
      t.model_confidences = {{"lightgbm", 0.5}, {"xgboost", noisy}};
    }
    trades.push_back(std::move(t));
  }
  // Input order must not matter: the engine orders by close time itself.
  std::shuffle(trades.begin(), trades.end(), rng);
  return trades;
}

}  // namespace clm::calibration::testing

#endif  // CLM_TESTS_CALIBRATION_FIXTURES_H_
