#include "lib/ingest/validation.h"

#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "clm/v1/ingest.pb.h"
#include "gtest/gtest.h"
#include "lib/config/config.h"

namespace clm::ingest {
namespace {

using ::clm::v1::TradeOutcome;
using ::testing::HasSubstr;

constexpr int64_t kNowSeconds = 1'700'000'000;
const absl::Time kNow = absl::FromUnixSeconds(kNowSeconds);
const absl::Duration kTolerance = absl::Minutes(5);
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TradeOutcome ValidTrade() {
  TradeOutcome t;
  t.set_trade_id("T-1");
  t.set_symbol("BTCUSDT");
  t.set_model_id("ensemble_v3");
  t.set_confidence(0.61);
  t.set_outcome(TradeOutcome::WIN);
  t.set_pnl(12.5);
  t.mutable_opened_at()->set_seconds(kNowSeconds - 3600);
  t.mutable_closed_at()->set_seconds(kNowSeconds - 60);
  t.set_side(TradeOutcome::LONG);
  (*t.mutable_model_confidences())["xgboost"] = 0.61;
  (*t.mutable_model_confidences())["lightgbm"] = 0.58;
  return t;
}

std::optional<FieldError> Validate(const TradeOutcome& t) { return ValidateTrade(t, kNow, kTolerance); }

TEST(ValidateTradeTest, ValidTradeAndMinimalTradePass) {
  EXPECT_EQ(Validate(ValidTrade()), std::nullopt);
  TradeOutcome minimal;
  minimal.set_trade_id("x");
  minimal.set_symbol("s");
  minimal.set_outcome(TradeOutcome::LOSS);
  minimal.mutable_closed_at()->set_seconds(kNowSeconds);
  EXPECT_EQ(Validate(minimal), std::nullopt);
}

struct RuleCase {
  std::string name;
  std::function<void(TradeOutcome&)> mutate;
  std::string field;
  std::string reason;  // substring of the reason
};

void PrintTo(const RuleCase& c, std::ostream* os) { *os << c.name; }

class ValidateRuleTest : public ::testing::TestWithParam<RuleCase> {};

TEST_P(ValidateRuleTest, ReportsFieldAndReason) {
  TradeOutcome t = ValidTrade();
  GetParam().mutate(t);
  std::optional<FieldError> error = Validate(t);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->field, GetParam().field);
  EXPECT_THAT(error->reason, HasSubstr(GetParam().reason));
}

std::vector<RuleCase> RuleCases() {
  return {
      {"TradeIdMissing", [](TradeOutcome& t) { t.clear_trade_id(); }, "trade_id", "is required"},
      {"TradeIdTooLong", [](TradeOutcome& t) { t.set_trade_id(std::string(129, 'a')); }, "trade_id",
       "must be at most 128 bytes, got 129"},
      {"TradeIdControlChar", [](TradeOutcome& t) { t.set_trade_id("T\n1"); }, "trade_id",
       "must not contain control characters"},
      {"TradeIdDel", [](TradeOutcome& t) { t.set_trade_id("T\x7f"); }, "trade_id",
       "must not contain control characters"},
      {"SymbolMissing", [](TradeOutcome& t) { t.clear_symbol(); }, "symbol", "is required"},
      {"SymbolTooLong", [](TradeOutcome& t) { t.set_symbol(std::string(65, 'S')); }, "symbol",
       "must be at most 64 bytes, got 65"},
      {"SymbolControlChar", [](TradeOutcome& t) { t.set_symbol(std::string("BTC\0", 4)); }, "symbol",
       "must not contain control characters"},
      {"ModelIdTooLong", [](TradeOutcome& t) { t.set_model_id(std::string(129, 'm')); }, "model_id",
       "must be at most 128 bytes, got 129"},
      {"ModelIdControlChar", [](TradeOutcome& t) { t.set_model_id("m\t1"); }, "model_id",
       "must not contain control characters"},
      {"ConfidenceNaN", [](TradeOutcome& t) { t.set_confidence(kNaN); }, "confidence",
       "must be a finite number, got nan"},
      {"ConfidenceInf", [](TradeOutcome& t) { t.set_confidence(kInf); }, "confidence",
       "must be a finite number, got inf"},
      {"ConfidenceNegInf", [](TradeOutcome& t) { t.set_confidence(-kInf); }, "confidence",
       "must be a finite number, got -inf"},
      {"ConfidenceNegative", [](TradeOutcome& t) { t.set_confidence(-0.1); }, "confidence",
       "must be within [0, 1], got -0.1"},
      {"ConfidenceAboveOne", [](TradeOutcome& t) { t.set_confidence(1.7); }, "confidence",
       "must be within [0, 1], got 1.7"},
      {"OutcomeUnspecified", [](TradeOutcome& t) { t.set_outcome(TradeOutcome::OUTCOME_UNSPECIFIED); }, "outcome",
       "must be WIN, LOSS or NEUTRAL, got OUTCOME_UNSPECIFIED"},
      {"OutcomeUnknownValue", [](TradeOutcome& t) { t.set_outcome(static_cast<TradeOutcome::Outcome>(9)); },
       "outcome", "must be WIN, LOSS or NEUTRAL, got 9"},
      {"PnlNaN", [](TradeOutcome& t) { t.set_pnl(kNaN); }, "pnl", "must be a finite number, got nan"},
      {"PnlInf", [](TradeOutcome& t) { t.set_pnl(-kInf); }, "pnl", "must be a finite number, got -inf"},
      {"ClosedAtMissing", [](TradeOutcome& t) { t.clear_closed_at(); }, "closed_at", "is required"},
      {"ClosedAtBefore2000",
       [](TradeOutcome& t) {
         t.clear_opened_at();
         t.mutable_closed_at()->set_seconds(946684799);
       },
       "closed_at", "must not be before 2000-01-01T00:00:00Z, got 946684799 seconds since the epoch"},
      {"ClosedAtInMilliseconds",  // a unit mistake reads as 1970
       [](TradeOutcome& t) { t.mutable_closed_at()->set_seconds(1'700'000); }, "closed_at",
       "must not be before 2000-01-01T00:00:00Z"},
      {"ClosedAtBeyondTolerance",
       [](TradeOutcome& t) {
         t.mutable_closed_at()->set_seconds(kNowSeconds + 300);
         t.mutable_closed_at()->set_nanos(1);
       },
       "closed_at", "is in the future"},
      {"ClosedAtNanosNegative", [](TradeOutcome& t) { t.mutable_closed_at()->set_nanos(-1); }, "closed_at",
       "nanos must be within [0, 999999999], got -1"},
      {"ClosedAtNanosTooLarge", [](TradeOutcome& t) { t.mutable_closed_at()->set_nanos(1'000'000'000); },
       "closed_at", "nanos must be within [0, 999999999], got 1000000000"},
      {"OpenedAtNanosOutOfRange", [](TradeOutcome& t) { t.mutable_opened_at()->set_nanos(-5); }, "opened_at",
       "nanos must be within [0, 999999999], got -5"},
      {"OpenedAtBefore2000", [](TradeOutcome& t) { t.mutable_opened_at()->set_seconds(0); }, "opened_at",
       "must not be before 2000-01-01T00:00:00Z"},
      {"OpenedAtAfterClosedAt",
       [](TradeOutcome& t) { t.mutable_opened_at()->set_seconds(t.closed_at().seconds() + 1); }, "opened_at",
       "must not be after closed_at"},
      {"OpenedAtAfterClosedAtByOneNano",
       [](TradeOutcome& t) {
         *t.mutable_opened_at() = t.closed_at();
         t.mutable_closed_at()->set_nanos(10);
         t.mutable_opened_at()->set_nanos(11);
       },
       "opened_at", "must not be after closed_at"},
      {"SideUnknown", [](TradeOutcome& t) { t.set_side(static_cast<TradeOutcome::Side>(3)); }, "side",
       "must be LONG, SHORT or unset, got 3"},
      {"ModelConfidencesTooMany",
       [](TradeOutcome& t) {
         t.clear_model_confidences();
         for (int i = 0; i < 33; ++i) (*t.mutable_model_confidences())["m" + std::to_string(i)] = 0.5;
       },
       "model_confidences", "must have at most 32 entries, got 33"},
      {"ModelConfidencesEmptyKey", [](TradeOutcome& t) { (*t.mutable_model_confidences())[""] = 0.5; },
       "model_confidences key", "is required"},
      {"ModelConfidencesKeyTooLong",
       [](TradeOutcome& t) { (*t.mutable_model_confidences())[std::string(65, 'k')] = 0.5; },
       "model_confidences key", "must be at most 64 bytes, got 65"},
      {"ModelConfidencesValueOutOfRange", [](TradeOutcome& t) { (*t.mutable_model_confidences())["xgboost"] = 1.5; },
       "model_confidences[xgboost]", "must be within [0, 1], got 1.5"},
      {"ModelConfidencesValueNaN", [](TradeOutcome& t) { (*t.mutable_model_confidences())["lightgbm"] = kNaN; },
       "model_confidences[lightgbm]", "must be a finite number, got nan"},
  };
}

INSTANTIATE_TEST_SUITE_P(Rules, ValidateRuleTest, ::testing::ValuesIn(RuleCases()),
                         [](const ::testing::TestParamInfo<RuleCase>& info) { return info.param.name; });

TEST(ValidateTradeTest, ExactMessageForConfidenceOutOfRange) {
  TradeOutcome t = ValidTrade();
  t.set_confidence(1.7);
  std::optional<FieldError> error = Validate(t);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->field, "confidence");
  EXPECT_EQ(error->reason, "must be within [0, 1], got 1.7");
}

TEST(ValidateTradeTest, FirstProblemInFieldOrderWins) {
  TradeOutcome t = ValidTrade();
  t.clear_symbol();
  t.set_confidence(2.0);
  t.clear_closed_at();
  std::optional<FieldError> error = Validate(t);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->field, "symbol");
}

// Found by the trade_ingest fuzzer: with several bad model_confidences the reported one followed the map's
// iteration order, which differs between copies of the same trade, so a resent trade could be rejected for
// another reason. The smallest key is reported, whatever the copy.
TEST(ValidateTradeTest, FirstBadModelConfidenceIsTheSmallestKeyInEveryCopy) {
  TradeOutcome t = ValidTrade();
  t.mutable_model_confidences()->clear();
  for (int i = 19; i >= 0; --i) (*t.mutable_model_confidences())[absl::StrCat("m", 10 + i)] = 2.0;
  (*t.mutable_model_confidences())[""] = 0.5;
  std::vector<TradeOutcome> copies(10, t);
  copies.push_back(t);
  for (const TradeOutcome& copy : copies) {
    std::optional<FieldError> error = Validate(copy);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->field, "model_confidences key");
  }
  t.mutable_model_confidences()->erase("");
  copies.assign(10, t);
  for (const TradeOutcome& copy : copies) {
    std::optional<FieldError> error = Validate(copy);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->field, "model_confidences[m10]");
  }
}

TEST(ValidateTradeTest, BoundariesAreAccepted) {
  for (double p : {0.0, 1.0, -0.0}) {
    TradeOutcome t = ValidTrade();
    t.set_confidence(p);
    (*t.mutable_model_confidences())["xgboost"] = p;
    EXPECT_EQ(Validate(t), std::nullopt) << p;
  }
  TradeOutcome t = ValidTrade();
  t.set_trade_id(std::string(128, 'a'));
  t.set_symbol(std::string(64, 's'));
  t.set_model_id(std::string(128, 'm'));
  (*t.mutable_model_confidences())[std::string(64, 'k')] = 0.5;
  EXPECT_EQ(Validate(t), std::nullopt);

  TradeOutcome many = ValidTrade();
  many.clear_model_confidences();
  for (int i = 0; i < 32; ++i) (*many.mutable_model_confidences())["m" + std::to_string(i)] = 0.5;
  EXPECT_EQ(Validate(many), std::nullopt);
}

TEST(ValidateTradeTest, TimestampBoundaries) {
  TradeOutcome t = ValidTrade();
  t.clear_opened_at();
  t.mutable_closed_at()->set_seconds(946684800);  // exactly 2000-01-01
  EXPECT_EQ(Validate(t), std::nullopt);

  t.mutable_closed_at()->set_seconds(kNowSeconds + 300);  // exactly at the tolerance
  t.mutable_closed_at()->set_nanos(0);
  EXPECT_EQ(Validate(t), std::nullopt);

  t.mutable_closed_at()->set_seconds(kNowSeconds + 120);  // within the tolerance
  t.mutable_closed_at()->set_nanos(999'999'999);
  EXPECT_EQ(Validate(t), std::nullopt);

  *t.mutable_opened_at() = t.closed_at();  // opened == closed is fine
  EXPECT_EQ(Validate(t), std::nullopt);

  // The tolerance is the caller's: with none, anything after now is in the future.
  t.clear_opened_at();
  t.mutable_closed_at()->set_seconds(kNowSeconds);
  t.mutable_closed_at()->set_nanos(1);
  std::optional<FieldError> error = ValidateTrade(t, kNow, absl::ZeroDuration());
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->field, "closed_at");
}

TEST(ValidateTradeTest, FutureMessageNamesBothTimes) {
  TradeOutcome t = ValidTrade();
  t.mutable_closed_at()->set_seconds(kNowSeconds + 3600);
  std::optional<FieldError> error = Validate(t);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->reason,
            "is in the future: 2023-11-14T23:13:20+00:00 is after the server's clock 2023-11-14T22:13:20+00:00 by "
            "more than 5m");
}

TEST(CanonicalizeTest, NegativeZerosBecomePositive) {
  TradeOutcome t = ValidTrade();
  t.set_confidence(-0.0);
  t.set_pnl(-0.0);
  (*t.mutable_model_confidences())["xgboost"] = -0.0;
  Canonicalize(t);
  EXPECT_FALSE(std::signbit(t.confidence()));
  EXPECT_FALSE(std::signbit(t.pnl()));
  EXPECT_FALSE(std::signbit(t.model_confidences().at("xgboost")));
  EXPECT_EQ(t.model_confidences().at("lightgbm"), 0.58);  // other values untouched
}

TEST(CanonicalizeTest, DropsUnknownFields) {
  TradeOutcome t = ValidTrade();
  std::string bytes = t.SerializeAsString();
  // Field 99, varint 1: what a newer client version might send.
  bytes.push_back(static_cast<char>(((99 << 3) & 0x7f) | 0x80));
  bytes.push_back(static_cast<char>(99 >> 4));
  bytes.push_back(1);
  TradeOutcome with_unknown;
  ASSERT_TRUE(with_unknown.ParseFromString(bytes));
  ASSERT_FALSE(with_unknown.GetReflection()->GetUnknownFields(with_unknown).empty());
  EXPECT_NE(ContentHash(with_unknown), ContentHash(t));

  Canonicalize(with_unknown);
  EXPECT_TRUE(with_unknown.GetReflection()->GetUnknownFields(with_unknown).empty());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(with_unknown, t));
  EXPECT_EQ(ContentHash(with_unknown), ContentHash(t));
}

TEST(ContentHashTest, StableAcrossMapInsertionOrder) {
  TradeOutcome a = ValidTrade();
  a.clear_model_confidences();
  TradeOutcome b = a;
  const std::vector<std::string> names = {"xgboost", "lightgbm", "catboost", "mlp", "rf", "svm", "knn", "lr"};
  for (size_t i = 0; i < names.size(); ++i) (*a.mutable_model_confidences())[names[i]] = 0.1 * i;
  for (size_t i = names.size(); i-- > 0;) (*b.mutable_model_confidences())[names[i]] = 0.1 * i;
  EXPECT_EQ(ContentHash(a), ContentHash(b));
}

TEST(ContentHashTest, KnownValueIsStableAcrossVersions) {
  // FNV-1a 64 of the empty serialization is the offset basis: pins the algorithm, so stored hashes stay valid.
  EXPECT_EQ(ContentHash(TradeOutcome()), 0xcbf29ce484222325ULL);
}

TEST(ContentHashTest, DifferentContentGivesDifferentHash) {
  const TradeOutcome base = ValidTrade();
  const uint64_t h = ContentHash(base);
  std::vector<std::function<void(TradeOutcome&)>> changes = {
      [](TradeOutcome& t) { t.set_trade_id("T-2"); },
      [](TradeOutcome& t) { t.set_symbol("ETHUSDT"); },
      [](TradeOutcome& t) { t.set_model_id(""); },
      [](TradeOutcome& t) { t.set_confidence(0.62); },
      [](TradeOutcome& t) { t.set_outcome(TradeOutcome::LOSS); },
      [](TradeOutcome& t) { t.set_pnl(12.51); },
      [](TradeOutcome& t) { t.clear_opened_at(); },
      [](TradeOutcome& t) { t.mutable_closed_at()->set_nanos(1); },
      [](TradeOutcome& t) { t.set_side(TradeOutcome::SHORT); },
      [](TradeOutcome& t) { (*t.mutable_model_confidences())["xgboost"] = 0.6; },
      [](TradeOutcome& t) { t.mutable_model_confidences()->erase("lightgbm"); },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    TradeOutcome t = base;
    changes[i](t);
    EXPECT_NE(ContentHash(t), h) << "change " << i;
  }
  EXPECT_EQ(ContentHash(base), h);
}

TEST(ContentHashTest, NegativeZeroEqualsZeroAfterCanonicalize) {
  TradeOutcome pos = ValidTrade();
  pos.set_confidence(0.0);
  pos.set_pnl(0.0);
  (*pos.mutable_model_confidences())["xgboost"] = 0.0;
  TradeOutcome neg = pos;
  neg.set_confidence(-0.0);
  neg.set_pnl(-0.0);
  (*neg.mutable_model_confidences())["xgboost"] = -0.0;
  // Without canonicalization the encodings differ (-0.0 has a set sign bit, so proto3 serializes it).
  EXPECT_NE(ContentHash(neg), ContentHash(pos));
  Canonicalize(pos);
  Canonicalize(neg);
  EXPECT_EQ(ContentHash(neg), ContentHash(pos));
}

TEST(ValidationTest, AFullBatchOfTheLargestValidTradesFitsTheDefaultMessageLimit) {
  // Every field at its largest valid size: an engine that keeps to the rules never meets
  // limits.max_receive_message_bytes with a batch of ingest.max_batch_trades trades.
  TradeOutcome t = ValidTrade();
  t.set_trade_id(std::string(kMaxTradeIdBytes, 'T'));
  t.set_symbol(std::string(kMaxSymbolBytes, 'S'));
  t.set_model_id(std::string(kMaxModelIdBytes, 'M'));
  t.mutable_opened_at()->set_nanos(999999999);
  t.mutable_closed_at()->set_nanos(999999999);
  t.mutable_model_confidences()->clear();
  for (size_t i = 0; i < kMaxModelConfidences; ++i) {
    std::string name = std::to_string(i);
    name.resize(kMaxModelNameBytes, 'n');
    (*t.mutable_model_confidences())[name] = 0.123456789;
  }
  std::optional<FieldError> error = ValidateTrade(t, kNow, kTolerance);
  ASSERT_FALSE(error.has_value()) << error->field << ": " << error->reason;
  absl::StatusOr<clm::v1::ServerConfig> config = config::ResolveServerConfig(clm::v1::ServerConfig());
  ASSERT_TRUE(config.ok()) << config.status();
  clm::v1::IngestRequest batch;
  batch.set_batch_id(UINT64_MAX);
  for (uint32_t i = 0; i < config->ingest().max_batch_trades(); ++i) *batch.add_trades() = t;
  EXPECT_LE(batch.ByteSizeLong(), config->limits().max_receive_message_bytes());
}

}  // namespace
}  // namespace clm::ingest
