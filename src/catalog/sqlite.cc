#include "catalog/sqlite.h"

#include <fmt/format.h>

namespace shardset::sql {

Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    if (s_) sqlite3_finalize(s_);
    db_ = o.db_;
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}

Stmt::~Stmt() {
  if (s_) sqlite3_finalize(s_);
}

Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}

Stmt& Stmt::Bind(int i, std::string_view v) {
  sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}

Result<bool> Stmt::Step() {
  const int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status s = db_->Error(rc, sqlite3_sql(s_));
  sqlite3_reset(s_);
  return s;
}

Status Stmt::Run() {
  Result<bool> r = Step();
  Reset();
  return r.status();
}

void Stmt::Reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, bool create, int busy_ms) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  std::unique_ptr<Db> out(new Db(db, path));
  if (rc != SQLITE_OK) {
    if (!create && (rc & 0xff) == SQLITE_CANTOPEN) {
      return Status::NotFound(fmt::format(
          "{}: no catalog here; make one with shardset dir create NAME --catalog {}", path, path));
    }
    return out->Error(rc, "open");
  }
  sqlite3_busy_timeout(db, busy_ms);
  sqlite3_extended_result_codes(db, 1);
  SHARDSET_RETURN_IF_ERROR(out->Exec("PRAGMA foreign_keys = ON"));
  // WAL: readers never block the writer nor the writer them; NORMAL sync
  // is durable across a process crash, and across power loss up to the
  // last checkpoint (docs/formats/catalog.md "Durability").
  SHARDSET_RETURN_IF_ERROR(out->Exec("PRAGMA journal_mode = WAL"));
  SHARDSET_RETURN_IF_ERROR(out->Exec("PRAGMA synchronous = NORMAL"));
  return out;
}

Db::~Db() { sqlite3_close_v2(db_); }

Status Db::Exec(const char* sql) {
  char* msg = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
  if (rc == SQLITE_OK) return Status::OK();
  std::string m = msg ? msg : sqlite3_errstr(rc);
  sqlite3_free(msg);
  return Error(rc, fmt::format("{} ({})", sql, m));
}

Result<Stmt> Db::Prepare(const char* sql) const {
  sqlite3_stmt* s = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return Error(rc, sql);
  return Stmt(this, s);
}

Status Db::Error(int rc, std::string_view what) const {
  last_busy_ = IsBusy(rc);
  const std::string msg = fmt::format("{}: SQLite: {} (while: {})", path_, sqlite3_errmsg(db_),
                                      what.substr(0, 120));
  const int primary = rc & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    return Status::Corruption(msg + "; the catalog is damaged: restore it from a backup");
  }
  if (primary == SQLITE_CONSTRAINT) return Status::InvalidArgument(msg);
  return Status::IOError(msg);
}

}  // namespace shardset::sql
