#include "shardset/dataset.h"

#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/hash.h"
#include "base/json_depth.h"
#include "base/json_number.h"
#include "base/strings.h"
#include "formats/zip/zip_format.h"
#include "remote/cache.h"
#include "remote/ranged.h"
#include "remote/client.h"

namespace shardset {
namespace {

using json = nlohmann::json;

// JSON must be UTF-8; paths that are not are stored with invalid bytes
// replaced, which only affects the human-readable recipe and skip list.
std::string DumpJson(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

// The manifest's checksum of itself (docs/formats/manifest.md): XXH3 of the
// text shardset writes for the manifest without this member. Nothing else
// covers the manifest's bytes, and a damaged recipe, skip list or shard path
// would otherwise go unseen.
constexpr const char* kChecksumMember = "manifest_xxh3";

std::string ContentChecksum(json j) {
  j.erase(kChecksumMember);
  return Hex64(Xxh3(DumpJson(j)));
}

}  // namespace

std::string Manifest::ToJson() const {
  json j;
  j["format"] = "shardset-dataset";
  j["version"] = kManifestVersion;
  j["num_samples"] = num_samples;
  j["total_bytes"] = total_bytes;
  j["source_bytes"] = source_bytes;
  json shards_json = json::array();
  for (const ManifestShard& s : shards) {
    shards_json.push_back({{"path", s.path},
                           {"format", std::string(FormatName(s.format))},
                           {"samples", s.num_samples},
                           {"bytes", s.file_size},
                           {"xxh3", Hex64(s.xxh3)},
                           {"source_bytes", s.source_bytes}});
    if (s.directory_xxh3 != 0) shards_json.back()["directory_xxh3"] = Hex64(s.directory_xxh3);
  }
  j["shards"] = std::move(shards_json);
  j["recipe"] = json::parse(recipe_json, nullptr, /*allow_exceptions=*/false);
  if (j["recipe"].is_discarded()) j["recipe"] = json::object();
  j["skipped"] = skipped;
  j[kChecksumMember] = ContentChecksum(j);
  return DumpJson(j);
}

Result<Manifest> Manifest::FromJson(std::string_view text, const std::string& path) {
  auto bad = [&](std::string_view what) {
    return Status::Corruption(fmt::format(
        "{}: {}; the manifest is damaged: restore it from a backup or re-run pack", path, what));
  };
  // Copies and dumps of a value recurse per level: the depth is checked
  // before anything is parsed.
  if (!JsonDepthWithin(text)) {
    return bad(fmt::format("its JSON nests deeper than {} levels", kMaxJsonDepth));
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad("not valid JSON");
  // nlohmann reports type mismatches by throwing; they stay inside this
  // function and become a Corruption status.
  try {
    if (j.value("format", "") != "shardset-dataset") return bad("not a shardset manifest");
    const json& v = j.at("version");
    if (!v.is_number_integer()) return bad("its version is not an integer");
    const int64_t version = v.get<int64_t>();
    if (version != kManifestVersion) {
      return Status::NotSupported(fmt::format(
          "{}: manifest version {} (this shardset reads version {}); upgrade shardset", path,
          version, kManifestVersion));
    }
    Manifest m;
    if (j.contains(kChecksumMember)) {
      const json& c = j[kChecksumMember];
      if (!c.is_string() || c.get<std::string>() != ContentChecksum(j)) {
        return bad(fmt::format(
            "its checksum of itself ({}) does not match its content (if it was edited by hand "
            "on purpose, delete that member to accept the edit)",
            kChecksumMember));
      }
      m.has_checksum = true;
    }
    m.canonical = text == DumpJson(j);
    for (const json& s : j.at("shards")) {
      ManifestShard ms;
      ms.path = s.at("path").get<std::string>();
      // Paths are relative to the dataset folder; `dataset create` lists
      // shards it adopts where they are ("../raw/a.tar" or absolute).
      if (ms.path.empty() || ms.path.find('\0') != std::string::npos) {
        return bad(fmt::format("shard path '{}' is empty or holds a NUL byte", ms.path));
      }
      auto format = ParseFormat(s.at("format").get<std::string>());
      if (!format.ok()) return bad(format.status().message());
      ms.format = *format;
      ms.num_samples = JsonU64(s.at("samples"));
      ms.file_size = JsonU64(s.at("bytes"));
      ms.xxh3 = std::stoull(s.at("xxh3").get<std::string>(), nullptr, 16);
      ms.source_bytes = JsonU64(s, "source_bytes", 0);
      if (s.contains("directory_xxh3")) {
        ms.directory_xxh3 = std::stoull(s["directory_xxh3"].get<std::string>(), nullptr, 16);
      }
      // The totals must not wrap: a wrapped sample count would match a small
      // "num_samples" and place ordinals in the wrong shards.
      if (ms.num_samples > UINT64_MAX - m.num_samples ||
          ms.file_size > UINT64_MAX - m.total_bytes ||
          ms.source_bytes > UINT64_MAX - m.source_bytes) {
        return bad("its shards' sample or byte counts add up to more than 2^64");
      }
      m.source_bytes += ms.source_bytes;
      m.num_samples += ms.num_samples;
      m.total_bytes += ms.file_size;
      m.shards.push_back(std::move(ms));
    }
    if (m.num_samples != JsonU64(j.at("num_samples"))) {
      return bad("num_samples does not equal the sum over shards");
    }
    if (j.contains("recipe")) m.recipe_json = j["recipe"].dump();
    if (j.contains("skipped")) m.skipped = j["skipped"].get<std::vector<std::string>>();
    return m;
  } catch (const std::exception& e) {
    return bad(fmt::format("malformed ({})", e.what()));
  }
}

Result<uint64_t> DirectoryChecksum(const std::string& path, ShardFormat format) {
  if (format != ShardFormat::kZip) return uint64_t{0};
  SHARDSET_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  SHARDSET_ASSIGN_OR_RETURN(zip::Directory dir, zip::LocateDirectory(file.data(), path));
  return Xxh3(file.data().substr(std::min<uint64_t>(dir.start, file.size())));
}

Result<Manifest> Manifest::Load(const std::string& dir) {
  const std::string path = JoinPath(dir, kManifestName);
  SHARDSET_ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxManifestBytes));
  return FromJson(text, path);
}

Status Manifest::Save(const std::string& dir, bool sync) const {
  return WriteFileAtomic(JoinPath(dir, kManifestName), ToJson(), sync);
}

struct Dataset::Remote {
  explicit Remote(const RemoteOptions& options) : client(options), cache(&client) {}
  ~Remote() {
    if (prefetcher.joinable()) prefetcher.join();
  }
  remote::Client client;
  remote::Cache cache;
  // Read-ahead of the next shard (Dataset::Read): one fetch at a time, in
  // the background, into the cache; a failure is left for the read itself.
  std::mutex prefetch_mu;
  std::thread prefetcher;
  std::atomic<bool> prefetching{false};

  void Prefetch(std::string url, ShardFormat format, remote::Expected expected) {
    std::lock_guard<std::mutex> lock(prefetch_mu);
    if (prefetching) return;  // the reader is not kept waiting for it
    if (prefetcher.joinable()) prefetcher.join();
    prefetching = true;
    prefetcher = std::thread([this, url = std::move(url), format, expected] {
      (void)FetchShard(url, format, expected);
      prefetching = false;
    });
  }

  // A shard and the sidecars of its format into the cache.
  Result<std::string> FetchShard(const std::string& url, ShardFormat format,
                                 const remote::Expected& expected) {
    SHARDSET_ASSIGN_OR_RETURN(std::string path, cache.Fetch(url, expected));
    for (const std::string& sidecar : SidecarPaths(url, format)) {
      SHARDSET_RETURN_IF_ERROR(cache.FetchIfExists(sidecar).status());
    }
    return path;
  }
  // One shard or archive without a manifest, and its sidecars.
  Result<std::string> FetchObject(const std::string& url) {
    SHARDSET_ASSIGN_OR_RETURN(std::string path, cache.Fetch(url, {}));
    SHARDSET_ASSIGN_OR_RETURN(ShardFormat format, DetectFormat(path));
    for (const std::string& sidecar : SidecarPaths(url, format)) {
      SHARDSET_RETURN_IF_ERROR(cache.FetchIfExists(sidecar).status());
    }
    return path;
  }
};

Result<std::unique_ptr<Dataset>> Dataset::OpenRemote(const std::string& target,
                                                     const ReadOptions& options) {
  std::unique_ptr<Dataset> ds(new Dataset());
  ds->target_ = target;
  ds->options_ = options;
  ds->remote_ = std::make_shared<Remote>(options.remote);
  std::string url = target;
  while (url.ends_with('/') && url.size() > 1) url.pop_back();
  const std::string manifest_url = remote::JoinUrl(url, kManifestName);
  auto text = ds->remote_->client.Get(manifest_url, kMaxManifestBytes);
  if (text.ok()) {
    SHARDSET_ASSIGN_OR_RETURN(ds->manifest_, Manifest::FromJson(*text, manifest_url));
    ds->has_manifest_ = true;
    for (const ManifestShard& ms : ds->manifest_.shards) {
      if (ms.path.empty() || ms.path[0] == '/') {
        return Status::NotSupported(fmt::format(
            "{}: lists the shard {} by an absolute path, which is not on the server; make the "
            "dataset with its shards inside its folder (shardset pack, or copy them in) before "
            "uploading it",
            manifest_url, ms.path));
      }
      auto slot = std::make_unique<Slot>();
      slot->url = remote::JoinUrl(url, ms.path);
      slot->path = ds->remote_->cache.PathOf(slot->url);
      ds->slots_.push_back(std::move(slot));
    }
  } else if (text.status().IsNotFound()) {
    // Not a dataset folder: one shard or archive.
    SHARDSET_ASSIGN_OR_RETURN(std::string path, ds->remote_->FetchObject(url));
    SHARDSET_RETURN_IF_ERROR(ds->AddShardFile(path));
    ds->slots_.back()->url = url;
  } else {
    return text.status();
  }
  ds->starts_.push_back(0);
  for (const ManifestShard& ms : ds->manifest_.shards) {
    ds->total_ += ms.num_samples;
    ds->starts_.push_back(ds->total_);
  }
  return ds;
}

Result<std::unique_ptr<Dataset>> Dataset::Open(const std::string& target,
                                               const ReadOptions& options) {
  if (IsRemote(target)) return OpenRemote(target, options);
  std::unique_ptr<Dataset> ds(new Dataset());
  ds->target_ = target;
  ds->options_ = options;
  if (IsDirectory(target)) {
    if (!PathExists(JoinPath(target, kManifestName))) {
      return Status::NotFound(fmt::format(
          "{}: a folder without {}; it is not a dataset (make one with shardset pack)", target,
          kManifestName));
    }
    SHARDSET_ASSIGN_OR_RETURN(ds->manifest_, Manifest::Load(target));
    ds->has_manifest_ = true;
    for (const ManifestShard& ms : ds->manifest_.shards) {
      auto slot = std::make_unique<Slot>();
      slot->path = ms.path[0] == '/' ? ms.path : JoinPath(target, ms.path);
      ds->slots_.push_back(std::move(slot));
    }
  } else {
    SHARDSET_RETURN_IF_ERROR(ds->AddShardFile(target));
  }
  ds->starts_.push_back(0);
  for (const ManifestShard& ms : ds->manifest_.shards) {
    ds->total_ += ms.num_samples;
    ds->starts_.push_back(ds->total_);
  }
  return ds;
}

Result<std::unique_ptr<Dataset>> Dataset::Open(const std::vector<std::string>& targets,
                                               const ReadOptions& options) {
  if (targets.size() == 1) return Open(targets[0], options);
  if (targets.empty()) return Status::InvalidArgument("no shards given");
  std::unique_ptr<Dataset> ds(new Dataset());
  ds->target_ = targets[0] + fmt::format(" (+{} more)", targets.size() - 1);
  ds->options_ = options;
  for (const std::string& t : targets) {
    if (IsRemote(t)) {
      if (!ds->remote_) ds->remote_ = std::make_shared<Remote>(options.remote);
      SHARDSET_ASSIGN_OR_RETURN(std::string path, ds->remote_->FetchObject(t));
      SHARDSET_RETURN_IF_ERROR(ds->AddShardFile(path));
      ds->slots_.back()->url = t;
      continue;
    }
    if (IsDirectory(t)) {
      return Status::InvalidArgument(fmt::format(
          "{}: a folder; several TARGETs must be shard or archive files (one dataset folder "
          "is read on its own)",
          t));
    }
    SHARDSET_RETURN_IF_ERROR(ds->AddShardFile(t));
  }
  ds->starts_.push_back(0);
  for (const ManifestShard& ms : ds->manifest_.shards) {
    ds->total_ += ms.num_samples;
    ds->starts_.push_back(ds->total_);
  }
  return ds;
}

Status Dataset::AddShardFile(const std::string& path) {
  SHARDSET_ASSIGN_OR_RETURN(auto shard, OpenShard(path, options_));
  ManifestShard ms;
  ms.path = path;
  ms.format = shard->format();
  ms.num_samples = shard->num_samples();
  ms.file_size = shard->file_size();
  manifest_.shards.push_back(ms);
  manifest_.num_samples += ms.num_samples;
  manifest_.total_bytes += ms.file_size;
  auto slot = std::make_unique<Slot>();
  slot->path = path;
  slot->reader = std::move(shard);
  std::call_once(slot->once, [] {});  // already open
  slots_.push_back(std::move(slot));
  return Status::OK();
}

Status Dataset::OpenSlot(size_t i) const {
  Slot& slot = *slots_[i];
  std::call_once(slot.once, [&] {
    const ManifestShard& ms = manifest_.shards[i];
    auto open = [&]() -> Result<std::unique_ptr<ShardReader>> {
      if (remote_ && remote_->client.options().fetch == "ranged" &&
          ms.format == ShardFormat::kNative) {
        return remote::OpenRanged(&remote_->client, &remote_->cache, slot.url, ms.format,
                                  ms.file_size, options_);
      }
      if (remote_) {
        SHARDSET_RETURN_IF_ERROR(
            remote_->FetchShard(slot.url, ms.format, {ms.file_size, ms.xxh3}).status());
      }
      return OpenShardAs(slot.path, ms.format, options_);
    };
    auto shard = open();
    // Another process may evict a cached shard between its fetch and its
    // open: fetched again then.
    if (remote_ && !shard.ok() && shard.status().IsNotFound()) shard = open();
    if (!shard.ok()) {
      slot.status = shard.status().IsNotFound() && !remote_
                        ? Status::NotFound(fmt::format(
                              "{}: shard listed in the manifest is missing; restore it from a "
                              "backup",
                              slot.path))
                        : shard.status();
      return;
    }
    if ((*shard)->num_samples() != ms.num_samples || (*shard)->file_size() != ms.file_size) {
      slot.status = Status::Corruption(fmt::format(
          "{}: holds {} samples in {} bytes but the manifest says {} in {}; the shard was "
          "replaced or modified: restore it from a backup or re-pack",
          slot.path, (*shard)->num_samples(), (*shard)->file_size(), ms.num_samples,
          ms.file_size));
      return;
    }
    if (ms.directory_xxh3 != 0) {
      // A zip's central directory has no checksum of its own: a damaged one
      // can turn a file entry into a directory or a symlink (a sample loses
      // a field) or rename an entry, and no CRC would notice.
      auto sum = DirectoryChecksum(slot.path, ms.format);
      if (!sum.ok() || *sum != ms.directory_xxh3) {
        slot.status = Status::Corruption(fmt::format(
            "{}: its central directory differs from the one the manifest recorded "
            "(directory_xxh3); the zip is damaged: restore it from a backup or re-pack",
            slot.path));
        return;
      }
    }
    slot.reader = std::move(*shard);
  });
  return slot.status;
}

Result<std::string> Dataset::ReadShardBytes(size_t i, uint64_t offset, uint64_t length) const {
  std::string out;
  if (remote_) {
    out.reserve(length);
    SHARDSET_RETURN_IF_ERROR(remote_->client.GetRange(
        slots_[i]->url, offset, length, [&](uint64_t at, std::string_view piece) {
          out.resize(at - offset);  // a retry starts again from where it says
          out.append(piece);
          return Status::OK();
        }));
    return out;
  }
  SHARDSET_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(slots_[i]->path));
  if (offset > file.size() || length > file.size() - offset) {
    return Status::Corruption(fmt::format("{}: bytes {}..{} lie past its end ({} bytes)",
                                          slots_[i]->path, offset, offset + length, file.size()));
  }
  return std::string(file.data().substr(offset, length));
}

Result<const ShardReader*> Dataset::shard(size_t i) const {
  SHARDSET_RETURN_IF_ERROR(OpenSlot(i));
  return static_cast<const ShardReader*>(slots_[i]->reader.get());
}

Result<std::pair<size_t, uint64_t>> Dataset::Locate(uint64_t ordinal) const {
  if (ordinal >= total_) {
    return Status::NotFound(fmt::format("{}: no sample {} (it has {} samples, 0..{})", target_,
                                        ordinal, total_, total_ == 0 ? 0 : total_ - 1));
  }
  // The last start <= ordinal; empty shards share a start with the next one.
  auto it = std::upper_bound(starts_.begin(), starts_.end(), ordinal);
  size_t shard = static_cast<size_t>(it - starts_.begin()) - 1;
  return std::make_pair(shard, ordinal - starts_[shard]);
}

Status Dataset::Read(uint64_t ordinal, Sample* out) const {
  SHARDSET_ASSIGN_OR_RETURN(auto loc, Locate(ordinal));
  if (remote_ && loc.second == 0 && loc.first + 1 < slots_.size() &&
      remote_->client.options().fetch == "whole") {
    // The first sample of a shard: a sequential reader will want the next
    // shard soon, so it is fetched while this one is read.
    const ManifestShard& next = manifest_.shards[loc.first + 1];
    remote_->Prefetch(slots_[loc.first + 1]->url, next.format, {next.file_size, next.xxh3});
  }
  SHARDSET_ASSIGN_OR_RETURN(const ShardReader* shard, this->shard(loc.first));
  SHARDSET_RETURN_IF_ERROR(shard->Read(loc.second, out));
  out->ordinal = ordinal;
  return Status::OK();
}

Result<std::string> Dataset::Key(uint64_t ordinal) const {
  SHARDSET_ASSIGN_OR_RETURN(auto loc, Locate(ordinal));
  SHARDSET_ASSIGN_OR_RETURN(const ShardReader* shard, this->shard(loc.first));
  return shard->Key(loc.second);
}

Status Dataset::Stat(uint64_t ordinal, SampleStat* out) const {
  SHARDSET_ASSIGN_OR_RETURN(auto loc, Locate(ordinal));
  SHARDSET_ASSIGN_OR_RETURN(const ShardReader* shard, this->shard(loc.first));
  return shard->Stat(loc.second, out);
}

Status Dataset::BuildKeyRanges() const {
  bool sorted = true;
  std::string prev_last;
  bool have_prev = false;
  for (size_t i = 0; i < slots_.size(); ++i) {
    SHARDSET_ASSIGN_OR_RETURN(const ShardReader* s, shard(i));
    if (s->num_samples() == 0) {
      first_keys_.emplace_back();
      continue;
    }
    if (!s->keys_sorted()) sorted = false;
    SHARDSET_ASSIGN_OR_RETURN(std::string first, s->Key(0));
    SHARDSET_ASSIGN_OR_RETURN(std::string last, s->Key(s->num_samples() - 1));
    if (have_prev && !(first > prev_last)) sorted = false;
    prev_last = last;
    have_prev = true;
    first_keys_.push_back(std::move(first));
  }
  ranges_sorted_ = sorted;
  return Status::OK();
}

Result<uint64_t> Dataset::Find(std::string_view key) const {
  std::call_once(ranges_once_, [this] { ranges_status_ = BuildKeyRanges(); });
  SHARDSET_RETURN_IF_ERROR(ranges_status_);
  if (ranges_sorted_) {
    // The last non-empty shard whose first key <= key.
    const size_t n = slots_.size();
    size_t chosen = n;
    size_t lo = 0, hi = n;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      const bool empty = manifest_.shards[mid].num_samples == 0;
      if (empty || std::string_view(first_keys_[mid]) <= key) {
        if (!empty) chosen = mid;
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (chosen < n) {
      auto r = slots_[chosen]->reader->Find(key);
      if (r.ok()) return starts_[chosen] + *r;
      if (!r.status().IsNotFound()) return r.status();
    }
  } else {
    for (size_t i = 0; i < slots_.size(); ++i) {
      auto r = slots_[i]->reader->Find(key);
      if (r.ok()) return starts_[i] + *r;
      if (!r.status().IsNotFound()) return r.status();
    }
  }
  return Status::NotFound(
      fmt::format("{}: no sample with key '{}'", target_, EscapeForDisplay(key)));
}

Status Dataset::Verify(VerifyReport* report,
                       const std::function<void(const DatasetVerifyProgress&)>& progress) const {
  if (has_manifest_) {
    // Readers accept a manifest without a checksum (older or hand-written
    // ones) and reformatted ones; verify says what it could not check.
    const std::string path = JoinPath(target_, kManifestName);
    if (!manifest_.has_checksum) {
      report->problems.push_back(fmt::format(
          "{}: has no checksum of itself (manifest_xxh3), so damage to it cannot be told from "
          "its content: it was written by an older shardset or edited by hand; re-run the "
          "command that made the dataset to rewrite it",
          path));
    } else if (!manifest_.canonical) {
      report->problems.push_back(fmt::format(
          "{}: its content checks but its bytes are not the ones shardset writes for it "
          "(whitespace or escapes changed): it was damaged or reformatted; restore it from a "
          "backup",
          path));
    }
  }
  DatasetVerifyProgress p;
  p.shards_total = slots_.size();
  for (size_t i = 0; i < slots_.size(); ++i) {
    auto shard = this->shard(i);
    if (!shard.ok()) {
      report->problems.push_back(shard.status().message());
      if (shard.status().IsNotFound()) ++report->missing_shards;
    } else {
      const ShardReader& s = **shard;
      // The shard's own checks first: a remote shard read by range is
      // fetched whole by them, before the whole-file checksum reads it.
      SHARDSET_RETURN_IF_ERROR(s.Verify(report));
      if (has_manifest_) {
        auto file = MappedFile::Open(s.path());
        if (!file.ok()) {
          report->problems.push_back(file.status().message());
        } else {
          file->AdviseSequential();
          if (Xxh3(file->data()) != manifest_.shards[i].xxh3) {
            report->problems.push_back(fmt::format(
                "{}: whole-file checksum differs from the manifest; the shard was modified: "
                "restore it from a backup",
                s.path()));
          }
        }
      }
      p.bytes_done += s.file_size();
    }
    p.shards_done = i + 1;
    if (progress) progress(p);
  }
  if (has_manifest_) FindUnlistedShards(report);
  return Status::OK();
}

void Dataset::FindUnlistedShards(VerifyReport* report) const {
  std::set<std::string> listed;
  for (const ManifestShard& ms : manifest_.shards) listed.insert(ms.path);
  DIR* d = ::opendir(target_.c_str());
  if (!d) return;
  std::vector<std::string> unlisted;
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (listed.count(name) || name[0] == '.' || name == kManifestName) continue;
    // A shard dropped from the manifest, recognised by its content.
    auto shard = OpenShard(JoinPath(target_, name));
    if (shard.ok()) unlisted.push_back(name);
  }
  ::closedir(d);
  std::sort(unlisted.begin(), unlisted.end());
  for (const std::string& name : unlisted) {
    report->problems.push_back(fmt::format(
        "{}: a shard in the dataset folder that the manifest does not list; the manifest was "
        "edited or is stale: restore it, or move the file out",
        JoinPath(target_, name)));
  }
}

}  // namespace shardset
