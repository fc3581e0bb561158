#include "cli.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "base/file.h"
#include "base/hash.h"
#include "remote/client.h"
#include "shardset/remote.h"

namespace shardset::cli {

int ExitCode(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk: return kExitOk;
    case Status::Code::kNotFound: return kExitNotFound;
    case Status::Code::kCorruption: return kExitCorrupt;
    case Status::Code::kInvalidArgument:
    case Status::Code::kAlreadyExists: return kExitUsage;
    default: return kExitFailure;
  }
}

std::string verb_name;

int Fail(const Status& s) {
  std::fprintf(stderr, "shardset %s: %s\n", verb_name.c_str(), s.message().c_str());
  return ExitCode(s);
}

void PutName(json* j, std::string_view field, std::string_view name) {
  (*j)[std::string(field)] = std::string(name);
  if (!IsValidUtf8(name)) {
    std::string hex;
    for (unsigned char c : name) hex += fmt::format("{:02x}", c);
    (*j)[fmt::format("{}_hex", field)] = hex;
  }
}

std::string Dump(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

bool WriteStdout(std::string_view data) {
  return std::fwrite(data.data(), 1, data.size(), stdout) == data.size();
}

Result<ReadOptions> ReadArgs::ToOptions() const {
  ReadOptions ro;
  auto bytes = ParseSize(max_field_bytes);
  if (!bytes.ok()) return bytes.status().WithPrefix("--max-field-bytes");
  ro.max_field_bytes = *bytes;
  ro.max_entries = max_entries;
  ro.max_ratio = max_ratio;
  ro.tsv_columns = tsv_columns;
  ro.remote.endpoint = endpoint;
  ro.remote.cache_dir = cache_dir;
  if (!fetch.empty() && fetch != "whole" && fetch != "ranged") {
    return Status::InvalidArgument(
        fmt::format("--fetch {}: give whole or ranged", EscapeForDisplay(fetch)));
  }
  ro.remote.fetch = fetch;
  if (!cache_bytes.empty()) {
    auto b = ParseSize(cache_bytes);
    if (!b.ok()) return b.status().WithPrefix("--cache-bytes");
    ro.remote.cache_bytes = *b;
  }
  return ro;
}

void AddReadFlags(CLI::App* app, ReadArgs* a) {
  app->add_option("--max-field-bytes", a->max_field_bytes,
                  "Refuse an archive field that decodes (inflate, base64) to more than this")
      ->capture_default_str()
      ->group("Reading archives");
  app->add_option("--max-entries", a->max_entries,
                  "Refuse an archive with more entries (members, rows) than this")
      ->capture_default_str()
      ->group("Reading archives");
  app->add_option("--max-ratio", a->max_ratio,
                  "Refuse compressed data that expands more than this many times (a zip field "
                  "above 1 MiB, a whole tar.gz stream above 64 MiB; 0: no limit); stops zip and "
                  "gzip bombs")
      ->capture_default_str()
      ->group("Reading archives");
  app->add_option("--tsv-columns", a->tsv_columns,
                  "TSV columns: names, ':b64' for base64, the first is the key (e.g. "
                  "key,cls,png:b64); default: the file's header line, else guessed")
      ->group("Reading archives");
  app->add_option("--endpoint", a->endpoint,
                  "S3 server for s3:// TARGETs, e.g. http://127.0.0.1:9000 (default: "
                  "AWS_ENDPOINT_URL, else AWS)")
      ->group("Remote (s3://, http://)");
  app->add_option("--cache-dir", a->cache_dir,
                  "Where shards read from s3:// and http(s):// are kept (default: "
                  "SHARDSET_CACHE_DIR, else ~/.cache/shardset)")
      ->group("Remote (s3://, http://)");
  app->add_option("--fetch", a->fetch,
                  "whole: fetch each shard whole on first use; ranged: fetch a native shard's "
                  "index, then each sample's bytes as it is read (default: SHARDSET_FETCH, else "
                  "ranged for cat and serve, whole for the rest)")
      ->group("Remote (s3://, http://)");
  app->add_option("--cache-bytes", a->cache_bytes,
                  "Bound of that cache; least recently used shards go past it (default: "
                  "SHARDSET_CACHE_BYTES, else 10GiB)")
      ->group("Remote (s3://, http://)");
}

std::string Staging(const std::string& out, const ReadOptions& ro) {
  if (!IsRemote(out)) return out;
  const std::string dir = fmt::format("{}/staging/{:016x}", remote::Resolve(ro.remote).cache_dir,
                                      Xxh3(out));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  return JoinPath(dir, remote::UrlBaseName(out));
}

Status Upload(const std::string& staged, const std::string& out, const ReadOptions& ro,
              Progress* bar) {
  if (!IsRemote(out)) return Status::OK();
  Status s;
  std::vector<std::string> sidecars;
  if (IsDirectory(staged)) {
    SyncOptions so;
    so.remote = ro.remote;
    so.progress = [&](const std::string& name, uint64_t, bool) {
      bar->Show(fmt::format("uploading {}", name));
    };
    SyncReport report;
    s = SyncDataset(staged, out, so, &report);
  } else {
    // One shard or archive, then its sidecars (which readers look for
    // beside it).
    remote::Client client(ro.remote);
    auto format = DetectFormat(staged);
    s = format.status();
    if (s.ok()) s = client.PutFile(out, staged);
    if (format.ok()) sidecars = SidecarPaths(staged, *format);
    for (const std::string& sidecar : sidecars) {
      if (!s.ok() || !PathExists(sidecar)) continue;
      // "<dir>/x.tar.idx" -> "<OUT's folder>/x.tar.idx"
      s = client.PutFile(out.substr(0, out.size() - BaseName(staged).size()) + BaseName(sidecar),
                         sidecar);
    }
  }
  bar->Done();
  if (!s.ok()) {
    return s.WithPrefix(fmt::format("uploading {} (its staged copy is kept: rerun to resume)",
                                    staged));
  }
  // The staged copy, its sidecars, and the folders above it once empty
  // (parts packed at once share them).
  std::error_code ec;
  std::filesystem::remove_all(staged, ec);
  for (const std::string& sidecar : sidecars) std::filesystem::remove(sidecar, ec);
  for (std::string dir = DirName(staged); dir.find("/staging/") != std::string::npos;
       dir = DirName(dir)) {
    if (::rmdir(dir.c_str()) != 0) break;
  }
  return Status::OK();
}

std::string CommandLine(int argc, char** argv) {
  std::string out = "shardset";
  for (int i = 1; i < argc; ++i) {
    std::string_view a(argv[i]);
    const bool plain = !a.empty() && a.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789_-.,/:=@%+") == std::string_view::npos;
    out += ' ';
    if (plain) {
      out += a;
    } else {
      out += '\'';
      for (char c : a) {
        if (c == '\'') {
          out += "'\\''";
        } else {
          out += c;
        }
      }
      out += '\'';
    }
  }
  return out;
}

void PreferRangedFetch(ReadOptions* ro) {
  const char* env = std::getenv("SHARDSET_FETCH");
  if (ro->remote.fetch.empty() && (env == nullptr || *env == '\0')) ro->remote.fetch = "ranged";
}

}  // namespace shardset::cli
