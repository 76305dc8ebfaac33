#include "server/store_health_reporter.h"

#include <utility>

#include "spdlog/spdlog.h"

namespace clm::server {

void StoreHealthReporter::AttachHealthService(std::vector<grpc::HealthCheckServiceInterface*> health,
                                              std::vector<std::string> services) {
  absl::MutexLock lock(&mu_);
  health_ = std::move(health);
  services_ = std::move(services);
  PublishLocked();
}

void StoreHealthReporter::DetachHealthService() {
  absl::MutexLock lock(&mu_);
  health_.clear();
}

void StoreHealthReporter::OnStorageFault(store::StorageFault fault, const absl::Status& status) {
  metrics_->OnStoreFault(fault);
  spdlog::debug("store: {} fault: {}", std::string(store::StorageFaultName(fault)), status.ToString());
}

void StoreHealthReporter::OnUsableChanged(bool usable, const absl::Status& cause) {
  absl::MutexLock lock(&mu_);
  if (usable == usable_) return;
  usable_ = usable;
  if (usable) {
    spdlog::info("store: writable again; health SERVING");
  } else {
    spdlog::error("store: unusable, health NOT_SERVING until a probe or a commit succeeds: {}", cause.ToString());
  }
  PublishLocked();
}

void StoreHealthReporter::PublishLocked() {
  metrics_->SetStoreHealthy(usable_);
  for (grpc::HealthCheckServiceInterface* health : health_) {
    health->SetServingStatus(usable_);
    for (const std::string& service : services_) health->SetServingStatus(service, usable_);
  }
}

}  // namespace clm::server
