#include "shardset/catalog.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/json_depth.h"
#include "base/strings.h"
#include "catalog/sqlite.h"
#include "shardset/remote.h"

namespace shardset {
namespace {

using json = nlohmann::json;

// PRAGMA application_id: "SHCT", so that a catalog is told from any other
// SQLite file.
constexpr int64_t kApplicationId = 0x53484354;

// kMigrations[v] takes a catalog from schema version v to v + 1
// (docs/formats/catalog.md "Versions"); each runs in one transaction.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the first schema.
    R"sql(
CREATE TABLE source(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  targets TEXT NOT NULL UNIQUE);
CREATE TABLE file(
  id INTEGER PRIMARY KEY,
  source INTEGER NOT NULL REFERENCES source(id),
  key TEXT NOT NULL,
  is_copy INTEGER NOT NULL,
  copied_from INTEGER REFERENCES file(id));
CREATE UNIQUE INDEX file_original ON file(source, key) WHERE is_copy = 0;
CREATE TABLE directory(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE);
CREATE TABLE member(
  directory INTEGER NOT NULL REFERENCES directory(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  file INTEGER NOT NULL REFERENCES file(id),
  PRIMARY KEY(directory, seq)) WITHOUT ROWID;
CREATE UNIQUE INDEX member_file ON member(directory, file);
CREATE TABLE instance(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  file INTEGER NOT NULL REFERENCES file(id),
  label TEXT NOT NULL,
  kind TEXT NOT NULL CHECK(kind IN ('box', 'polygon', 'mask')),
  geometry TEXT NOT NULL,
  mask TEXT NOT NULL DEFAULT '',
  attributes TEXT NOT NULL DEFAULT '{}',
  updated INTEGER NOT NULL);
CREATE INDEX instance_file ON instance(file);
)sql",
};
static_assert(std::size(kMigrations) == kCatalogVersion);

Status CheckDirectoryName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 255 && name != "." && name != "..";
  for (char c : name) {
    if (c == '/' || c == '#' || static_cast<unsigned char>(c) < 0x20) ok = false;
  }
  if (ok) return Status::OK();
  return Status::InvalidArgument(fmt::format(
      "'{}' cannot name a directory: use 1-255 bytes without '/', '#' or control characters",
      EscapeForDisplay(name)));
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string_view InstanceKindName(Instance::Kind k) {
  switch (k) {
    case Instance::Kind::kBox: return "box";
    case Instance::Kind::kPolygon: return "polygon";
    case Instance::Kind::kMask: return "mask";
  }
  return "box";
}

Result<Instance::Kind> ParseInstanceKind(std::string_view name) {
  if (name == "box") return Instance::Kind::kBox;
  if (name == "polygon") return Instance::Kind::kPolygon;
  if (name == "mask") return Instance::Kind::kMask;
  return Status::InvalidArgument(
      fmt::format("unknown instance kind '{}'; use box, polygon or mask", EscapeForDisplay(name)));
}

std::string InstanceJson(const Instance& in) {
  json j = {{"id", in.id}, {"label", in.label}, {"kind", std::string(InstanceKindName(in.kind))}};
  switch (in.kind) {
    case Instance::Kind::kBox: j["box"] = in.geometry; break;
    case Instance::Kind::kPolygon: j["polygon"] = in.geometry; break;
    case Instance::Kind::kMask: j["mask"] = in.mask; break;
  }
  json attrs = json::parse(in.attributes, nullptr, false);
  j["attributes"] = attrs.is_object() ? attrs : json::object();
  // A label typed on a command line may hold bytes that are not UTF-8:
  // they become U+FFFD rather than an exception.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

struct Catalog::Rep {
  std::unique_ptr<sql::Db> db;
  std::string folder;  // sources' targets are relative to it
  int busy_seconds = 60;
  std::vector<CatalogSource> sources;
  std::unordered_map<int64_t, size_t> source_index;

  // Runs `body` in a write transaction (BEGIN IMMEDIATE: the write lock is
  // taken first, so a busy database is waited for there, never half way),
  // retried with backoff while another process holds the lock, for up to
  // busy_seconds in all.
  Status Write(const std::function<Status()>& body) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(busy_seconds);
    std::chrono::milliseconds pause(5);
    for (;;) {
      Status s = db->Exec("BEGIN IMMEDIATE");
      if (s.ok()) {
        s = body();
        if (s.ok()) s = db->Exec("COMMIT");
        if (!s.ok()) (void)db->Exec("ROLLBACK");
      }
      if (s.ok() || !db->last_error_busy() || std::chrono::steady_clock::now() > deadline) {
        if (!s.ok() && db->last_error_busy()) {
          return Status::IOError(fmt::format(
              "{}: another process kept the catalog locked for {} s; try again when it is done",
              db->path(), busy_seconds));
        }
        return s;
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(500));
    }
  }

  Status Migrate() {
    SHARDSET_ASSIGN_OR_RETURN(sql::Stmt q, db->Prepare("PRAGMA application_id"));
    SHARDSET_ASSIGN_OR_RETURN(bool row, q.Step());
    const int64_t app = row ? q.Int(0) : 0;
    q.Reset();
    SHARDSET_ASSIGN_OR_RETURN(sql::Stmt v, db->Prepare("PRAGMA user_version"));
    SHARDSET_ASSIGN_OR_RETURN(row, v.Step());
    int64_t version = row ? v.Int(0) : 0;
    v.Reset();
    if (app != kApplicationId && (app != 0 || version != 0)) {
      return Status::InvalidArgument(
          fmt::format("{}: an SQLite database, but not a shardset catalog", db->path()));
    }
    if (version > kCatalogVersion) {
      return Status::NotSupported(fmt::format(
          "{}: catalog schema version {} (this shardset reads up to {}); upgrade shardset",
          db->path(), version, kCatalogVersion));
    }
    while (version < kCatalogVersion) {
      const int64_t from = version;
      SHARDSET_RETURN_IF_ERROR(Write([&]() -> Status {
        // Another process may have migrated it meanwhile.
        SHARDSET_ASSIGN_OR_RETURN(bool r, v.Step());
        const int64_t now = r ? v.Int(0) : 0;
        v.Reset();
        if (now != from) return Status::OK();
        SHARDSET_RETURN_IF_ERROR(db->Exec(kMigrations[from]));
        SHARDSET_RETURN_IF_ERROR(
            db->Exec(fmt::format("PRAGMA application_id = {}", kApplicationId).c_str()));
        return db->Exec(fmt::format("PRAGMA user_version = {}", from + 1).c_str());
      }));
      SHARDSET_ASSIGN_OR_RETURN(row, v.Step());
      version = row ? v.Int(0) : 0;
      v.Reset();
    }
    return Status::OK();
  }

  std::string Resolve(const std::string& target) const {
    if (IsRemote(target) || (!target.empty() && target[0] == '/')) return target;
    return JoinPath(folder, target);
  }

  Status LoadSources() {
    sources.clear();
    source_index.clear();
    SHARDSET_ASSIGN_OR_RETURN(sql::Stmt q,
                              db->Prepare("SELECT id, name, targets FROM source ORDER BY id"));
    for (;;) {
      SHARDSET_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      CatalogSource s;
      s.id = q.Int(0);
      s.name = std::string(q.Text(1));
      json t = json::parse(q.Text(2), nullptr, false);
      if (!t.is_array()) {
        return Status::Corruption(fmt::format("{}: source '{}' has targets that are not a JSON "
                                              "array; the catalog is damaged",
                                              db->path(), s.name));
      }
      for (const json& e : t) {
        if (e.is_string()) s.targets.push_back(Resolve(e.get<std::string>()));
      }
      source_index[s.id] = sources.size();
      sources.push_back(std::move(s));
    }
    return Status::OK();
  }

  // The seq the next file added to directory `d` gets (one past the last).
  Result<int64_t> NextSeq(int64_t d) const {
    SHARDSET_ASSIGN_OR_RETURN(
        sql::Stmt q,
        db->Prepare("SELECT coalesce(max(seq) + 1, 0) FROM member WHERE directory = ?"));
    q.Bind(1, d);
    SHARDSET_ASSIGN_OR_RETURN(bool row, q.Step());
    return row ? q.Int(0) : 0;
  }

  Result<int64_t> DirectoryId(std::string_view name) const {
    SHARDSET_ASSIGN_OR_RETURN(sql::Stmt q, db->Prepare("SELECT id FROM directory WHERE name = ?"));
    q.Bind(1, name);
    SHARDSET_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) {
      return Status::NotFound(fmt::format(
          "{}: no directory '{}'; see them with shardset dir ls --catalog {}", db->path(),
          EscapeForDisplay(name), db->path()));
    }
    return q.Int(0);
  }

  // The catalog source for view source `s` (its targets relative to the
  // catalog's folder), made when new; a name taken by other targets gets a
  // "~N" suffix.
  Result<int64_t> SourceFor(const ViewSource& s) {
    json rel = json::array();
    std::error_code ec;
    const std::filesystem::path base = std::filesystem::absolute(folder, ec);
    for (const std::string& t : s.targets) {
      if (IsRemote(t)) {  // a URL is recorded as it is
        rel.push_back(t);
        continue;
      }
      std::filesystem::path abs = std::filesystem::absolute(t, ec);
      std::filesystem::path r = std::filesystem::relative(abs, base, ec);
      rel.push_back(ec || r.empty() ? abs.lexically_normal().string() : r.string());
    }
    const std::string targets = rel.dump();
    SHARDSET_ASSIGN_OR_RETURN(sql::Stmt q, db->Prepare("SELECT id FROM source WHERE targets = ?"));
    q.Bind(1, targets);
    SHARDSET_ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) return q.Int(0);
    SHARDSET_ASSIGN_OR_RETURN(sql::Stmt ins,
                              db->Prepare("INSERT OR IGNORE INTO source(name, targets) VALUES(?, ?)"));
    for (int n = 1;; ++n) {
      const std::string name = n == 1 ? s.name : fmt::format("{}~{}", s.name, n);
      ins.Bind(1, name).Bind(2, targets);
      SHARDSET_RETURN_IF_ERROR(ins.Run());
      if (db->Changes() > 0) return db->LastInsertId();
    }
  }
};

Catalog::Catalog(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
Catalog::~Catalog() = default;

Result<std::unique_ptr<Catalog>> Catalog::Open(const std::string& path, bool create,
                                               int busy_seconds) {
  struct stat st;
  if (!create && ::stat(path.c_str(), &st) != 0) {
    return Status::NotFound(fmt::format(
        "{}: no catalog here; make one with shardset dir create NAME --catalog {}", path, path));
  }
  auto rep = std::make_unique<Rep>();
  rep->busy_seconds = busy_seconds;
  rep->folder = DirName(path);
  SHARDSET_ASSIGN_OR_RETURN(rep->db, sql::Db::Open(path, create, busy_seconds * 1000));
  SHARDSET_RETURN_IF_ERROR(rep->Migrate());
  SHARDSET_RETURN_IF_ERROR(rep->LoadSources());
  return std::unique_ptr<Catalog>(new Catalog(std::move(rep)));
}

const std::string& Catalog::path() const { return rep_->db->path(); }
const std::vector<CatalogSource>& Catalog::sources() const { return rep_->sources; }

Status Catalog::CreateDirectory(std::string_view name) {
  SHARDSET_RETURN_IF_ERROR(CheckDirectoryName(name));
  return rep_->Write([&]() -> Status {
    SHARDSET_ASSIGN_OR_RETURN(sql::Stmt q,
                              rep_->db->Prepare("INSERT OR IGNORE INTO directory(name) VALUES(?)"));
    q.Bind(1, name);
    SHARDSET_RETURN_IF_ERROR(q.Run());
    if (rep_->db->Changes() == 0) {
      return Status::AlreadyExists(fmt::format("{}: directory '{}' exists", path(),
                                               EscapeForDisplay(name)));
    }
    return Status::OK();
  });
}

Status Catalog::RemoveDirectory(std::string_view name) {
  return rep_->Write([&]() -> Status {
    SHARDSET_ASSIGN_OR_RETURN(int64_t id, rep_->DirectoryId(name));
    SHARDSET_ASSIGN_OR_RETURN(sql::Stmt q, rep_->db->Prepare("DELETE FROM directory WHERE id = ?"));
    return q.Bind(1, id).Run();
  });
}

Result<std::vector<DirectoryInfo>> Catalog::Directories() const {
  SHARDSET_ASSIGN_OR_RETURN(
      sql::Stmt q,
      rep_->db->Prepare("SELECT d.name, "
                        "(SELECT count(*) FROM member m WHERE m.directory = d.id), "
                        "(SELECT count(*) FROM member m JOIN instance i ON i.file = m.file "
                        " WHERE m.directory = d.id) "
                        "FROM directory d ORDER BY d.name"));
  std::vector<DirectoryInfo> out;
  for (;;) {
    SHARDSET_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(DirectoryInfo{std::string(q.Text(0)), static_cast<uint64_t>(q.Int(1)),
                                static_cast<uint64_t>(q.Int(2))});
  }
  return out;
}

Result<uint64_t> Catalog::Add(std::string_view dir, const View& view,
                              const std::vector<uint64_t>* positions) {
  uint64_t added = 0;
  Status s = rep_->Write([&]() -> Status {
    added = 0;
    SHARDSET_ASSIGN_OR_RETURN(int64_t d, rep_->DirectoryId(dir));
    std::vector<int64_t> source_ids;
    for (size_t i = 0; i < view.num_sources(); ++i) {
      SHARDSET_ASSIGN_OR_RETURN(int64_t id, rep_->SourceFor(view.source(i)));
      source_ids.push_back(id);
    }
    sql::Db& db = *rep_->db;
    SHARDSET_ASSIGN_OR_RETURN(
        sql::Stmt find, db.Prepare("SELECT id FROM file WHERE source = ? AND key = ? AND is_copy = 0"));
    SHARDSET_ASSIGN_OR_RETURN(
        sql::Stmt make, db.Prepare("INSERT INTO file(source, key, is_copy) VALUES(?, ?, 0)"));
    SHARDSET_ASSIGN_OR_RETURN(
        sql::Stmt put,
        db.Prepare("INSERT OR IGNORE INTO member(directory, seq, file) VALUES(?, ?, ?)"));
    SHARDSET_ASSIGN_OR_RETURN(int64_t seq, rep_->NextSeq(d));
    const uint64_t n = positions ? positions->size() : view.num_samples();
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t pos = positions ? (*positions)[i] : i;
      SHARDSET_ASSIGN_OR_RETURN(std::string key, view.Key(pos));
      const int64_t src = source_ids[view.entry(pos).source];
      find.Bind(1, src).Bind(2, key);
      SHARDSET_ASSIGN_OR_RETURN(bool found, find.Step());
      int64_t file = found ? find.Int(0) : 0;
      find.Reset();
      if (!found) {
        SHARDSET_RETURN_IF_ERROR(make.Bind(1, src).Bind(2, key).Run());
        file = db.LastInsertId();
      }
      SHARDSET_RETURN_IF_ERROR(put.Bind(1, d).Bind(2, seq).Bind(3, file).Run());
      if (db.Changes() > 0) {
        ++seq;
        ++added;
      }
    }
    return Status::OK();
  });
  SHARDSET_RETURN_IF_ERROR(s);
  SHARDSET_RETURN_IF_ERROR(rep_->LoadSources());
  return added;
}

Result<std::vector<CatalogFile>> Catalog::Files(std::string_view dir) const {
  SHARDSET_ASSIGN_OR_RETURN(int64_t d, rep_->DirectoryId(dir));
  SHARDSET_ASSIGN_OR_RETURN(
      sql::Stmt q, rep_->db->Prepare("SELECT f.id, f.source, f.key, coalesce(f.copied_from, 0) "
                                     "FROM member m JOIN file f ON f.id = m.file "
                                     "WHERE m.directory = ? ORDER BY m.seq"));
  q.Bind(1, d);
  std::vector<CatalogFile> out;
  for (;;) {
    SHARDSET_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    auto it = rep_->source_index.find(q.Int(1));
    if (it == rep_->source_index.end()) {
      return Status::Corruption(fmt::format("{}: file {} names source {}, which does not exist",
                                            path(), q.Int(0), q.Int(1)));
    }
    out.push_back(CatalogFile{q.Int(0), it->second, std::string(q.Text(2)), q.Int(3)});
  }
  return out;
}

Result<CatalogFile> Catalog::FindFile(std::string_view dir, std::string_view key) const {
  SHARDSET_ASSIGN_OR_RETURN(int64_t d, rep_->DirectoryId(dir));
  SHARDSET_ASSIGN_OR_RETURN(
      sql::Stmt q, rep_->db->Prepare("SELECT f.id, f.source, coalesce(f.copied_from, 0) "
                                     "FROM member m JOIN file f ON f.id = m.file "
                                     "WHERE m.directory = ? AND f.key = ? ORDER BY m.seq LIMIT 1"));
  q.Bind(1, d).Bind(2, key);
  SHARDSET_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) {
    return Status::NotFound(fmt::format("{}: directory '{}' has no sample with key '{}'", path(),
                                        EscapeForDisplay(dir), EscapeForDisplay(key)));
  }
  auto it = rep_->source_index.find(q.Int(1));
  return CatalogFile{q.Int(0), it == rep_->source_index.end() ? 0 : it->second, std::string(key),
                     q.Int(2)};
}

Result<uint64_t> Catalog::Mirror(std::string_view src, std::string_view dst,
                                 const std::function<bool(const CatalogFile&)>& keep) {
  SHARDSET_ASSIGN_OR_RETURN(std::vector<CatalogFile> files, Files(src));
  uint64_t added = 0;
  SHARDSET_RETURN_IF_ERROR(rep_->Write([&]() -> Status {
    added = 0;
    sql::Db& db = *rep_->db;
    SHARDSET_ASSIGN_OR_RETURN(int64_t d, rep_->DirectoryId(dst));
    SHARDSET_ASSIGN_OR_RETURN(
        sql::Stmt put,
        db.Prepare("INSERT OR IGNORE INTO member(directory, seq, file) VALUES(?, ?, ?)"));
    SHARDSET_ASSIGN_OR_RETURN(int64_t seq, rep_->NextSeq(d));
    for (const CatalogFile& f : files) {
      if (keep && !keep(f)) continue;
      SHARDSET_RETURN_IF_ERROR(put.Bind(1, d).Bind(2, seq).Bind(3, f.id).Run());
      if (db.Changes() > 0) {
        ++seq;
        ++added;
      }
    }
    return Status::OK();
  }));
  return added;
}

Result<uint64_t> Catalog::Copy(std::string_view src, std::string_view dst, bool annotations,
                               const std::function<bool(const CatalogFile&)>& keep) {
  SHARDSET_ASSIGN_OR_RETURN(std::vector<CatalogFile> files, Files(src));
  uint64_t added = 0;
  SHARDSET_RETURN_IF_ERROR(rep_->Write([&]() -> Status {
    added = 0;
    sql::Db& db = *rep_->db;
    SHARDSET_ASSIGN_OR_RETURN(int64_t d, rep_->DirectoryId(dst));
    SHARDSET_ASSIGN_OR_RETURN(
        sql::Stmt make,
        db.Prepare("INSERT INTO file(source, key, is_copy, copied_from) "
                   "SELECT source, key, 1, id FROM file WHERE id = ?"));
    SHARDSET_ASSIGN_OR_RETURN(
        sql::Stmt put, db.Prepare("INSERT INTO member(directory, seq, file) VALUES(?, ?, ?)"));
    SHARDSET_ASSIGN_OR_RETURN(
        sql::Stmt copy_instances,
        db.Prepare("INSERT INTO instance(file, label, kind, geometry, mask, attributes, updated) "
                   "SELECT ?, label, kind, geometry, mask, attributes, ? FROM instance "
                   "WHERE file = ? ORDER BY id"));
    SHARDSET_ASSIGN_OR_RETURN(int64_t seq, rep_->NextSeq(d));
    const int64_t now = NowSeconds();
    for (const CatalogFile& f : files) {
      if (keep && !keep(f)) continue;
      SHARDSET_RETURN_IF_ERROR(make.Bind(1, f.id).Run());
      const int64_t file = db.LastInsertId();
      SHARDSET_RETURN_IF_ERROR(put.Bind(1, d).Bind(2, seq++).Bind(3, file).Run());
      if (annotations) {
        SHARDSET_RETURN_IF_ERROR(copy_instances.Bind(1, file).Bind(2, now).Bind(3, f.id).Run());
      }
      ++added;
    }
    return Status::OK();
  }));
  return added;
}

namespace {

Status CheckInstance(const Instance& in) {
  if (in.label.empty()) return Status::InvalidArgument("an instance needs a label (its class)");
  for (double g : in.geometry) {
    if (!std::isfinite(g)) return Status::InvalidArgument("instance geometry must be finite numbers");
  }
  switch (in.kind) {
    case Instance::Kind::kBox:
      if (in.geometry.size() != 4 || in.geometry[2] < 0 || in.geometry[3] < 0) {
        return Status::InvalidArgument(
            "a box is x, y, width, height (4 numbers, width and height not negative)");
      }
      break;
    case Instance::Kind::kPolygon:
      if (in.geometry.size() < 6 || in.geometry.size() % 2 != 0) {
        return Status::InvalidArgument("a polygon is x1, y1, x2, y2, ... (at least 3 points)");
      }
      break;
    case Instance::Kind::kMask:
      if (in.mask.empty() || !in.geometry.empty()) {
        return Status::InvalidArgument("a mask instance names its mask and has no geometry");
      }
      break;
  }
  if (!JsonDepthWithin(in.attributes) || !json::parse(in.attributes, nullptr, false).is_object()) {
    return Status::InvalidArgument(fmt::format("instance attributes must be a JSON object, not '{}'",
                                               EscapeForDisplay(in.attributes.substr(0, 80))));
  }
  return Status::OK();
}

}  // namespace

Result<int64_t> Catalog::AddInstance(int64_t file, const Instance& in) {
  SHARDSET_RETURN_IF_ERROR(CheckInstance(in));
  int64_t id = 0;
  SHARDSET_RETURN_IF_ERROR(rep_->Write([&]() -> Status {
    SHARDSET_ASSIGN_OR_RETURN(
        sql::Stmt q,
        rep_->db->Prepare("INSERT INTO instance(file, label, kind, geometry, mask, attributes, "
                          "updated) VALUES(?, ?, ?, ?, ?, ?, ?)"));
    q.Bind(1, file).Bind(2, in.label).Bind(3, InstanceKindName(in.kind));
    q.Bind(4, json(in.geometry).dump()).Bind(5, in.mask).Bind(6, in.attributes);
    q.Bind(7, NowSeconds());
    Status s = q.Run();
    if (!s.ok() && s.code() == Status::Code::kInvalidArgument) {
      return Status::NotFound(fmt::format("{}: no file {}", path(), file));
    }
    SHARDSET_RETURN_IF_ERROR(s);
    id = rep_->db->LastInsertId();
    return Status::OK();
  }));
  return id;
}

Status Catalog::UpdateInstance(const Instance& in) {
  SHARDSET_RETURN_IF_ERROR(CheckInstance(in));
  return rep_->Write([&]() -> Status {
    SHARDSET_ASSIGN_OR_RETURN(
        sql::Stmt q, rep_->db->Prepare("UPDATE instance SET label = ?, kind = ?, geometry = ?, "
                                       "mask = ?, attributes = ?, updated = ? WHERE id = ?"));
    q.Bind(1, in.label).Bind(2, InstanceKindName(in.kind)).Bind(3, json(in.geometry).dump());
    q.Bind(4, in.mask).Bind(5, in.attributes).Bind(6, NowSeconds()).Bind(7, in.id);
    SHARDSET_RETURN_IF_ERROR(q.Run());
    if (rep_->db->Changes() == 0) {
      return Status::NotFound(fmt::format("{}: no instance {}", path(), in.id));
    }
    return Status::OK();
  });
}

Status Catalog::RemoveInstance(int64_t id) {
  return rep_->Write([&]() -> Status {
    SHARDSET_ASSIGN_OR_RETURN(sql::Stmt q, rep_->db->Prepare("DELETE FROM instance WHERE id = ?"));
    SHARDSET_RETURN_IF_ERROR(q.Bind(1, id).Run());
    if (rep_->db->Changes() == 0) {
      return Status::NotFound(fmt::format("{}: no instance {}", path(), id));
    }
    return Status::OK();
  });
}

namespace {

// The instance in columns [c, c + 6) of `q`'s row: id, label, kind,
// geometry, mask, attributes.
Result<Instance> InstanceAt(const sql::Stmt& q, int c, int64_t file, const std::string& db) {
  Instance in;
  in.id = q.Int(c);
  in.file = file;
  in.label = std::string(q.Text(c + 1));
  Result<Instance::Kind> kind = ParseInstanceKind(q.Text(c + 2));
  if (!kind.ok()) {
    return Status::Corruption(fmt::format("{}: instance {} has kind '{}'; the catalog is damaged",
                                          db, in.id, EscapeForDisplay(q.Text(c + 2))));
  }
  in.kind = *kind;
  json g = json::parse(q.Text(c + 3), nullptr, false);
  if (!g.is_array()) {
    return Status::Corruption(
        fmt::format("{}: instance {} has geometry that is not a JSON array", db, in.id));
  }
  for (const json& v : g) {
    if (v.is_number()) in.geometry.push_back(v.get<double>());
  }
  in.mask = std::string(q.Text(c + 4));
  in.attributes = std::string(q.Text(c + 5));
  return in;
}

}  // namespace

Result<std::vector<Instance>> Catalog::Instances(int64_t file) const {
  SHARDSET_ASSIGN_OR_RETURN(
      sql::Stmt q, rep_->db->Prepare("SELECT id, label, kind, geometry, mask, attributes "
                                     "FROM instance WHERE file = ? ORDER BY id"));
  q.Bind(1, file);
  std::vector<Instance> out;
  for (;;) {
    SHARDSET_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    SHARDSET_ASSIGN_OR_RETURN(Instance in, InstanceAt(q, 0, file, path()));
    out.push_back(std::move(in));
  }
  return out;
}

Result<Instance> Catalog::GetInstance(int64_t id) const {
  SHARDSET_ASSIGN_OR_RETURN(
      sql::Stmt q, rep_->db->Prepare("SELECT id, label, kind, geometry, mask, attributes, file "
                                     "FROM instance WHERE id = ?"));
  q.Bind(1, id);
  SHARDSET_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Status::NotFound(fmt::format("{}: no instance {}", path(), id));
  return InstanceAt(q, 0, q.Int(6), path());
}

Status Catalog::AddInstances(std::vector<Instance>* instances, std::string_view clear_dir,
                             uint64_t* removed) {
  for (const Instance& in : *instances) SHARDSET_RETURN_IF_ERROR(CheckInstance(in));
  uint64_t gone = 0;
  SHARDSET_RETURN_IF_ERROR(rep_->Write([&]() -> Status {
    gone = 0;
    sql::Db& db = *rep_->db;
    if (!clear_dir.empty()) {
      SHARDSET_ASSIGN_OR_RETURN(int64_t d, rep_->DirectoryId(clear_dir));
      SHARDSET_ASSIGN_OR_RETURN(
          sql::Stmt clear,
          db.Prepare("DELETE FROM instance WHERE file IN "
                     "(SELECT file FROM member WHERE directory = ?)"));
      SHARDSET_RETURN_IF_ERROR(clear.Bind(1, d).Run());
      gone = static_cast<uint64_t>(db.Changes());
    }
    SHARDSET_ASSIGN_OR_RETURN(
        sql::Stmt q,
        db.Prepare("INSERT INTO instance(file, label, kind, geometry, mask, attributes, "
                   "updated) VALUES(?, ?, ?, ?, ?, ?, ?)"));
    const int64_t now = NowSeconds();
    for (Instance& in : *instances) {
      q.Bind(1, in.file).Bind(2, in.label).Bind(3, InstanceKindName(in.kind));
      q.Bind(4, json(in.geometry).dump()).Bind(5, in.mask).Bind(6, in.attributes).Bind(7, now);
      Status s = q.Run();
      if (!s.ok() && s.code() == Status::Code::kInvalidArgument) {
        return Status::NotFound(fmt::format("{}: no file {}", path(), in.file));
      }
      SHARDSET_RETURN_IF_ERROR(s);
      in.id = db.LastInsertId();
    }
    return Status::OK();
  }));
  if (removed) *removed = gone;
  return Status::OK();
}

Status Catalog::SnapshotTo(const std::string& path) const {
  std::string quoted = "'";
  for (char c : path) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  quoted += "'";
  return rep_->db->Exec(fmt::format("VACUUM INTO {}", quoted).c_str());
}

Status Catalog::ReadSnapshot(const std::function<Status()>& body) const {
  // A deferred transaction: the snapshot is taken by its first read.
  SHARDSET_RETURN_IF_ERROR(rep_->db->Exec("BEGIN"));
  Status s = body();
  Status end = rep_->db->Exec(s.ok() ? "COMMIT" : "ROLLBACK");
  return s.ok() ? end : s;
}

Status Catalog::Scan(
    std::string_view dir,
    const std::function<Status(const CatalogFile&, std::vector<Instance>&&)>& fn) const {
  SHARDSET_ASSIGN_OR_RETURN(int64_t d, rep_->DirectoryId(dir));
  SHARDSET_ASSIGN_OR_RETURN(
      sql::Stmt q,
      rep_->db->Prepare("SELECT m.seq, f.id, f.source, f.key, coalesce(f.copied_from, 0), "
                        "i.id, i.label, i.kind, i.geometry, i.mask, i.attributes "
                        "FROM member m JOIN file f ON f.id = m.file "
                        "LEFT JOIN instance i ON i.file = f.id "
                        "WHERE m.directory = ? ORDER BY m.seq, i.id"));
  q.Bind(1, d);
  bool have = false;
  int64_t seq = 0;
  CatalogFile file;
  std::vector<Instance> instances;
  for (;;) {
    SHARDSET_ASSIGN_OR_RETURN(bool row, q.Step());
    if (have && (!row || q.Int(0) != seq)) {
      SHARDSET_RETURN_IF_ERROR(fn(file, std::move(instances)));
      instances.clear();
      have = false;
    }
    if (!row) break;
    if (!have) {
      auto it = rep_->source_index.find(q.Int(2));
      if (it == rep_->source_index.end()) {
        return Status::Corruption(fmt::format(
            "{}: file {} names source {}, which does not exist", path(), q.Int(1), q.Int(2)));
      }
      seq = q.Int(0);
      file = CatalogFile{q.Int(1), it->second, std::string(q.Text(3)), q.Int(4)};
      have = true;
    }
    if (!q.IsNull(5)) {
      SHARDSET_ASSIGN_OR_RETURN(Instance in, InstanceAt(q, 5, file.id, path()));
      instances.push_back(std::move(in));
    }
  }
  return Status::OK();
}

Result<std::vector<std::string>> Catalog::Labels(std::string_view dir) const {
  SHARDSET_ASSIGN_OR_RETURN(int64_t d, rep_->DirectoryId(dir));
  SHARDSET_ASSIGN_OR_RETURN(
      sql::Stmt q, rep_->db->Prepare("SELECT DISTINCT i.label FROM member m "
                                     "JOIN instance i ON i.file = m.file "
                                     "WHERE m.directory = ? ORDER BY i.label"));
  q.Bind(1, d);
  std::vector<std::string> out;
  for (;;) {
    SHARDSET_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.emplace_back(q.Text(0));
  }
  return out;
}

Status Catalog::CheckIntegrity() const {
  SHARDSET_ASSIGN_OR_RETURN(sql::Stmt q, rep_->db->Prepare("PRAGMA integrity_check"));
  std::string problems;
  for (;;) {
    SHARDSET_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    if (q.Text(0) != "ok") problems += (problems.empty() ? "" : "; ") + std::string(q.Text(0));
  }
  SHARDSET_ASSIGN_OR_RETURN(sql::Stmt fk, rep_->db->Prepare("PRAGMA foreign_key_check"));
  SHARDSET_ASSIGN_OR_RETURN(bool bad_fk, fk.Step());
  if (bad_fk) problems += (problems.empty() ? "" : "; ") + std::string("a foreign key is broken");
  if (problems.empty()) return Status::OK();
  return Status::Corruption(fmt::format("{}: {}", path(), problems));
}

}  // namespace shardset
