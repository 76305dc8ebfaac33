#ifndef CLM_LIB_STORE_MIGRATIONS_H_
#define CLM_LIB_STORE_MIGRATIONS_H_

#include "absl/status/status.h"
#include "lib/store/sqlite.h"

namespace clm::store {

// The schema version this build writes. A database from a newer build is refused rather than guessed at.
int LatestSchemaVersion();

// Brings the database to LatestSchemaVersion(), one transaction per migration, recording each applied
// version in schema_migrations. Safe to call on every start and from several processes.
absl::Status Migrate(Database& db);

}  // namespace clm::store

#endif  // CLM_LIB_STORE_MIGRATIONS_H_
