#include "lib/calibration/platt.h"

#include <cmath>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace clm::calibration {
namespace {

// log(1 + exp(z)) without overflow.
inline double Log1pExp(double z) { return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }

}  // namespace

double ApplyPlatt(double a, double b, double c) {
  const double z = a * c + b;
  if (z >= 0) {
    const double e = std::exp(-z);
    return e / (1.0 + e);
  }
  return 1.0 / (1.0 + std::exp(z));
}

absl::StatusOr<PlattParams> FitPlatt(absl::Span<const double> confidence, absl::Span<const double> label,
                                     absl::Span<const double> weights) {
  const size_t n = confidence.size();
  if (label.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("label: must have the size of confidence (", n, "), got ", label.size()));
  }
  if (!weights.empty() && weights.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("weights: must be empty or have the size of confidence (",
                                                   n, "), got ", weights.size()));
  }
  if (n == 0) return absl::InvalidArgumentError("confidence: needs at least one point");
  double prior1 = 0.0;  // weight of wins
  double prior0 = 0.0;  // weight of losses
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(confidence[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("confidence[", i, "]: must be finite, got ", confidence[i]));
    }
    if (!(label[i] >= 0.0 && label[i] <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat("label[", i, "]: must be within [0, 1], got ", label[i]));
    }
    const double w = weights.empty() ? 1.0 : weights[i];
    if (!std::isfinite(w) || w < 0.0) {
      return absl::InvalidArgumentError(absl::StrCat("weights[", i, "]: must be finite and >= 0, got ", w));
    }
    prior1 += w * label[i];
    prior0 += w * (1.0 - label[i]);
  }
  if (!(prior0 + prior1 > 0.0)) return absl::InvalidArgumentError("weights: must have a positive sum");

  const double hi_target = (prior1 + 1.0) / (prior1 + 2.0);
  const double lo_target = 1.0 / (prior0 + 2.0);
  std::vector<double> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = label[i] * hi_target + (1.0 - label[i]) * lo_target;

  // Objective: sum_i w_i * [t_i * z_i + log(1 + exp(-z_i))] with z_i = a * c_i + b, which is the log loss of
  // p_i = 1 / (1 + exp(z_i)) against t_i, written so no exp can overflow.
  const auto objective = [&](double a, double b) {
    double f = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const double w = weights.empty() ? 1.0 : weights[i];
      const double z = a * confidence[i] + b;
      f += w * (t[i] * z + Log1pExp(-z));
    }
    return f;
  };

  constexpr int kMaxIterations = 200;
  constexpr double kMinStep = 1e-10;
  constexpr double kSigma = 1e-12;  // keeps the Hessian positive definite on degenerate data
  const double total_weight = prior0 + prior1;
  // Stop when the gradient is negligible relative to the data size: the minimum is then known to far better
  // than sklearn's own BFGS stopping rule (gradient norm 1e-5), so the two agree to its precision.
  const double gradient_tolerance = 1e-11 * std::max(1.0, total_weight);

  PlattParams params;
  params.a = 0.0;
  params.b = std::log((prior0 + 1.0) / (prior1 + 1.0));
  double fval = objective(params.a, params.b);
  for (int iter = 0; iter < kMaxIterations; ++iter) {
    double h11 = kSigma, h22 = kSigma, h21 = 0.0, g1 = 0.0, g2 = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const double w = weights.empty() ? 1.0 : weights[i];
      const double c = confidence[i];
      const double z = params.a * c + params.b;
      double p, q;  // p = 1 / (1 + exp(z)), q = 1 - p
      if (z >= 0) {
        const double e = std::exp(-z);
        p = e / (1.0 + e);
        q = 1.0 / (1.0 + e);
      } else {
        const double e = std::exp(z);
        p = 1.0 / (1.0 + e);
        q = e / (1.0 + e);
      }
      const double d2 = w * p * q;
      h11 += c * c * d2;
      h22 += d2;
      h21 += c * d2;
      const double d1 = w * (t[i] - p);
      g1 += c * d1;
      g2 += d1;
    }
    if (std::fabs(g1) < gradient_tolerance && std::fabs(g2) < gradient_tolerance) break;
    params.iterations = iter + 1;
    const double det = h11 * h22 - h21 * h21;
    const double da = -(h22 * g1 - h21 * g2) / det;
    const double db = -(-h21 * g1 + h11 * g2) / det;
    const double gd = g1 * da + g2 * db;
    double step = 1.0;
    bool moved = false;
    while (step >= kMinStep) {
      const double na = params.a + step * da;
      const double nb = params.b + step * db;
      const double nf = objective(na, nb);
      if (nf < fval + 1e-4 * step * gd) {
        params.a = na;
        params.b = nb;
        fval = nf;
        moved = true;
        break;
      }
      step /= 2.0;
    }
    // No step decreases the objective any more: we are at the minimum to machine precision.
    if (!moved) break;
  }
  return params;
}

}  // namespace clm::calibration
