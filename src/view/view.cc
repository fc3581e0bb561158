#include "shardset/view.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/hash.h"
#include "base/json_depth.h"
#include "base/json_number.h"
#include "base/strings.h"
#include "shardset/catalog.h"
#include "shardset/remote.h"
#include "view/view_table.h"

static_assert(std::endian::native == std::endian::little,
              "view tables are read with unaligned little-endian loads");

namespace shardset {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr uint64_t kEdgeBytes = 64 * 1024;
// A view's sources and recipe: a line per shard, so this bound only stops a
// hostile file from being parsed whole.
constexpr uint64_t kMaxMetaBytes = 256ull << 20;

Status ReadFullyAt(int fd, uint64_t offset, size_t n, std::string* out, const std::string& path) {
  out->resize(n);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out->data() + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno(path, errno);
    if (r == 0) return Status::Corruption(fmt::format("{}: shorter than its size", path));
    done += static_cast<size_t>(r);
  }
  return Status::OK();
}

std::string ResolveTarget(const std::string& recorded, const std::string& view_path) {
  if (IsRemote(recorded)) return recorded;  // a URL is recorded as it is
  if (!recorded.empty() && recorded[0] == '/') return recorded;
  return fs::path(JoinPath(DirName(view_path), recorded)).lexically_normal().string();
}

// The path a view records for `target`: relative to the view file's folder,
// so a folder holding datasets and views can move as a whole. The path as
// written comes first, so a dataset reached through a symlink inside the
// folder stays inside it (resolving the symlink would record where it points
// now, outside the folder); then with symlinks resolved (a ".." after a
// symlink means its real parent); each only if it leads from the view's
// folder back to the target.
std::string RecordedTarget(const std::string& target, const std::string& view_path) {
  if (IsRemote(target)) return target;
  std::error_code ec;
  const fs::path lexical_target = fs::absolute(target, ec).lexically_normal();
  const fs::path lexical_dir = fs::absolute(view_path, ec).lexically_normal().parent_path();
  const fs::path real_target = fs::weakly_canonical(fs::absolute(target, ec), ec);
  const fs::path real_dir = fs::weakly_canonical(fs::absolute(view_path, ec), ec).parent_path();
  for (const fs::path& rel :
       {lexical_target.lexically_relative(lexical_dir), real_target.lexically_relative(real_dir)}) {
    if (rel.empty()) continue;
    std::error_code eq;
    if (fs::equivalent(ResolveTarget(rel.string(), view_path), target, eq)) return rel.string();
  }
  return real_target.empty() ? lexical_target.string() : real_target.string();
}

std::string Command(const std::string& recipe_json) {
  json r = json::parse(recipe_json, nullptr, false);
  if (r.is_object() && r.contains("command") && r["command"].is_string()) {
    return r["command"].get<std::string>();
  }
  return "the command in its recipe (shardset info VIEW)";
}

json SourceToJson(const ViewSource& s) {
  json shards = json::array();
  for (const ViewShard& sh : s.shards) {
    shards.push_back({{"path", sh.path},
                      {"format", std::string(FormatName(sh.format))},
                      {"samples", sh.num_samples},
                      {"bytes", sh.file_size},
                      {"edge_hash", Hex64(sh.edge_hash)}});
  }
  return {{"name", s.name},
          {"targets", s.targets},
          {"samples", s.num_samples},
          {"selected", s.selected},
          {"shards", std::move(shards)}};
}

Result<ViewSource> SourceFromJson(const json& j) {
  ViewSource s;
  s.name = j.at("name").get<std::string>();
  s.targets = j.at("targets").get<std::vector<std::string>>();
  s.num_samples = JsonU64(j.at("samples"));
  s.selected = JsonU64(j.at("selected"));
  for (const json& sh : j.at("shards")) {
    ViewShard v;
    v.path = sh.at("path").get<std::string>();
    SHARDSET_ASSIGN_OR_RETURN(v.format, ParseFormat(sh.at("format").get<std::string>()));
    v.num_samples = JsonU64(sh.at("samples"));
    v.file_size = JsonU64(sh.at("bytes"));
    v.edge_hash = std::stoull(sh.at("edge_hash").get<std::string>(), nullptr, 16);
    s.shards.push_back(std::move(v));
  }
  return s;
}

}  // namespace

bool IsViewFile(const std::string& path) {
  FdCloser fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  char magic[8];
  return fd.get() >= 0 && ::pread(fd.get(), magic, 8, 0) == 8 &&
         std::string_view(magic, 8) == view::kMagic;
}

bool IsCatalogFile(const std::string& path) {
  static constexpr std::string_view kSqliteMagic{"SQLite format 3\0", 16};
  FdCloser fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  char magic[16];
  return fd.get() >= 0 && ::pread(fd.get(), magic, 16, 0) == 16 &&
         std::string_view(magic, 16) == kSqliteMagic;
}

Result<uint64_t> EdgeHash(const std::string& path) {
  FdCloser fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    int e = errno;
    if (e == ENOENT) return Status::NotFound(fmt::format("{}: no such file", path));
    return Status::FromErrno(path, e);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(path, errno);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  std::string bytes;
  if (size <= 2 * kEdgeBytes) {
    SHARDSET_RETURN_IF_ERROR(ReadFullyAt(fd.get(), 0, size, &bytes, path));
    return Xxh3(bytes);
  }
  Xxh3Stream h;
  SHARDSET_RETURN_IF_ERROR(ReadFullyAt(fd.get(), 0, kEdgeBytes, &bytes, path));
  h.Update(bytes);
  SHARDSET_RETURN_IF_ERROR(ReadFullyAt(fd.get(), size - kEdgeBytes, kEdgeBytes, &bytes, path));
  h.Update(bytes);
  return h.Digest();
}

Result<uint64_t> EdgeHashOf(const Dataset& dataset, size_t shard) {
  if (!IsRemote(dataset.target())) return EdgeHash(dataset.shard_path(shard));
  // Two ranged GETs: what a view records does not need the shard fetched.
  const uint64_t size = dataset.manifest().shards[shard].file_size;
  if (size <= 2 * kEdgeBytes) {
    SHARDSET_ASSIGN_OR_RETURN(std::string all, dataset.ReadShardBytes(shard, 0, size));
    return Xxh3(all);
  }
  Xxh3Stream h;
  SHARDSET_ASSIGN_OR_RETURN(std::string head, dataset.ReadShardBytes(shard, 0, kEdgeBytes));
  h.Update(head);
  SHARDSET_ASSIGN_OR_RETURN(std::string tail,
                            dataset.ReadShardBytes(shard, size - kEdgeBytes, kEdgeBytes));
  h.Update(tail);
  return h.Digest();
}

std::string DefaultSourceName(std::string_view target) {
  while (target.size() > 1 && target.back() == '/') target.remove_suffix(1);
  const size_t slash = target.find_last_of('/');
  std::string name(slash == std::string_view::npos ? target : target.substr(slash + 1));
  for (std::string_view ext : {".view", ".shard", ".tar.gz", ".tgz", ".tar", ".zip", ".tsv"}) {
    if (name.size() > ext.size() && name.ends_with(ext)) {
      name.resize(name.size() - ext.size());
      break;
    }
  }
  if (name.empty() || name == "." || name == ".." || name == "/") return "dataset";
  return name;
}

Result<std::string> SampleLabel(const Sample& sample, std::string_view label_field) {
  const Field* f = sample.Find(label_field);
  if (f == nullptr) {
    return Status::NotFound(fmt::format(
        "sample {} '{}' has no '{}' field to take its label from; name the label field with "
        "--label-field, or make labels from folder names with --label-from-dir",
        sample.ordinal, EscapeForDisplay(sample.key), EscapeForDisplay(label_field)));
  }
  std::string_view v = f->data;
  while (!v.empty() &&
         (v.back() == '\n' || v.back() == '\r' || v.back() == ' ' || v.back() == '\t')) {
    v.remove_suffix(1);
  }
  return std::string(v);
}

Result<LabelSpec> LabelSpec::Parse(std::string_view text) {
  LabelSpec spec;
  if (text == "label") return spec;
  if (text == "dir") {
    spec.kind = Kind::kPath;
    spec.component = -2;
    return spec;
  }
  if (text.substr(0, 5) == "path:") {
    std::string_view n = text.substr(5);
    int v = 0;
    auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), v);
    if (n.empty() || ec != std::errc() || p != n.data() + n.size() || v > 1000 || v < -1000) {
      return Status::InvalidArgument(fmt::format(
          "label '{}': path:N needs a whole number N (0 the first folder, -1 the file stem, -2 "
          "its parent folder)",
          EscapeForDisplay(text)));
    }
    spec.kind = Kind::kPath;
    spec.component = v;
    return spec;
  }
  std::string_view field = text.substr(0, 6) == "field:" ? text.substr(6) : text;
  if (field.empty() || field.find('/') != std::string_view::npos) {
    return Status::InvalidArgument(
        fmt::format("label '{}' is not one of: label, dir, path:N, field:NAME (or a field name)",
                    EscapeForDisplay(text)));
  }
  spec.kind = Kind::kField;
  spec.field = std::string(field);
  return spec;
}

std::string LabelSpec::ToString() const {
  switch (kind) {
    case Kind::kLabel:
      return "label";
    case Kind::kField:
      return "field:" + field;
    case Kind::kPath:
      return component == -2 ? "dir" : fmt::format("path:{}", component);
  }
  return "label";
}

Result<std::string> LabelSpec::Of(std::string_view key, const Sample* sample, uint64_t pos) const {
  if (kind != Kind::kPath) {
    if (sample->Find(field) != nullptr || kind == Kind::kField) {
      return SampleLabel(*sample, field);
    }
  }
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = key.find('/', start);
    parts.push_back(key.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  const int c = kind == Kind::kLabel ? -2 : component;
  const int64_t i = c < 0 ? static_cast<int64_t>(parts.size()) + c : c;
  if (i < 0 || i >= static_cast<int64_t>(parts.size()) || parts[i].empty()) {
    return Status::NotFound(fmt::format(
        "sample {} '{}' has no {} to take its label from; {}", pos, EscapeForDisplay(key),
        kind == Kind::kLabel ? "cls field and no parent folder"
                             : fmt::format("path component {}", c),
        kind == Kind::kLabel ? "give one with --label-from-dir when packing, or name another "
                               "label (field:NAME, path:N)"
                             : "choose another component (path:N) or a field (field:NAME)"));
  }
  return std::string(parts[i]);
}

// ---------------------------------------------------------------- writer

struct ViewWriter::Rep {
  std::string path;
  std::vector<ViewSource> sources;
  std::string recipe_json;
  bool sync = true;
  std::unique_ptr<AtomicFile> file;
  std::vector<ViewEntry> pending;
  std::string directory;
  uint64_t num_entries = 0, num_blocks = 0;
  bool closed = false;
  Xxh3Stream hash;  // every byte before the footer's checksum

  Status Append(std::string_view bytes) {
    hash.Update(bytes);
    return file->Append(bytes);
  }

  Status FlushBlock() {
    if (pending.empty()) return Status::OK();
    view::BlockInfo b;
    b.offset = file->offset();
    bool run = true;
    uint32_t min_src = pending[0].source, max_src = pending[0].source;
    uint64_t min_ord = pending[0].ordinal, max_ord = pending[0].ordinal;
    for (size_t i = 1; i < pending.size(); ++i) {
      const ViewEntry& e = pending[i];
      if (e.source != pending[0].source || e.ordinal != pending[0].ordinal + i) run = false;
      min_src = std::min(min_src, e.source);
      max_src = std::max(max_src, e.source);
      min_ord = std::min(min_ord, e.ordinal);
      max_ord = std::max(max_ord, e.ordinal);
    }
    b.base_source = min_src;
    b.base_ordinal = min_ord;
    if (run) {
      b.kind = view::kRun;
    } else {
      b.kind = view::kPacked;
      b.src_bits = static_cast<uint8_t>(view::BitsFor(max_src - min_src));
      b.ord_bits = static_cast<uint8_t>(view::BitsFor(max_ord - min_ord));
      std::vector<uint64_t> values(pending.size());
      std::string payload;
      for (size_t i = 0; i < pending.size(); ++i) values[i] = pending[i].source - min_src;
      view::PutPacked(values, b.src_bits, &payload);
      for (size_t i = 0; i < pending.size(); ++i) values[i] = pending[i].ordinal - min_ord;
      view::PutPacked(values, b.ord_bits, &payload);
      SHARDSET_RETURN_IF_ERROR(Append(payload));
    }
    view::EncodeBlockInfo(b, &directory);
    ++num_blocks;
    pending.clear();
    return Status::OK();
  }
};

ViewWriter::ViewWriter(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
ViewWriter::~ViewWriter() = default;

Result<std::unique_ptr<ViewWriter>> ViewWriter::Create(const std::string& path,
                                                       std::vector<ViewSource> sources,
                                                       std::string recipe_json, bool sync) {
  if (sources.size() > UINT32_MAX) return Status::InvalidArgument("too many sources");
  auto rep = std::make_unique<Rep>();
  rep->path = path;
  for (ViewSource& s : sources) {
    for (std::string& t : s.targets) t = RecordedTarget(t, path);
    s.selected = 0;
  }
  rep->sources = std::move(sources);
  rep->recipe_json = std::move(recipe_json);
  rep->sync = sync;
  if (IsDirectory(path)) {
    return Status::InvalidArgument(fmt::format(
        "{}: is a folder; give the view a file name (mix --sweep and split take a folder)", path));
  }
  // A killed earlier run's hidden partial view (the crash harness found
  // them piling up); those of running processes are kept.
  (void)RemoveStaleTempFilesOf(path);
  auto file = AtomicFile::Create(path);
  if (!file.ok()) {
    return file.status().WithPrefix(
        fmt::format("{}: cannot write the view (does its folder exist?)", path));
  }
  rep->file = std::move(*file);
  std::string header(view::kMagic);
  PutFixed32(&header, kViewVersion);
  PutFixed32(&header, 0);  // flags: none in version 1
  SHARDSET_RETURN_IF_ERROR(rep->Append(header));
  rep->pending.reserve(view::kBlockEntries);
  return std::unique_ptr<ViewWriter>(new ViewWriter(std::move(rep)));
}

Status ViewWriter::Add(ViewEntry e) {
  Rep& r = *rep_;
  if (r.closed) return Status::InvalidArgument(fmt::format("{}: view already closed", r.path));
  if (e.source >= r.sources.size() || e.ordinal >= r.sources[e.source].num_samples) {
    return Status::InvalidArgument(fmt::format("{}: entry ({}, {}) is outside the view's sources",
                                               r.path, e.source, e.ordinal));
  }
  ++r.sources[e.source].selected;
  r.pending.push_back(e);
  ++r.num_entries;
  if (r.pending.size() == view::kBlockEntries) return r.FlushBlock();
  return Status::OK();
}

uint64_t ViewWriter::num_entries() const { return rep_->num_entries; }

Status ViewWriter::Close() {
  Rep& r = *rep_;
  if (r.closed) return Status::InvalidArgument(fmt::format("{}: view already closed", r.path));
  r.closed = true;
  SHARDSET_RETURN_IF_ERROR(r.FlushBlock());
  const uint64_t directory_offset = r.file->offset();
  SHARDSET_RETURN_IF_ERROR(r.Append(r.directory));
  json meta;
  meta["format"] = "shardset-view";
  meta["version"] = kViewVersion;
  meta["num_samples"] = r.num_entries;
  json sources = json::array();
  for (const ViewSource& s : r.sources) sources.push_back(SourceToJson(s));
  meta["sources"] = std::move(sources);
  json recipe = json::parse(r.recipe_json, nullptr, false);
  meta["recipe"] = recipe.is_discarded() ? json::object() : recipe;
  const std::string meta_text = meta.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  const uint64_t meta_offset = r.file->offset();
  SHARDSET_RETURN_IF_ERROR(r.Append(meta_text));
  std::string footer;
  PutFixed64(&footer, r.num_entries);
  PutFixed64(&footer, r.num_blocks);
  PutFixed32(&footer, view::kBlockShift);
  PutFixed32(&footer, static_cast<uint32_t>(r.sources.size()));
  PutFixed64(&footer, directory_offset);
  PutFixed64(&footer, meta_offset);
  PutFixed64(&footer, meta_text.size());
  r.hash.Update(footer);
  PutFixed64(&footer, r.hash.Digest());
  footer += view::kMagic;
  SHARDSET_RETURN_IF_ERROR(r.file->Append(footer));
  return r.file->Commit(r.sync, /*overwrite=*/true);
}

// ---------------------------------------------------------------- reader

struct View::Rep {
  std::string target;
  bool is_file = false;
  // A catalog directory (TARGET "CATALOG#NAME", docs/catalog.md): its
  // entries are in memory, and each Read appends the sample's current
  // instances as the derived field "annotations".
  bool is_directory = false;
  std::vector<ViewEntry> entries;
  std::vector<int64_t> file_ids;
  std::unique_ptr<Catalog> catalog;
  mutable std::mutex catalog_mu;
  ReadOptions options;
  MappedFile file;
  uint64_t num_entries = 0, num_blocks = 0, directory_offset = 0;
  std::vector<ViewSource> sources;
  std::vector<std::unique_ptr<Dataset>> datasets;
  std::string recipe_json = "{}";

  // Each source shard's edge hash, checked on its first read.
  struct ShardCheck {
    std::once_flag once;
    Status status;
  };
  std::vector<std::unique_ptr<ShardCheck[]>> checks;

  view::BlockInfo block(uint64_t b) const {
    return view::DecodeBlockInfo(file.data().data() + directory_offset +
                                 b * view::kDirectoryEntrySize);
  }

  // "view V, source 'name' (targets)", for messages.
  std::vector<std::string> shown;

  // Errors from a view file's source say which view and source they are
  // about; a dataset read whole needs no such prefix.
  Status Wrap(size_t s, const Status& st) const {
    return is_file || is_directory ? st.WithPrefix(shown[s]) : st;
  }

  std::string Remake() const {
    return fmt::format("re-make the view with: {}", Command(recipe_json));
  }

  Status CheckShard(size_t s, size_t shard) const {
    if (!is_file) return Status::OK();
    ShardCheck& c = checks[s][shard];
    std::call_once(c.once, [&] {
      const ViewShard& recorded = sources[s].shards[shard];
      auto hash = EdgeHashOf(*datasets[s], shard);
      if (!hash.ok()) {
        c.status = hash.status().WithPrefix(shown[s]);
      } else if (*hash != recorded.edge_hash) {
        c.status = Status::Corruption(fmt::format(
            "{}: shard {} changed since the view was made (its first or last 64 KiB differ); "
            "{}",
            shown[s], datasets[s]->shard_path(shard), Remake()));
      }
    });
    return c.status;
  }

  Status Parse();
  Status OpenSources();
  Status OpenDirectory(const std::string& catalog_path, const std::string& name);
  Status AppendAnnotations(uint64_t pos, Sample* out) const;
};

namespace {

Status Bad(const std::string& path, std::string_view what) {
  return Status::Corruption(fmt::format(
      "{}: {}; the view file is damaged: re-make it (shardset info shows its recipe when its "
      "meta is intact)",
      path, what));
}

}  // namespace

Status View::Rep::Parse() {
  const std::string_view d = file.data();
  const std::string& path = target;
  if (d.size() < view::kHeaderSize + view::kFooterSize || d.substr(0, 8) != view::kMagic) {
    return Bad(path, "not a view file (bad magic or too short)");
  }
  const uint32_t version = DecodeFixed32(d.data() + 8);
  const char* f = d.data() + d.size() - view::kFooterSize;
  const bool footer_magic = std::string_view(f + 56, 8) == view::kMagic;
  const bool intact = footer_magic && Xxh3(d.substr(0, d.size() - 16)) == DecodeFixed64(f + 48);
  // Another version is a newer shardset's file only when the checksum this
  // version places holds; otherwise a damaged version field would send the
  // user to upgrade (the corruption harness flipped one).
  if (version != kViewVersion) {
    if (intact) {
      return Status::NotSupported(
          fmt::format("{}: view version {} (this shardset reads version {}); upgrade shardset",
                      path, version, kViewVersion));
    }
    return Bad(path, fmt::format("it claims view version {} and its checksum does not hold (if "
                                 "a newer shardset wrote it, upgrade shardset)",
                                 version));
  }
  if (!footer_magic) return Bad(path, "bad footer magic");
  if (!intact) return Bad(path, "checksum mismatch");
  num_entries = DecodeFixed64(f);
  num_blocks = DecodeFixed64(f + 8);
  const uint32_t shift = DecodeFixed32(f + 16);
  const uint32_t num_sources = DecodeFixed32(f + 20);
  directory_offset = DecodeFixed64(f + 24);
  const uint64_t meta_offset = DecodeFixed64(f + 32);
  const uint64_t meta_size = DecodeFixed64(f + 40);
  const uint64_t footer_offset = d.size() - view::kFooterSize;
  // (The block count is computed so that no entry count can wrap it.)
  if (shift != view::kBlockShift ||
      num_blocks !=
          num_entries / view::kBlockEntries + (num_entries % view::kBlockEntries != 0 ? 1 : 0) ||
      directory_offset < view::kHeaderSize || directory_offset > footer_offset ||
      num_blocks > (footer_offset - directory_offset) / view::kDirectoryEntrySize ||
      meta_offset != directory_offset + num_blocks * view::kDirectoryEntrySize ||
      meta_size != footer_offset - meta_offset || meta_size > kMaxMetaBytes) {
    return Bad(path, "footer offsets are inconsistent");
  }
  // Every packed block must lie in the payload area, before the directory.
  for (uint64_t b = 0; b < num_blocks; ++b) {
    const view::BlockInfo info = block(b);
    const uint64_t n = std::min(view::kBlockEntries, num_entries - b * view::kBlockEntries);
    if (info.kind == view::kRun) {
      if (info.base_ordinal + n < info.base_ordinal) return Bad(path, "run overflows");
      continue;
    }
    if (info.kind != view::kPacked || info.src_bits > 32 || info.ord_bits > 64) {
      return Bad(path, fmt::format("block {} has an unknown encoding", b));
    }
    const uint64_t bytes =
        view::PackedBytes(n, info.src_bits) + view::PackedBytes(n, info.ord_bits);
    if (info.offset < view::kHeaderSize || info.offset > directory_offset ||
        bytes > directory_offset - info.offset) {
      return Bad(path, fmt::format("block {} lies outside the table", b));
    }
  }
  if (!JsonDepthWithin(d.substr(meta_offset, meta_size))) {
    return Bad(path, fmt::format("its meta nests deeper than {} levels", kMaxJsonDepth));
  }
  json meta = json::parse(d.substr(meta_offset, meta_size), nullptr, false);
  if (meta.is_discarded() || !meta.is_object() || meta.value("format", "") != "shardset-view") {
    return Bad(path, "its meta is not a view's JSON");
  }
  try {
    if (JsonU64(meta.at("num_samples")) != num_entries) {
      return Bad(path, "meta and footer disagree on the number of samples");
    }
    for (const json& s : meta.at("sources")) {
      SHARDSET_ASSIGN_OR_RETURN(ViewSource src, SourceFromJson(s));
      sources.push_back(std::move(src));
    }
    if (meta.contains("recipe")) recipe_json = meta["recipe"].dump();
  } catch (const std::exception& e) {
    return Bad(path, fmt::format("malformed meta ({})", e.what()));
  }
  if (sources.size() != num_sources) return Bad(path, "meta and footer disagree on sources");
  return Status::OK();
}

Status View::Rep::OpenSources() {
  for (size_t s = 0; s < sources.size(); ++s) {
    ViewSource& src = sources[s];
    std::vector<std::string> resolved;
    for (const std::string& t : src.targets) resolved.push_back(ResolveTarget(t, target));
    auto ds = Dataset::Open(resolved, options);
    const std::string shown = fmt::format("view {}, source '{}' ({})", target,
                                          EscapeForDisplay(src.name), fmt::join(resolved, ", "));
    if (!ds.ok()) {
      return ds.status().WithPrefix(
          fmt::format("{}: cannot open it (moved or deleted? restore it, or {})", shown, Remake()));
    }
    const Manifest& m = (*ds)->manifest();
    std::string change;
    if (m.shards.size() != src.shards.size()) {
      change =
          fmt::format("it has {} shards, the view recorded {}", m.shards.size(), src.shards.size());
    } else {
      for (size_t i = 0; i < m.shards.size() && change.empty(); ++i) {
        const ManifestShard& now = m.shards[i];
        const ViewShard& then = src.shards[i];
        if (now.format != then.format || now.num_samples != then.num_samples ||
            now.file_size != then.file_size) {
          change = fmt::format(
              "shard {} ({}) is now a {} of {} samples in {} bytes, the view recorded a {} of {} "
              "in {}",
              i, (*ds)->shard_path(i), FormatName(now.format), now.num_samples, now.file_size,
              FormatName(then.format), then.num_samples, then.file_size);
        }
      }
    }
    if (change.empty() && (*ds)->num_samples() != src.num_samples) {
      change = fmt::format("it has {} samples, the view recorded {}", (*ds)->num_samples(),
                           src.num_samples);
    }
    if (!change.empty()) {
      return Status::Corruption(
          fmt::format("{}: changed since the view was made: {}; {}", shown, change, Remake()));
    }
    datasets.push_back(std::move(*ds));
    this->shown.push_back(shown);
    // From here on targets are usable paths, so views made from this view
    // can record them again relative to themselves.
    sources[s].targets = resolved;
    checks.push_back(std::make_unique<ShardCheck[]>(src.shards.size()));
  }
  return Status::OK();
}

Status View::Rep::OpenDirectory(const std::string& catalog_path, const std::string& name) {
  is_directory = true;
  SHARDSET_ASSIGN_OR_RETURN(catalog, Catalog::Open(catalog_path));
  SHARDSET_ASSIGN_OR_RETURN(std::vector<CatalogFile> files, catalog->Files(name));
  // The catalog's sources this directory uses, in order of first use.
  std::vector<int64_t> view_source(catalog->sources().size(), -1);
  for (const CatalogFile& f : files) {
    if (view_source[f.source] >= 0) continue;
    const CatalogSource& cs = catalog->sources()[f.source];
    view_source[f.source] = static_cast<int64_t>(sources.size());
    const std::string where = fmt::format("{}, source '{}' ({})", target,
                                          EscapeForDisplay(cs.name), fmt::join(cs.targets, ", "));
    auto ds = Dataset::Open(cs.targets, options);
    if (!ds.ok()) {
      return ds.status().WithPrefix(
          fmt::format("{}: cannot open it (moved or deleted? restore it)", where));
    }
    ViewSource src;
    src.name = cs.name;
    src.targets = cs.targets;
    src.num_samples = (*ds)->num_samples();
    for (const ManifestShard& ms : (*ds)->manifest().shards) {
      src.shards.push_back(ViewShard{ms.path, ms.format, ms.num_samples, ms.file_size, 0});
    }
    sources.push_back(std::move(src));
    datasets.push_back(std::move(*ds));
    shown.push_back(where);
    checks.push_back(nullptr);
  }
  entries.reserve(files.size());
  file_ids.reserve(files.size());
  // Directories are mostly added in dataset order: the sample after the
  // previous one of its source is tried before a search by key.
  std::vector<uint64_t> next(sources.size(), 0);
  for (const CatalogFile& f : files) {
    const size_t s = static_cast<size_t>(view_source[f.source]);
    if (next[s] < datasets[s]->num_samples()) {
      auto key = datasets[s]->Key(next[s]);
      if (key.ok() && *key == f.key) {
        entries.push_back(ViewEntry{static_cast<uint32_t>(s), next[s]++});
        file_ids.push_back(f.id);
        ++sources[s].selected;
        continue;
      }
    }
    auto ord = datasets[s]->Find(f.key);
    if (!ord.ok()) {
      if (!ord.status().IsNotFound()) return Wrap(s, ord.status());
      return Status::NotFound(fmt::format(
          "{}: the directory holds key '{}', which the source no longer has (re-packed without "
          "it?); restore the source, or point the catalog at the dataset that has it",
          shown[s], EscapeForDisplay(f.key)));
    }
    entries.push_back(ViewEntry{static_cast<uint32_t>(s), *ord});
    file_ids.push_back(f.id);
    ++sources[s].selected;
    next[s] = *ord + 1;
  }
  num_entries = entries.size();
  recipe_json = json{{"verb", "dir"}, {"catalog", catalog_path}, {"directory", name}}.dump();
  return Status::OK();
}

Status View::Rep::AppendAnnotations(uint64_t pos, Sample* out) const {
  std::unique_lock<std::mutex> lock(catalog_mu);
  Result<std::vector<Instance>> instances = catalog->Instances(file_ids[pos]);
  lock.unlock();
  if (!instances.ok()) return instances.status().WithPrefix(target);
  std::string text = "[";
  for (const Instance& in : *instances) {
    if (text.size() > 1) text += ",";
    text += InstanceJson(in);
  }
  text += "]";
  // Fields may be views into out->storage, which appending can move.
  const char* old = out->storage.data();
  const size_t old_size = out->storage.size();
  std::vector<size_t> offsets(out->fields.size(), SIZE_MAX);
  for (size_t i = 0; i < out->fields.size(); ++i) {
    const char* d = out->fields[i].data.data();
    if (d != nullptr && d >= old && d <= old + old_size) offsets[i] = d - old;
  }
  out->storage += text;
  for (size_t i = 0; i < out->fields.size(); ++i) {
    if (offsets[i] == SIZE_MAX) continue;
    out->fields[i].data = std::string_view(out->storage).substr(offsets[i], out->fields[i].data.size());
  }
  out->fields.push_back(Field{kAnnotationsField,
                              std::string_view(out->storage).substr(old_size, text.size()),
                              kFieldDerived});
  return Status::OK();
}

View::View(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
View::~View() = default;

Result<std::unique_ptr<View>> View::Open(const std::string& target, const ReadOptions& options) {
  return Open(std::vector<std::string>{target}, options);
}

Result<std::unique_ptr<View>> View::Open(const std::vector<std::string>& targets,
                                         const ReadOptions& options) {
  auto rep = std::make_unique<Rep>();
  rep->options = options;
  // A file named *.view is read as a view even when its magic is damaged or
  // cut short, so such damage is reported as a damaged view rather than as a
  // shard of no known format.
  const bool named_view = targets.size() == 1 && targets[0].ends_with(".view") &&
                          PathExists(targets[0]) && !IsDirectory(targets[0]);
  if (targets.size() == 1) {
    // "CATALOG#NAME": a directory of a catalog.
    const size_t hash = targets[0].rfind('#');
    if (hash != std::string::npos && hash > 0 && IsCatalogFile(targets[0].substr(0, hash))) {
      rep->target = targets[0];
      SHARDSET_RETURN_IF_ERROR(
          rep->OpenDirectory(targets[0].substr(0, hash), targets[0].substr(hash + 1)));
      return std::unique_ptr<View>(new View(std::move(rep)));
    }
  }
  if (targets.size() == 1 && (named_view || IsViewFile(targets[0]))) {
    rep->target = targets[0];
    rep->is_file = true;
    SHARDSET_ASSIGN_OR_RETURN(rep->file, MappedFile::Open(targets[0]));
    SHARDSET_RETURN_IF_ERROR(rep->Parse());
    SHARDSET_RETURN_IF_ERROR(rep->OpenSources());
    return std::unique_ptr<View>(new View(std::move(rep)));
  }
  SHARDSET_ASSIGN_OR_RETURN(auto ds, Dataset::Open(targets, options));
  rep->target = ds->target();
  rep->num_entries = ds->num_samples();
  ViewSource src;
  src.name = DefaultSourceName(targets[0]);
  src.targets = targets;
  src.num_samples = src.selected = ds->num_samples();
  for (const ManifestShard& ms : ds->manifest().shards) {
    ViewShard v;
    v.path = ms.path;
    v.format = ms.format;
    v.num_samples = ms.num_samples;
    v.file_size = ms.file_size;
    src.shards.push_back(std::move(v));
  }
  rep->sources.push_back(std::move(src));
  rep->datasets.push_back(std::move(ds));
  rep->checks.push_back(nullptr);
  return std::unique_ptr<View>(new View(std::move(rep)));
}

bool View::is_view_file() const { return rep_->is_file || rep_->is_directory; }
const std::string& View::target() const { return rep_->target; }
uint64_t View::num_samples() const { return rep_->num_entries; }
size_t View::num_sources() const { return rep_->sources.size(); }
const ViewSource& View::source(size_t i) const { return rep_->sources[i]; }
const Dataset& View::dataset(size_t i) const { return *rep_->datasets[i]; }
const std::string& View::recipe_json() const { return rep_->recipe_json; }
uint64_t View::file_size() const { return rep_->is_file ? rep_->file.size() : 0; }

ViewEntry View::entry(uint64_t pos) const {
  const Rep& r = *rep_;
  if (r.is_directory) return r.entries[pos];
  if (!r.is_file) return ViewEntry{0, pos};
  const view::BlockInfo b = r.block(pos >> view::kBlockShift);
  const uint64_t i = pos & (view::kBlockEntries - 1);
  if (b.kind == view::kRun) return ViewEntry{b.base_source, b.base_ordinal + i};
  const char* p = r.file.data().data() + b.offset;
  const uint64_t n =
      std::min(view::kBlockEntries, r.num_entries - (pos & ~(view::kBlockEntries - 1)));
  const uint64_t src = view::GetPacked(p, i, b.src_bits);
  const uint64_t ord = view::GetPacked(p + view::PackedBytes(n, b.src_bits), i, b.ord_bits);
  return ViewEntry{static_cast<uint32_t>(b.base_source + src), b.base_ordinal + ord};
}

// Where position `pos` lives, with the checks every access needs first: the
// position exists, its entry points into a source (a damaged table that
// still checksums cannot point elsewhere), and that shard still has the edge
// hash the view recorded.
struct View::Located {
  size_t source;
  uint64_t ordinal;  // in the source dataset
  size_t shard;
  uint64_t in_shard;
};

Result<View::Located> View::Locate(uint64_t pos) const {
  const Rep& r = *rep_;
  if (pos >= r.num_entries) {
    return Status::NotFound(
        fmt::format("{}: no sample {} (it has {} samples)", r.target, pos, r.num_entries));
  }
  const ViewEntry e = entry(pos);
  if (e.source >= r.sources.size()) {
    return Bad(r.target,
               fmt::format("entry {} names source {} of {}", pos, e.source, r.sources.size()));
  }
  auto loc = r.datasets[e.source]->Locate(e.ordinal);
  if (!loc.ok()) return r.Wrap(e.source, loc.status());
  SHARDSET_RETURN_IF_ERROR(r.CheckShard(e.source, loc->first));
  return Located{e.source, e.ordinal, loc->first, loc->second};
}

Status View::Read(uint64_t pos, Sample* out) const {
  SHARDSET_ASSIGN_OR_RETURN(Located at, Locate(pos));
  Status s = rep_->datasets[at.source]->Read(at.ordinal, out);
  if (!s.ok()) return rep_->Wrap(at.source, s);
  out->ordinal = pos;
  if (rep_->is_directory) return rep_->AppendAnnotations(pos, out);
  return Status::OK();
}

Result<std::string> View::Key(uint64_t pos) const {
  SHARDSET_ASSIGN_OR_RETURN(Located at, Locate(pos));
  auto key = rep_->datasets[at.source]->Key(at.ordinal);
  if (!key.ok()) return rep_->Wrap(at.source, key.status());
  return key;
}

Status View::Stat(uint64_t pos, SampleStat* out) const {
  SHARDSET_ASSIGN_OR_RETURN(Located at, Locate(pos));
  Status s = rep_->datasets[at.source]->Stat(at.ordinal, out);
  return s.ok() ? s : rep_->Wrap(at.source, s);
}

Result<const ShardReader*> View::ShardOf(uint64_t pos) const {
  SHARDSET_ASSIGN_OR_RETURN(Located at, Locate(pos));
  auto shard = rep_->datasets[at.source]->shard(at.shard);
  if (!shard.ok()) return rep_->Wrap(at.source, shard.status());
  return shard;
}

Result<std::vector<FieldFile>> View::FieldFiles(uint64_t pos) const {
  SHARDSET_ASSIGN_OR_RETURN(Located at, Locate(pos));
  SHARDSET_ASSIGN_OR_RETURN(const ShardReader* shard, rep_->datasets[at.source]->shard(at.shard));
  auto files = shard->FieldFiles(at.in_shard);
  if (!files.ok()) return rep_->Wrap(at.source, files.status());
  return files;
}

Result<uint64_t> View::Find(std::string_view key) const {
  const Rep& r = *rep_;
  if (!r.is_file && !r.is_directory) return r.datasets[0]->Find(key);
  // Where the key is in each source, then the first position holding one of
  // those entries. Blocks whose bases rule the entry out are skipped without
  // decoding, so views in source order (split, select, mix) cost about one
  // directory pass.
  std::vector<std::pair<uint32_t, uint64_t>> wanted;
  for (size_t s = 0; s < r.sources.size(); ++s) {
    // A shard that cannot be opened must not read as "no such key".
    for (size_t i = 0; i < r.datasets[s]->num_shards(); ++i) {
      auto shard = r.datasets[s]->shard(i);
      if (!shard.ok()) return r.Wrap(s, shard.status());
    }
    auto ord = r.datasets[s]->Find(key);
    if (ord.ok()) {
      wanted.emplace_back(static_cast<uint32_t>(s), *ord);
    } else if (!ord.status().IsNotFound()) {
      return r.Wrap(s, ord.status());
    }
  }
  if (r.is_directory) {
    for (uint64_t pos = 0; pos < r.num_entries && !wanted.empty(); ++pos) {
      for (const auto& [src, ord] : wanted) {
        if (r.entries[pos] == ViewEntry{src, ord}) return pos;
      }
    }
    return Status::NotFound(
        fmt::format("{}: no sample with key '{}'", r.target, EscapeForDisplay(key)));
  }
  // Within a block the earliest position wins, whichever source it is from.
  std::vector<ViewEntry> in_block;
  for (uint64_t b = 0; b < r.num_blocks && !wanted.empty(); ++b) {
    const view::BlockInfo info = r.block(b);
    const uint64_t first = b * view::kBlockEntries;
    const uint64_t n = std::min(view::kBlockEntries, r.num_entries - first);
    in_block.clear();
    for (const auto& [src, ord] : wanted) {
      if (src < info.base_source || ord < info.base_ordinal) continue;
      if (info.kind == view::kRun) {
        if (src == info.base_source && ord - info.base_ordinal < n) in_block.push_back({src, ord});
        continue;
      }
      if (info.src_bits < 32 && src - info.base_source >= (uint64_t{1} << info.src_bits)) continue;
      if (info.ord_bits < 64 && ord - info.base_ordinal >= (uint64_t{1} << info.ord_bits)) {
        continue;
      }
      in_block.push_back({src, ord});
    }
    if (in_block.empty()) continue;
    if (info.kind == view::kRun) {
      // One source per run, so at most one candidate.
      return first + (in_block[0].ordinal - info.base_ordinal);
    }
    for (uint64_t i = 0; i < n; ++i) {
      const ViewEntry e = entry(first + i);
      if (std::find(in_block.begin(), in_block.end(), e) != in_block.end()) return first + i;
    }
  }
  return Status::NotFound(
      fmt::format("{}: no sample with key '{}'", r.target, EscapeForDisplay(key)));
}

Status View::Verify(VerifyReport* report,
                    const std::function<void(const DatasetVerifyProgress&)>& progress) const {
  const Rep& r = *rep_;
  if (!r.is_file && !r.is_directory) return r.datasets[0]->Verify(report, progress);
  if (r.is_directory) {
    Status integrity = r.catalog->CheckIntegrity();
    if (!integrity.ok()) report->problems.push_back(integrity.message());
  }
  for (size_t s = 0; s < r.sources.size(); ++s) {
    for (size_t i = 0; i < r.sources[s].shards.size(); ++i) {
      // A missing shard is reported once, by the dataset's own verify below.
      Status st = r.CheckShard(s, i);
      if (!st.ok() && !st.IsNotFound()) report->problems.push_back(st.message());
    }
    // Parts of a mix often draw from the same dataset: check it once.
    bool seen = false;
    for (size_t t = 0; t < s && !seen; ++t) seen = r.sources[t].targets == r.sources[s].targets;
    if (seen) continue;
    VerifyReport sub;
    SHARDSET_RETURN_IF_ERROR(r.datasets[s]->Verify(&sub, progress));
    report->samples_checked += sub.samples_checked;
    report->bytes_checked += sub.bytes_checked;
    report->missing_shards += sub.missing_shards;
    for (const std::string& p : sub.problems) {
      report->problems.push_back(fmt::format("{}: {}", r.shown[s], p));
    }
  }
  // Every entry must point into its source.
  for (uint64_t pos = 0; pos < r.num_entries; ++pos) {
    const ViewEntry e = entry(pos);
    if (e.source >= r.sources.size() || e.ordinal >= r.datasets[e.source]->num_samples()) {
      report->problems.push_back(
          fmt::format("{}: entry {} points to ({}, {}), outside its sources; re-make the view",
                      r.target, pos, e.source, e.ordinal));
      break;
    }
  }
  return Status::OK();
}

}  // namespace shardset
