// A thin RAII layer over SQLite's C API for the catalog: statements are
// prepared once and reset between uses; every error becomes a Status naming
// the database file and SQLite's message.
#ifndef SHARDSET_CATALOG_SQLITE_H_
#define SHARDSET_CATALOG_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "shardset/status.h"

namespace shardset::sql {

class Db;

class Stmt {
 public:
  Stmt() = default;
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept;
  ~Stmt();

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, std::string_view v);
  Stmt& BindNull(int i);
  // True when a row is ready, false when done; reset it with Reset().
  Result<bool> Step();
  // Runs a statement that returns no row (or ignores them), then resets it.
  Status Run();
  void Reset();
  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string_view Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string_view(p, sqlite3_column_bytes(s_, col)) : std::string_view();
  }

 private:
  friend class Db;
  Stmt(const Db* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  const Db* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
};

class Db {
 public:
  // Opens (or creates, when `create`) the database at `path`, in WAL mode
  // with foreign keys on and a busy timeout of `busy_ms`.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, bool create, int busy_ms);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  Status Exec(const char* sql);
  Result<Stmt> Prepare(const char* sql) const;
  int64_t LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
  int64_t Changes() const { return sqlite3_changes64(db_); }
  const std::string& path() const { return path_; }
  // True when the last error was another connection's lock (SQLITE_BUSY or
  // SQLITE_LOCKED, after the busy timeout): the caller may retry.
  bool last_error_busy() const { return last_busy_; }
  // IOError (or Corruption for a damaged file) with the file and SQLite's
  // message; `what` says what was being done.
  Status Error(int rc, std::string_view what) const;

 private:
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  mutable bool last_busy_ = false;
};

// True for the result codes that mean "another connection holds the lock":
// the catalog retries those (with backoff) rather than report them.
inline bool IsBusy(int rc) { return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED; }

}  // namespace shardset::sql

#endif  // SHARDSET_CATALOG_SQLITE_H_
