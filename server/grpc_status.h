#ifndef CLM_SERVER_GRPC_STATUS_H_
#define CLM_SERVER_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace clm::server {

// The one place where domain errors become gRPC statuses. Codes map one to one; the message is kept, as
// lib/ writes messages for the caller ("trades: a batch may hold at most 1000 trades, got 1200").
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace clm::server

#endif  // CLM_SERVER_GRPC_STATUS_H_
