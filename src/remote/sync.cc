// shardset sync: a dataset copied between folders and object stores, once.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <vector>

#include <fmt/format.h>

#include "base/file.h"
#include "base/hash.h"
#include "base/strings.h"
#include "remote/cache.h"
#include "remote/client.h"
#include "shardset/catalog.h"
#include "shardset/dataset.h"
#include "shardset/remote.h"
#include "shardset/view.h"

namespace shardset {
namespace {

struct File {
  std::string name;
  uint64_t size = 0;  // 0 for sidecars: asked of the source
  uint64_t xxh3 = 0;  // 0: not known
  bool optional = false;
};

std::string Join(const std::string& base, const std::string& name) {
  return IsRemote(base) ? remote::JoinUrl(base, name) : JoinPath(base, name);
}

bool SafeName(const std::string& name) {
  if (name.empty() || name[0] == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    const std::string_view part(name.data() + start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

// The size of a file or object; -1 when it does not exist.
Result<int64_t> SizeAt(remote::Client& client, const std::string& where) {
  if (IsRemote(where)) {
    auto size = client.Size(where);
    if (!size.ok()) {
      if (size.status().IsNotFound()) return int64_t{-1};
      return size.status();
    }
    return static_cast<int64_t>(*size);
  }
  struct stat st;
  if (::stat(where.c_str(), &st) != 0) {
    if (errno == ENOENT) return int64_t{-1};
    return Status::FromErrno(where, errno);
  }
  return static_cast<int64_t>(st.st_size);
}

Status MakeDirsFor(const std::string& path) {
  const std::string dir = DirName(path);
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    const std::string part = dir.substr(0, i);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::FromErrno(part, errno);
    }
  }
  return Status::OK();
}

// Puts `bytes` at `to` unless it holds them already; true if written.
Result<bool> PutIfChanged(remote::Client& client, const std::string& to, const std::string& bytes,
                          bool sync) {
  std::string old;
  bool have = false;
  if (IsRemote(to)) {
    auto got = client.Get(to, bytes.size() + 1);
    have = got.ok();
    if (have) {
      old = std::move(*got);
    } else if (!got.status().IsNotFound() &&
               got.status().code() != Status::Code::kResourceExhausted) {
      return got.status();
    }
  } else if (PathExists(to)) {
    auto got = ReadFile(to, bytes.size() + 1);
    have = got.ok();
    if (have) old = std::move(*got);
  }
  if (have && old == bytes) return false;
  if (IsRemote(to)) {
    SHARDSET_RETURN_IF_ERROR(client.Put(to, bytes));
  } else {
    SHARDSET_RETURN_IF_ERROR(MakeDirsFor(to));
    SHARDSET_RETURN_IF_ERROR(WriteFileAtomic(to, bytes, sync));
  }
  return true;
}

}  // namespace

Status SyncOneDataset(remote::Client& client, remote::Cache& cache, const std::string& src,
                      const std::string& dst, const SyncOptions& options, SyncReport* report) {
  const std::string manifest_src = Join(src, std::string(kManifestName));
  std::string text;
  if (IsRemote(src)) {
    SHARDSET_ASSIGN_OR_RETURN(text, client.Get(manifest_src, kMaxManifestBytes));
  } else {
    if (!IsDirectory(src)) {
      return Status::InvalidArgument(fmt::format(
          "{}: not a dataset folder; sync copies datasets (a folder with {})", src,
          kManifestName));
    }
    SHARDSET_ASSIGN_OR_RETURN(text, ReadFile(manifest_src, kMaxManifestBytes));
  }
  SHARDSET_ASSIGN_OR_RETURN(Manifest manifest, Manifest::FromJson(text, manifest_src));

  std::vector<File> files;
  for (const ManifestShard& ms : manifest.shards) {
    if (!SafeName(ms.path)) {
      return Status::NotSupported(fmt::format(
          "{}: lists the shard {} outside the dataset folder; sync copies a dataset whose "
          "shards are inside it (re-pack it, or copy the shards in and run dataset create)",
          manifest_src, ms.path));
    }
    files.push_back({ms.path, ms.file_size, ms.xxh3, false});
    for (const std::string& sidecar : SidecarPaths(ms.path, ms.format)) {
      files.push_back({sidecar, 0, 0, true});
    }
  }

  for (const File& f : files) {
    const std::string from = Join(src, f.name), to = Join(dst, f.name);
    uint64_t size = f.size;
    if (f.optional) {
      SHARDSET_ASSIGN_OR_RETURN(int64_t s, SizeAt(client, from));
      if (s < 0) continue;  // this shard has no such sidecar
      size = static_cast<uint64_t>(s);
    }
    SHARDSET_ASSIGN_OR_RETURN(int64_t have, SizeAt(client, to));
    if (have >= 0 && static_cast<uint64_t>(have) == size) {
      // Shards never change under a name: one of the same size is this one
      // (--verify checks its bytes).
      report->files_skipped++;
      report->bytes_skipped += size;
      if (options.progress) options.progress(f.name, size, true);
      continue;
    }
    if (IsRemote(from) && !IsRemote(to)) {
      // Straight into DST, checked against the manifest as it arrives.
      SHARDSET_RETURN_IF_ERROR(MakeDirsFor(to));
      SHARDSET_RETURN_IF_ERROR(
          remote::DownloadChecked(client, from, {size, f.xxh3}, to, options.sync));
    } else {
      // The bytes, local and checked: a remote source through the cache
      // (checked as it arrives), a local one here.
      std::string local = from;
      if (IsRemote(from)) {
        SHARDSET_ASSIGN_OR_RETURN(local, cache.Fetch(from, {size, f.xxh3}));
      }
      SHARDSET_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(local));
      if (file.size() != size) {
        return Status::Corruption(fmt::format(
            "{}: {} bytes, but the manifest says {}; the source changed: verify it", from,
            file.size(), size));
      }
      if (f.xxh3 != 0 && !IsRemote(from)) {
        file.AdviseSequential();
        if (Xxh3(file.data()) != f.xxh3) {
          return Status::Corruption(fmt::format(
              "{}: its checksum differs from the manifest's; not copying a damaged shard: "
              "restore it from a backup first",
              from));
        }
      }
      if (IsRemote(to)) {
        SHARDSET_RETURN_IF_ERROR(client.PutFile(to, local));
      } else {
        SHARDSET_RETURN_IF_ERROR(MakeDirsFor(to));
        SHARDSET_ASSIGN_OR_RETURN(auto out, AtomicFile::Create(to, options.sync));
        SHARDSET_RETURN_IF_ERROR(out->Append(file.data()));
        SHARDSET_RETURN_IF_ERROR(out->Commit(options.sync, /*overwrite=*/true));
      }
    }
    report->files_copied++;
    report->bytes_copied += size;
    if (options.progress) options.progress(f.name, size, false);
  }

  // The manifest last: until it is there, DST is no dataset (or the old one).
  const std::string manifest_dst = Join(dst, std::string(kManifestName));
  std::string old;
  if (IsRemote(dst)) {
    auto got = client.Get(manifest_dst, kMaxManifestBytes);
    if (got.ok()) old = std::move(*got);
  } else if (PathExists(manifest_dst)) {
    auto got = ReadFile(manifest_dst, kMaxManifestBytes);
    if (got.ok()) old = std::move(*got);
  }
  if (old != text) {
    if (IsRemote(dst)) {
      SHARDSET_RETURN_IF_ERROR(client.Put(manifest_dst, text));
    } else {
      SHARDSET_RETURN_IF_ERROR(MakeDirsFor(manifest_dst));
      SHARDSET_RETURN_IF_ERROR(WriteFileAtomic(manifest_dst, text, options.sync));
    }
    report->files_copied++;
    report->bytes_copied += text.size();
    if (options.progress) options.progress(std::string(kManifestName), text.size(), false);
  } else {
    report->files_skipped++;
    report->bytes_skipped += text.size();
  }
  if (options.verify) {
    ReadOptions ro;
    ro.remote = options.remote;
    SHARDSET_ASSIGN_OR_RETURN(auto copy, Dataset::Open(dst, ro));
    VerifyReport v;
    SHARDSET_RETURN_IF_ERROR(copy->Verify(&v));
    if (!v.problems.empty()) {
      return Status::Corruption(fmt::format("{}: the copy does not verify: {}{}", dst,
                                            v.problems.front(),
                                            v.problems.size() > 1 ? " (and more)" : ""));
    }
  }
  return Status::OK();
}

namespace {

// A folder of datasets, views and catalogs: every dataset first (shards once,
// manifest last), then the views and catalog snapshots that refer to them, so
// DST never holds a view whose datasets are missing.
Status SyncTree(remote::Client& client, remote::Cache& cache, const std::string& src,
                const std::string& dst, const SyncOptions& options, SyncReport* report) {
  std::vector<std::pair<std::string, bool>> later;  // (relative path, is catalog)
  std::vector<std::string> datasets;
  std::function<Status(const std::string&)> walk = [&](const std::string& rel) -> Status {
    const std::string dir = rel.empty() ? src : JoinPath(src, rel);
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      names.push_back(e.path().filename().string());
    }
    if (ec) return Status::FromErrno(dir, ec.value());
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      if (name.starts_with(".")) continue;
      const std::string r = rel.empty() ? name : JoinPath(rel, name);
      const std::string path = JoinPath(src, r);
      if (IsDirectory(path)) {
        if (PathExists(JoinPath(path, std::string(kManifestName)))) {
          datasets.push_back(r);
        } else {
          SHARDSET_RETURN_IF_ERROR(walk(r));
        }
      } else if (IsViewFile(path)) {
        later.emplace_back(r, false);
      } else if (IsCatalogFile(path)) {
        later.emplace_back(r, true);
      }
    }
    return Status::OK();
  };
  SHARDSET_RETURN_IF_ERROR(walk(""));
  if (datasets.empty() && later.empty()) {
    return Status::InvalidArgument(fmt::format(
        "{}: neither a dataset nor a folder holding datasets, views or catalogs; nothing to sync",
        src));
  }
  for (const std::string& r : datasets) {
    SHARDSET_RETURN_IF_ERROR(
        SyncOneDataset(client, cache, JoinPath(src, r), Join(dst, r), options, report));
  }
  for (const auto& [r, is_catalog] : later) {
    std::string bytes;
    if (is_catalog) {
      // A consistent copy as of now, even while others edit the catalog.
      SHARDSET_ASSIGN_OR_RETURN(auto catalog, Catalog::Open(JoinPath(src, r), false, 30));
      const std::string snap = fmt::format("{}/{}{}.snapshot.{}", DirName(JoinPath(src, r)),
                                           kTempPrefix, BaseName(r), ::getpid());
      ::unlink(snap.c_str());
      Status s = catalog->SnapshotTo(snap);
      if (s.ok()) {
        auto got = ReadFile(snap, uint64_t{1} << 40);
        s = got.status();
        if (s.ok()) bytes = std::move(*got);
      }
      ::unlink(snap.c_str());
      SHARDSET_RETURN_IF_ERROR(s);
    } else {
      SHARDSET_ASSIGN_OR_RETURN(bytes, ReadFile(JoinPath(src, r), uint64_t{1} << 40));
    }
    SHARDSET_ASSIGN_OR_RETURN(bool wrote,
                              PutIfChanged(client, Join(dst, r), bytes, options.sync));
    if (wrote) {
      report->files_copied++;
      report->bytes_copied += bytes.size();
    } else {
      report->files_skipped++;
      report->bytes_skipped += bytes.size();
    }
    if (options.progress) options.progress(r, bytes.size(), !wrote);
  }
  return Status::OK();
}

// A folder of datasets, views and catalogs on s3://, from its listing:
// every dataset first (a folder with a manifest.json), then every other
// object as it is (views, catalog snapshots, anything else), so DST never
// holds a view whose datasets are missing.
Status SyncRemoteTree(remote::Client& client, remote::Cache& cache, const std::string& src,
                      const std::string& dst, const SyncOptions& options, SyncReport* report) {
  SHARDSET_ASSIGN_OR_RETURN(auto objects, client.List(src));
  const std::string suffix = "/" + std::string(kManifestName);
  std::vector<std::string> datasets;
  for (const auto& o : objects) {
    if (o.name.ends_with(suffix)) datasets.push_back(o.name.substr(0, o.name.size() - suffix.size()));
  }
  if (objects.empty()) {
    return Status::NotFound(fmt::format(
        "{}: holds no dataset (no manifest.json) and no objects under it; nothing to sync", src));
  }
  auto in_dataset = [&](const std::string& name) {
    return std::any_of(datasets.begin(), datasets.end(), [&](const std::string& d) {
      return name.size() > d.size() && name.starts_with(d) && name[d.size()] == '/';
    });
  };
  for (const std::string& d : datasets) {
    if (in_dataset(d)) continue;  // a dataset inside another's folder is not one of the tree's
    SHARDSET_RETURN_IF_ERROR(
        SyncOneDataset(client, cache, Join(src, d), Join(dst, d), options, report));
  }
  for (const auto& o : objects) {
    if (in_dataset(o.name)) continue;
    if (!SafeName(o.name)) {
      return Status::NotSupported(fmt::format(
          "{}: the object '{}' has a name that is not a plain relative path ('.', '..' or an "
          "empty part); rename it on the server, or sync the datasets one by one",
          src, EscapeForDisplay(o.name)));
    }
    SHARDSET_ASSIGN_OR_RETURN(std::string bytes, client.Get(Join(src, o.name), o.size + 1));
    SHARDSET_ASSIGN_OR_RETURN(bool wrote,
                              PutIfChanged(client, Join(dst, o.name), bytes, options.sync));
    if (wrote) {
      report->files_copied++;
      report->bytes_copied += bytes.size();
    } else {
      report->files_skipped++;
      report->bytes_skipped += bytes.size();
    }
    if (options.progress) options.progress(o.name, bytes.size(), !wrote);
  }
  return Status::OK();
}

}  // namespace

Status SyncDataset(const std::string& src, const std::string& dst, const SyncOptions& options,
                   SyncReport* report) {
  if (dst.starts_with("http://") || dst.starts_with("https://")) {
    return Status::InvalidArgument(fmt::format(
        "{}: http(s):// is read-only here; sync to a folder or to s3://", dst));
  }
  if (src == dst) return Status::InvalidArgument(fmt::format("{}: SRC and DST are the same", src));
  remote::Client client(options.remote);
  remote::Cache cache(&client);
  Status s;
  if (!IsRemote(src)) {
    s = IsDirectory(src) && !PathExists(JoinPath(src, std::string(kManifestName)))
            ? SyncTree(client, cache, src, dst, options, report)
            : SyncOneDataset(client, cache, src, dst, options, report);
  } else if (src.starts_with("s3://")) {
    // A folder without a manifest of its own is a tree of datasets.
    auto size = SizeAt(client, Join(src, std::string(kManifestName)));
    s = !size.ok()   ? size.status()
        : *size < 0 ? SyncRemoteTree(client, cache, src, dst, options, report)
                    : SyncOneDataset(client, cache, src, dst, options, report);
  } else {
    s = SyncOneDataset(client, cache, src, dst, options, report);
  }
  report->retries = client.retried();
  return s;
}

}  // namespace shardset
