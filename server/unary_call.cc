#include "server/unary_call.h"

#include <utility>

#include "absl/time/clock.h"
#include "server/grpc_status.h"

namespace clm::server {

std::optional<auth::Principal> Admit(const Authenticator& auth, grpc::CallbackServerContext* context,
                                     grpc::ServerUnaryReactor* reactor, MethodMetrics& metrics) {
  absl::StatusOr<auth::Principal> caller = auth.Check(*context, metrics.method());
  if (caller.ok()) return *std::move(caller);
  FinishUnary(reactor, metrics, absl::Now(), ToGrpcStatus(caller.status()));
  return std::nullopt;
}

void FinishUnary(grpc::ServerUnaryReactor* reactor, MethodMetrics& metrics, absl::Time start,
                 const grpc::Status& status) {
  metrics.Record(status, absl::Now() - start);
  reactor->Finish(status);
}

void FinishOnPool(ThreadPool* pool, grpc::ServerUnaryReactor* reactor, MethodMetrics& metrics,
                  std::function<absl::Status()> work) {
  const absl::Time start = absl::Now();
  absl::Status scheduled = pool->Schedule([reactor, &metrics, start, work = std::move(work)] {
    FinishUnary(reactor, metrics, start, ToGrpcStatus(work()));
  });
  if (!scheduled.ok()) FinishUnary(reactor, metrics, start, ToGrpcStatus(scheduled));
}

}  // namespace clm::server
