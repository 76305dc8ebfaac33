#include "server/server.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "lib/cadence/interfaces.h"
#include "lib/cadence/monitor.h"
#include "lib/common/thread_pool.h"
#include "lib/ingest/ingest_pipeline.h"
#include "lib/store/data_dir_lock.h"
#include "lib/store/sqlite_cadence_store.h"
#include "lib/store/sqlite_trade_store.h"
#include "lib/store/store_health.h"
#include "lib/jobs/cadence_launcher.h"
#include "lib/jobs/job_manager.h"
#include "lib/store/sqlite_job_store.h"
#include "lib/deployment/deployment_manager.h"
#include "lib/store/sqlite_deployment_store.h"
#include "server/calibration_job_service.h"
#include "server/deployment_metrics.h"
#include "server/deployment_service.h"
#include "server/job_metrics.h"
#include "server/cadence_metrics.h"
#include "server/cadence_status_service.h"
#include "server/metrics.h"
#include "server/auth.h"
#include "server/health_probe_service.h"
#include "server/reflection_service.h"
#include "server/tls.h"
#include "server/store_health_reporter.h"
#include "server/trade_ingest_service.h"
#include "spdlog/spdlog.h"

namespace clm::server {

// Everything the gRPC services point into. Declared in destruction order: services before the pipeline
// they feed, the pipeline before the store it writes, the store before the lock that guards it.
class Services final {
 public:
  // Jobs first: a job cancelled by the stop reports to the monitor, which is destroyed before the job system.
  ~Services() {
    // The monitor acts through the job system and the deployment manager; stop it, then the jobs.
    if (cadence_monitor != nullptr) cadence_monitor->Stop();
    if (jobs != nullptr) jobs->Stop();
  }

  std::unique_ptr<store::DataDirLock> lock;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<Authenticator> auth;  // every service asks it first
  std::unique_ptr<StoreHealthReporter> store_health_reporter;
  std::unique_ptr<store::StoreHealth> store_health;  // every store below reports to it
  std::unique_ptr<store::SqliteTradeStore> trade_store;
  std::unique_ptr<ingest::IngestObserver> commit_fanout;
  std::unique_ptr<ingest::IngestPipeline> pipeline;
  std::unique_ptr<ThreadPool> query_pool;
  std::unique_ptr<store::SqliteJobStore> job_store;
  std::unique_ptr<JobMetrics> job_metrics;
  std::unique_ptr<jobs::JobObserver> job_fanout;
  std::unique_ptr<jobs::JobManager> jobs;
  std::unique_ptr<jobs::CadenceLauncher> job_launcher;  // the cadence monitor's way to start learning
  // The learning-cadence monitor, on connections of its own to the same database. Declared after the job
  // launcher it acts through, so it is destroyed first.
  std::unique_ptr<store::SqliteCadenceStateStore> cadence_state;
  std::unique_ptr<store::SqliteSnapshotSource> cadence_source;
  cadence::SystemClock cadence_clock;
  std::unique_ptr<cadence::Monitor> cadence_monitor;
  std::unique_ptr<CadenceMetrics> cadence_metrics;
  std::unique_ptr<TradeIngestService> trade_ingest;
  std::unique_ptr<CadenceStatusService> cadence_status;
  std::unique_ptr<store::SqliteDeploymentStore> deployment_store;
  std::unique_ptr<deployment::JobSource> deployment_jobs;
  std::unique_ptr<deployment::LevelSource> deployment_levels;
  std::unique_ptr<DeploymentMetrics> deployment_metrics;
  std::unique_ptr<deployment::DeploymentManager> deployments;
  uint64_t deployment_subscription = 0;
  std::unique_ptr<DeploymentService> deployment_service;
  std::unique_ptr<CalibrationJobService> calibration_jobs;
  std::unique_ptr<ReflectionService> reflection;
};

namespace {

// Everything that reacts to a group commit, in one place.
class CommitFanout final : public ingest::IngestObserver {
 public:
  // `monitor` is created after the pipeline (it needs the job system); it is set before the server serves,
  // so before any commit. The deployment manager likewise, through SetDeployments.
  CommitFanout(Metrics* metrics, store::TradeStore* store, const std::unique_ptr<cadence::Monitor>& monitor)
      : metrics_(metrics), store_(store), monitor_(monitor) {}
  void SetDeployments(deployment::DeploymentManager* deployments, DeploymentMetrics* metrics) {
    deployment_metrics_.store(metrics);
    deployments_.store(deployments);
  }
  void OnCommit(const ingest::CommitStats& stats) override {
    metrics_->OnCommit(stats);
    metrics_->SetStoreSizeBytes(static_cast<double>(store_->SizeBytes()));  // two stat() calls
    // New trades: the cadence monitor evaluates once the burst settles (a flag and a signal, no waiting).
    if (stats.ok && stats.accepted > 0 && monitor_ != nullptr) monitor_->Nudge();
    // Live measurement of what is deployed, on exactly the newly stored trades.
    deployment::DeploymentManager* deployments = deployments_.load();
    if (deployments != nullptr && deployments->measuring() && !stats.accepted_trades.empty()) {
      std::vector<deployment::DeploymentManager::LiveTrade> live;
      live.reserve(stats.accepted_trades.size());
      for (const clm::v1::TradeOutcome* t : stats.accepted_trades) {
        live.push_back({t->confidence(), t->outcome(), t->pnl(), t->symbol(), t->model_id()});
      }
      deployments->OnTradesCommitted(live);
      deployment_metrics_.load()->Refresh(*deployments);
    }
  }

 private:
  Metrics* metrics_;
  store::TradeStore* store_;
  const std::unique_ptr<cadence::Monitor>& monitor_;
  std::atomic<deployment::DeploymentManager*> deployments_{nullptr};
  std::atomic<DeploymentMetrics*> deployment_metrics_{nullptr};
};

// Everything that reacts to a job's end: metrics, and the cadence monitor, which re-evaluates at once so its
// report shows the new training (and, in AUTO_SHADOW, follows the job) without waiting for its interval.
class JobFanout final : public jobs::JobObserver {
 public:
  explicit JobFanout(JobMetrics* metrics) : metrics_(metrics) {}
  // Jobs recovered at start may end before the monitor exists: until then there is no one to tell.
  void SetMonitor(cadence::Monitor* monitor) { monitor_.store(monitor); }
  void OnJobEnded(const clm::v1::Job& job, absl::Duration run_time) override {
    metrics_->OnJobEnded(job, run_time);
    if (cadence::Monitor* monitor = monitor_.load()) monitor->Nudge();
  }
  void OnQueueChanged(size_t queued, size_t running) override { metrics_->OnQueueChanged(queued, running); }

 private:
  JobMetrics* const metrics_;
  std::atomic<cadence::Monitor*> monitor_{nullptr};
};

// What the deployment manager needs from the job system and the cadence monitor.
class JobsForDeployment final : public deployment::JobSource {
 public:
  explicit JobsForDeployment(jobs::JobManager* jobs) : jobs_(jobs) {}
  absl::StatusOr<clm::v1::Job> GetJob(const std::string& id) override { return jobs_->Get(id, true); }

 private:
  jobs::JobManager* const jobs_;
};

// The level check of Approve and Promote sees every trade acknowledged before it: it may evaluate on the
// calling thread, which is the query pool's (or, for AUTO_SHADOW, the monitor's), never a reactor's.
class LevelsForDeployment final : public deployment::LevelSource {
 public:
  explicit LevelsForDeployment(cadence::Monitor* monitor) : monitor_(monitor) {}
  absl::StatusOr<clm::v1::CadenceReport> CurrentReport() override { return monitor_->FreshReport(); }

 private:
  cadence::Monitor* const monitor_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const Options& options) {
  std::unique_ptr<Server> server(new Server());
  server->options_ = options;
  auto services = std::make_unique<Services>();
  const clm::v1::ServerConfig& config = options.config;

  // Refuse, before touching anything, to expose the API beyond this machine unprotected.
  const bool authenticated = !options.auth_tokens.empty() || options.tls.mutual();
  if (!IsLoopbackAddress(options.grpc_address) && !(options.tls.enabled() && authenticated)) {
    if (!options.allow_insecure_remote) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--grpc_address ", options.grpc_address,
          " is not a loopback address and the server would serve it without ",
          options.tls.enabled() ? "authentication" : "TLS and authentication",
          ": give --tls_cert and --tls_key with --auth_tokens (or --tls_client_ca), or --allow_insecure_remote to "
          "accept that anyone who can reach the port may write trades and change deployments"));
    }
    spdlog::warn("INSECURE: serving {} without {} (--allow_insecure_remote): anyone who can reach it may write "
                 "trades and change deployments",
                 options.grpc_address, options.tls.enabled() ? "authentication" : "TLS and authentication");
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (options.tls.enabled()) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls = MakeServerCredentials(options.tls);
    if (!tls.ok()) return tls.status();
    credentials = *std::move(tls);
  }

  absl::StatusOr<std::unique_ptr<store::DataDirLock>> lock = store::DataDirLock::Acquire(options.data_dir);
  if (!lock.ok()) return lock.status();
  services->lock = std::move(*lock);

  services->metrics = std::make_unique<Metrics>();
  if (!options.metrics_address.empty()) {
    absl::StatusOr<int> port = services->metrics->StartExposer(options.metrics_address);
    if (!port.ok()) return port.status();
    server->metrics_port_ = *port;
  }
  absl::StatusOr<std::unique_ptr<Authenticator>> auth =
      Authenticator::Create({options.auth_tokens}, *services->metrics->registry());
  if (!auth.ok()) return auth.status();
  services->auth = *std::move(auth);
  const Authenticator* authenticator = services->auth.get();

  const std::string db_path = options.data_dir + "/clm.db";
  store::StoreHealth::Options health_options;
  health_options.vfs = options.sqlite_vfs;
  services->store_health = std::make_unique<store::StoreHealth>(db_path, health_options);
  services->store_health_reporter = std::make_unique<StoreHealthReporter>(services->metrics.get());
  services->store_health->SetObserver(services->store_health_reporter.get());
  const store::StoreOptions store_options{options.sqlite_vfs, services->store_health.get()};
  absl::StatusOr<std::unique_ptr<store::SqliteTradeStore>> store =
      store::SqliteTradeStore::Open(db_path, store_options);
  if (!store.ok()) return store.status();
  services->trade_store = std::move(*store);
  services->metrics->SetStoreSizeBytes(static_cast<double>(services->trade_store->SizeBytes()));

  ingest::IngestPipeline::Options pipeline_options;
  pipeline_options.max_batch_trades = config.ingest().max_batch_trades();
  pipeline_options.future_tolerance = absl::Seconds(config.ingest().future_tolerance_seconds());
  pipeline_options.max_group_trades = config.ingest().max_group_trades();
  auto commit_fanout = std::make_unique<CommitFanout>(services->metrics.get(), services->trade_store.get(),
                                                           services->cadence_monitor);
  CommitFanout* commit_events = commit_fanout.get();
  services->commit_fanout = std::move(commit_fanout);
  services->pipeline = std::make_unique<ingest::IngestPipeline>(services->trade_store.get(), pipeline_options,
                                                                services->commit_fanout.get());
  services->query_pool = std::make_unique<ThreadPool>("query pool", 2, 256);

  absl::StatusOr<std::unique_ptr<store::SqliteJobStore>> job_store =
      store::SqliteJobStore::Open(db_path, store_options);
  if (!job_store.ok()) return job_store.status();
  services->job_store = std::move(*job_store);
  services->job_metrics = std::make_unique<JobMetrics>(*services->metrics->registry());
  auto job_fanout = std::make_unique<JobFanout>(services->job_metrics.get());
  JobFanout* job_events = job_fanout.get();
  services->job_fanout = std::move(job_fanout);
  jobs::JobManager::Options job_options;
  job_options.workers = config.jobs().workers();
  job_options.max_queued = config.jobs().max_queued();
  services->jobs = std::make_unique<jobs::JobManager>(services->trade_store.get(), services->job_store.get(),
                                                      services->job_fanout.get(), job_options);
  absl::Status jobs_started = services->jobs->Start();
  if (!jobs_started.ok()) return jobs_started;
  services->job_launcher = std::make_unique<jobs::CadenceLauncher>(services->jobs.get());
  services->calibration_jobs = std::make_unique<CalibrationJobService>(
      services->jobs.get(), services->query_pool.get(), services->metrics.get(), authenticator);

  absl::StatusOr<std::unique_ptr<store::SqliteCadenceStateStore>> cadence_state =
      store::SqliteCadenceStateStore::Open(db_path, store_options);
  if (!cadence_state.ok()) return cadence_state.status();
  services->cadence_state = std::move(*cadence_state);
  absl::StatusOr<std::unique_ptr<store::SqliteSnapshotSource>> cadence_source =
      store::SqliteSnapshotSource::Open(db_path, store_options);
  if (!cadence_source.ok()) return cadence_source.status();
  services->cadence_source = std::move(*cadence_source);
  absl::StatusOr<std::unique_ptr<cadence::Monitor>> monitor =
      cadence::Monitor::Create(config.policy(), {services->cadence_source.get(), services->cadence_state.get(),
                                                 &services->cadence_clock, services->job_launcher.get()});
  if (!monitor.ok()) {
    return absl::Status(monitor.status().code(), absl::StrCat("cadence monitor: ", monitor.status().message()));
  }
  services->cadence_monitor = std::move(*monitor);
  job_events->SetMonitor(services->cadence_monitor.get());
  services->cadence_metrics = std::make_unique<CadenceMetrics>(*services->metrics->registry());
  // Evaluates once before serving, so GetStatus and WatchStatus have a report from the first call.
  if (absl::Status started = services->cadence_monitor->Start(); !started.ok()) return started;
  services->cadence_metrics->Attach(services->cadence_monitor.get());
  services->cadence_status =
      std::make_unique<CadenceStatusService>(services->cadence_monitor.get(), services->metrics.get(),
                                             authenticator);

  absl::StatusOr<std::unique_ptr<store::SqliteDeploymentStore>> deployment_store =
      store::SqliteDeploymentStore::Open(db_path, store_options);
  if (!deployment_store.ok()) return deployment_store.status();
  services->deployment_store = std::move(*deployment_store);
  services->deployment_jobs = std::make_unique<JobsForDeployment>(services->jobs.get());
  services->deployment_levels = std::make_unique<LevelsForDeployment>(services->cadence_monitor.get());
  deployment::DeploymentManager::Options deployment_options;
  deployment_options.active_json_path = config.deployment().active_json_path();
  deployment_options.auto_rollback = !config.deployment().auto_rollback_disabled();
  deployment_options.auto_rollback_margin = config.deployment().auto_rollback_margin();
  deployment_options.auto_rollback_min_trades = config.deployment().auto_rollback_min_trades();
  deployment_options.min_shadow_trades = config.deployment().min_shadow_trades();
  store::TradeStore* trade_store = services->trade_store.get();
  deployment_options.max_seq = [trade_store] { return trade_store->MaxSeq(); };
  ThreadPool* pool = services->query_pool.get();
  deployment_options.run_async = [pool](std::function<void()> task) {
    absl::Status scheduled = pool->Schedule(std::move(task));
    if (!scheduled.ok()) spdlog::error("deployment: cannot schedule the automatic rollback: {}", scheduled.ToString());
  };
  absl::StatusOr<std::unique_ptr<deployment::DeploymentManager>> deployments = deployment::DeploymentManager::Create(
      services->deployment_store.get(), services->deployment_jobs.get(), services->deployment_levels.get(),
      deployment_options);
  if (!deployments.ok()) return deployments.status();
  services->deployments = std::move(*deployments);
  // Live KPIs are "since each deployment": rebuild them from the trades stored since, as they were before
  // the restart.
  if (std::optional<int64_t> from = services->deployments->ReplayFrom()) {
    store::DatasetQuery since;
    since.after_seq = *from;
    absl::StatusOr<std::vector<Trade>> trades = services->trade_store->LoadTrades(since);
    if (!trades.ok()) return trades.status();
    std::sort(trades->begin(), trades->end(), [](const Trade& a, const Trade& b) { return a.seq < b.seq; });
    std::vector<std::pair<int64_t, deployment::DeploymentManager::LiveTrade>> live;
    live.reserve(trades->size());
    for (const Trade& t : *trades) {
      live.push_back({t.seq, {t.confidence, static_cast<int>(t.outcome), t.pnl, t.symbol, t.model_id}});
    }
    services->deployments->ReplayLive(live);
  }
  services->job_launcher->SetDeployment(services->deployments.get());
  services->deployment_metrics = std::make_unique<DeploymentMetrics>(*services->metrics->registry());
  services->deployment_metrics->Refresh(*services->deployments);
  {
    DeploymentMetrics* metrics = services->deployment_metrics.get();
    deployment::DeploymentManager* deployments = services->deployments.get();
    services->deployment_subscription =
        deployments->Subscribe([metrics, deployments](const clm::v1::ActiveCalibration&) {
          metrics->Refresh(*deployments);
        }).id;
  }
  commit_events->SetDeployments(services->deployments.get(), services->deployment_metrics.get());
  services->deployment_service = std::make_unique<DeploymentService>(
      services->deployments.get(), services->query_pool.get(), services->metrics.get(), authenticator);

  TradeIngestService::Options ingest_options;
  ingest_options.max_inflight_batches_per_stream = config.ingest().max_inflight_batches_per_stream();
  ingest_options.max_ingest_streams = config.ingest().max_ingest_streams();
  ingest_options.max_inflight_bytes = config.ingest().max_inflight_bytes();
  services->trade_ingest = std::make_unique<TradeIngestService>(
      ingest_options, services->pipeline.get(), services->trade_store.get(), services->query_pool.get(),
      services->metrics.get(), authenticator);
  services->reflection = std::make_unique<ReflectionService>(
      authenticator, services->metrics.get(), std::vector<std::string>{clm::v1::TradeIngest::service_full_name(),
                                              clm::v1::CadenceStatus::service_full_name(),
                                              clm::v1::CalibrationJob::service_full_name(),
                                              clm::v1::Deployment::service_full_name(),
                                              "grpc.health.v1.Health",
                                              grpc::reflection::v1alpha::ServerReflection::service_full_name()});

  // The built-in health service does not use the generated health proto, so reflection cannot describe it
  // ("Symbol not found" in grpcurl) unless that generated code is linked in: touching its descriptor keeps
  // the linker from dropping it.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.grpc_address, credentials, &server->grpc_port_);
  builder.RegisterService(services->trade_ingest.get());
  builder.RegisterService(services->cadence_status.get());
  builder.RegisterService(services->deployment_service.get());
  builder.RegisterService(services->calibration_jobs.get());
  builder.RegisterService(services->reflection.get());
  // The limits an abusive or idle client meets (config.proto ServerLimits documents each).
  const clm::v1::ServerLimits& limits = config.limits();
  builder.SetMaxReceiveMessageSize(static_cast<int>(limits.max_receive_message_bytes()));
  grpc::ResourceQuota quota("clm-server");
  quota.Resize(limits.memory_quota_bytes());
  quota.SetMaxThreads(static_cast<int>(limits.max_threads()));
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(limits.max_concurrent_streams_per_connection()));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             static_cast<int>(limits.max_connection_idle_seconds()) * 1000);
  // Engines keep streams open for days: let them ping to keep NATs open, but not flood.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             static_cast<int>(limits.keepalive_min_ping_interval_seconds()) * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  // Detect dead peers on idle streams.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(limits.keepalive_time_seconds()) * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(limits.keepalive_timeout_seconds()) * 1000);

  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->grpc_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("grpc_address ", options.grpc_address, ": cannot listen (in use, or not a valid address)"));
  }
  // From here on a failure goes through Shutdown, which needs the services.
  server->services_ = std::move(services);
  if (!options.health_address.empty()) {
    server->health_probe_ = std::make_unique<HealthProbeService>(std::set<std::string>{
        clm::v1::TradeIngest::service_full_name(), clm::v1::CadenceStatus::service_full_name(),
        clm::v1::CalibrationJob::service_full_name(), clm::v1::Deployment::service_full_name()});
    grpc::ServerBuilder health;
    health.AddListeningPort(options.health_address, grpc::InsecureServerCredentials(), &server->health_port_);
    health.RegisterService(server->health_probe_.get());
    // The probe port has its own Check; the built-in one would clash with it (the switch is process-wide,
    // read while building, and set again by the next Start).
    grpc::EnableDefaultHealthCheckService(false);
    server->health_server_ = health.BuildAndStart();
    grpc::EnableDefaultHealthCheckService(true);
    if (server->health_server_ == nullptr || server->health_port_ == 0) {
      return absl::UnavailableError(absl::StrCat("health_address ", options.health_address,
                                                 ": cannot listen (in use, or not a valid address)"));
    }
  }
  // SERVING while the store takes writes; NOT_SERVING while it does not (both ports).
  std::vector<grpc::HealthCheckServiceInterface*> health{server->grpc_server_->GetHealthCheckService()};
  if (server->health_probe_ != nullptr) health.push_back(server->health_probe_.get());
  server->services_->store_health_reporter->AttachHealthService(
      health, {clm::v1::TradeIngest::service_full_name(), clm::v1::CadenceStatus::service_full_name(),
               clm::v1::Deployment::service_full_name(), clm::v1::CalibrationJob::service_full_name()});
  spdlog::info("clm-server serving gRPC on port {} ({}, authentication {}; health port {}, metrics port {}), "
               "data in {}",
               server->grpc_port_,
               options.tls.enabled() ? (options.tls.mutual() ? "mutual TLS" : "TLS") : "plaintext",
               authenticator->enabled() ? "on" : "off", server->health_port_, server->metrics_port_, db_path);
  return server;
}

void Server::SetServing(bool serving) {
  grpc_server_->GetHealthCheckService()->SetServingStatus(serving);
  if (health_probe_ != nullptr) health_probe_->SetServingStatus(serving);
}

absl::Status Server::Reload() {
  if (services_ == nullptr) return absl::FailedPreconditionError("the server is not running");
  return services_->auth->Reload();
}

void Server::Shutdown() {
  if (shut_down_ || grpc_server_ == nullptr) return;
  shut_down_ = true;
  spdlog::info("shutting down: health NOT_SERVING, draining ingest streams");
  services_->store_health_reporter->DetachHealthService();  // a recovery now must not turn it back on
  SetServing(false);
  services_->trade_ingest->DrainStreams();
  services_->cadence_status->FinishWatches();
  services_->deployment_service->FinishWatches();
  // Running jobs end CANCELLED (queued ones stay queued for the next start), which also ends their watches.
  services_->jobs->Stop();
  grpc_server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoSeconds(options_.shutdown_grace));
  grpc_server_->Wait();
  if (health_server_ != nullptr) {
    health_server_->Shutdown(std::chrono::system_clock::now());
    health_server_->Wait();
  }
  services_->cadence_monitor->Stop();  // no call needs it any more; the store is still open
  services_->pipeline->Stop();
  services_->query_pool->Stop();
  services_.reset();  // closes the store, then releases the data directory
  spdlog::info("shutdown complete");
}

Server::~Server() { Shutdown(); }

}  // namespace clm::server
