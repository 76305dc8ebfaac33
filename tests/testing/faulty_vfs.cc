#include "tests/testing/faulty_vfs.h"

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <stdexcept>

namespace clm::testing {
namespace {

constexpr const char* kName = "clm-faulty";

std::atomic<FaultyVfs::Fault> g_fault{FaultyVfs::Fault::kNone};
std::atomic<int> g_failed{0};
sqlite3_vfs* g_real = nullptr;

// Our file: the header SQLite sees, followed by the real VFS's file.
struct FaultyFile {
  sqlite3_file base;
  sqlite3_file* real;
};

sqlite3_file* Real(sqlite3_file* file) { return reinterpret_cast<FaultyFile*>(file)->real; }

bool Failing(FaultyVfs::Fault when) {
  FaultyVfs::Fault fault = g_fault.load();
  if (fault == FaultyVfs::Fault::kNone || (when != FaultyVfs::Fault::kNone && fault != when)) return false;
  g_failed.fetch_add(1);
  return true;
}

int Close(sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); }
int Read(sqlite3_file* f, void* buf, int amount, sqlite3_int64 offset) {
  return Real(f)->pMethods->xRead(Real(f), buf, amount, offset);
}
int Write(sqlite3_file* f, const void* buf, int amount, sqlite3_int64 offset) {
  if (Failing(FaultyVfs::Fault::kNone)) {
    return g_fault.load() == FaultyVfs::Fault::kDiskFull ? SQLITE_FULL : SQLITE_IOERR_WRITE;
  }
  return Real(f)->pMethods->xWrite(Real(f), buf, amount, offset);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (Failing(FaultyVfs::Fault::kIoError)) return SQLITE_IOERR_TRUNCATE;
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
int Sync(sqlite3_file* f, int flags) {
  if (Failing(FaultyVfs::Fault::kIoError)) return SQLITE_IOERR_FSYNC;
  return Real(f)->pMethods->xSync(Real(f), flags);
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) { return Real(f)->pMethods->xFileSize(Real(f), size); }
int Lock(sqlite3_file* f, int level) { return Real(f)->pMethods->xLock(Real(f), level); }
int Unlock(sqlite3_file* f, int level) { return Real(f)->pMethods->xUnlock(Real(f), level); }
int CheckReservedLock(sqlite3_file* f, int* out) { return Real(f)->pMethods->xCheckReservedLock(Real(f), out); }
int FileControl(sqlite3_file* f, int op, void* arg) { return Real(f)->pMethods->xFileControl(Real(f), op, arg); }
int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) { return Real(f)->pMethods->xDeviceCharacteristics(Real(f)); }
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int delete_flag) { return Real(f)->pMethods->xShmUnmap(Real(f), delete_flag); }
int Fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  return Real(f)->pMethods->xFetch(Real(f), offset, amount, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) { return Real(f)->pMethods->xUnfetch(Real(f), offset, p); }

const sqlite3_io_methods kMethods = {
    3,         Close,    Read,   Write,      Truncate,   Sync,     FileSize, Lock,  Unlock, CheckReservedLock,
    FileControl, SectorSize, DeviceCharacteristics, ShmMap, ShmLock, ShmBarrier, ShmUnmap, Fetch, Unfetch};

int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  auto* ours = reinterpret_cast<FaultyFile*>(file);
  ours->real = reinterpret_cast<sqlite3_file*>(ours + 1);
  int rc = g_real->xOpen(g_real, name, ours->real, flags, out_flags);
  // SQLite calls xClose only when pMethods is set: leave it unset when the real open failed.
  ours->base.pMethods = ours->real->pMethods != nullptr ? &kMethods : nullptr;
  return rc;
}

// A stale errno must not make SQLite's error look like ENOSPC: the faults here have none.
int GetLastError(sqlite3_vfs*, int, char*) { return 0; }

sqlite3_vfs* Build() {
  if (sqlite3_initialize() != SQLITE_OK) throw std::runtime_error("sqlite3_initialize failed");
  g_real = sqlite3_vfs_find(nullptr);
  if (g_real == nullptr || g_real->iVersion < 1) throw std::runtime_error("no default SQLite VFS");
  static sqlite3_vfs vfs;
  std::memcpy(&vfs, g_real, sizeof(vfs));  // every other method is the real one's
  vfs.szOsFile = static_cast<int>(sizeof(FaultyFile)) + g_real->szOsFile;
  vfs.zName = kName;
  vfs.pNext = nullptr;
  vfs.xOpen = Open;
  vfs.xGetLastError = GetLastError;
  if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK) throw std::runtime_error("sqlite3_vfs_register failed");
  return &vfs;
}

}  // namespace

const char* FaultyVfs::Name() {
  static sqlite3_vfs* vfs = Build();
  return vfs->zName;
}

void FaultyVfs::Set(Fault fault) { g_fault.store(fault); }

int FaultyVfs::FailedCalls() { return g_failed.load(); }

}  // namespace clm::testing
