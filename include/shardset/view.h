// Views: an ordered selection of samples from one or more datasets, kept in a
// small file (docs/formats/view.md) and never a copy of the samples' bytes.
//
// A view file records its sources (each a dataset: a folder with a manifest,
// or shard files read as one dataset), enough about every source shard to
// notice that it changed (size, sample count and an XXH3 of its first and
// last 64 KiB), the ordered (source, ordinal) entries in a memory-mapped
// table of bit-packed blocks (O(1) per entry, about 2 bytes per sample for a
// subset, nothing for a run of consecutive samples), and the recipe that made
// it (verb, arguments, seed).
//
// View::Open also takes everything else a read verb takes as TARGET: a
// dataset folder or shard files are opened as the view of all their samples
// in order, so every read verb reads datasets and views alike.
//
// Thread safety: a View is immutable after Open (lazy checks are
// synchronised); all const methods may be called from many threads.
#ifndef SHARDSET_VIEW_H_
#define SHARDSET_VIEW_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shardset/dataset.h"
#include "shardset/shard.h"
#include "shardset/status.h"

namespace shardset {

inline constexpr uint32_t kViewVersion = 1;

// A source shard as the view recorded it when it was made.
struct ViewShard {
  std::string path;  // as the source dataset names it (for messages)
  ShardFormat format = ShardFormat::kNative;
  uint64_t num_samples = 0;
  uint64_t file_size = 0;
  // XXH3-64 of the shard's first 64 KiB followed by its last 64 KiB (of the
  // whole file when it is at most 128 KiB), as tar sidecars fingerprint tars.
  uint64_t edge_hash = 0;
};

struct ViewSource {
  // Unique within the view: the mix part's name, or the dataset's folder
  // name for split and select.
  std::string name;
  // What the source dataset is opened from. A view file records them
  // relative to its own folder; View::source() returns them resolved (usable
  // from the current directory).
  std::vector<std::string> targets;
  uint64_t num_samples = 0;  // samples in the source dataset
  uint64_t selected = 0;     // entries of the view drawn from it
  std::vector<ViewShard> shards;
};

struct ViewEntry {
  uint32_t source = 0;
  uint64_t ordinal = 0;  // global ordinal in the source dataset
  bool operator==(const ViewEntry&) const = default;
};

// True when `path` is a view file (by its magic number; folders are not).
bool IsViewFile(const std::string& path);
// True when `path` is an SQLite database file (a catalog, docs/catalog.md):
// "CATALOG#NAME" then names one of its directories as a TARGET.
bool IsCatalogFile(const std::string& path);
// The derived field a catalog directory's samples carry: their instances as
// a JSON array (InstanceJson), read from the catalog at each Read.
inline constexpr std::string_view kAnnotationsField = "annotations";

// The fingerprint a view records for the shard at `path` (ViewShard::edge_hash).
Result<uint64_t> EdgeHash(const std::string& path);
// The same for shard `shard` of `dataset`; for an s3:// or http(s)://
// dataset, from two ranged GETs (the shard is not fetched).
Result<uint64_t> EdgeHashOf(const Dataset& dataset, size_t shard);

// Writes a view file: entries are appended in view order and encoded a block
// at a time (memory does not grow with the view). Close() writes the table,
// the sources and the recipe to a temporary name, fsyncs and renames it to
// `path`; destroying an unclosed writer leaves nothing behind.
class ViewWriter {
 public:
  // `sources` carry everything but `selected`, which the writer counts.
  // `recipe_json` is a JSON object (verb, arguments, seed).
  static Result<std::unique_ptr<ViewWriter>> Create(const std::string& path,
                                                    std::vector<ViewSource> sources,
                                                    std::string recipe_json, bool sync = true);
  ~ViewWriter();
  ViewWriter(const ViewWriter&) = delete;
  ViewWriter& operator=(const ViewWriter&) = delete;

  // InvalidArgument when the source index or ordinal is out of range.
  Status Add(ViewEntry entry);
  uint64_t num_entries() const;
  Status Close();

 private:
  struct Rep;
  explicit ViewWriter(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

struct ViewVerifyProgress {
  uint64_t done = 0, total = 0;
};

class View {
 public:
  // A view file, a catalog directory ("CATALOG#NAME"), a dataset folder, or
  // one or more shard files (one dataset).
  // A view file's sources are opened and compared with what it recorded:
  // a missing source, or one whose shards changed in number, size or sample
  // count, is an error naming the view, the source and what to do. Each
  // shard's edge hash is checked on the first read from it.
  static Result<std::unique_ptr<View>> Open(const std::vector<std::string>& targets,
                                            const ReadOptions& options = {});
  static Result<std::unique_ptr<View>> Open(const std::string& target,
                                            const ReadOptions& options = {});
  ~View();
  View(const View&) = delete;
  View& operator=(const View&) = delete;

  // True when the target was a view file (false: a dataset read whole).
  bool is_view_file() const;
  const std::string& target() const;
  uint64_t num_samples() const;
  size_t num_sources() const;
  const ViewSource& source(size_t i) const;
  // The dataset behind source i.
  const Dataset& dataset(size_t i) const;
  // The recipe that made the view file ("{}" for a dataset read whole).
  const std::string& recipe_json() const;
  // Bytes of the view file (0 for a dataset read whole).
  uint64_t file_size() const;

  // Entry `pos` (< num_samples()): O(1), no I/O beyond the map.
  ViewEntry entry(uint64_t pos) const;
  // Sample at view position `pos`; out->ordinal is `pos`. Errors from a
  // source name the view and the source.
  Status Read(uint64_t pos, Sample* out) const;
  Result<std::string> Key(uint64_t pos) const;
  // Key, field names, sizes and times of sample `pos` without reading its
  // bytes (ShardReader::Stat).
  Status Stat(uint64_t pos, SampleStat* out) const;
  // The first position whose sample has `key`. A view of several sources may
  // hold a key more than once; the first wins.
  Result<uint64_t> Find(std::string_view key) const;
  // The shard holding sample `pos` (opened on first use).
  Result<const ShardReader*> ShardOf(uint64_t pos) const;
  // Folder sources: the files behind sample `pos`'s fields (for link/list).
  Result<std::vector<FieldFile>> FieldFiles(uint64_t pos) const;

  // The view file's checksum and table, every source's shards against what
  // the view recorded, then every source shard in full (Dataset::Verify).
  Status Verify(VerifyReport* report,
                const std::function<void(const DatasetVerifyProgress&)>& progress = {}) const;

 private:
  struct Rep;
  struct Located;
  explicit View(std::unique_ptr<Rep> rep);
  Result<Located> Locate(uint64_t pos) const;
  std::unique_ptr<Rep> rep_;
};

struct ExtractOptions {
  // Also write derived fields (made by pack, e.g. the cls label).
  bool derived = false;
  // Called after each sample with (samples done, files written).
  std::function<void(uint64_t, uint64_t)> progress;
};

struct ExtractResult {
  uint64_t files = 0;
  uint64_t bytes = 0;
};

// Writes every sample's fields to `out`/key.field. Nothing is ever written
// outside `out`: keys that are absolute or contain "." / ".." / empty
// components are refused (InvalidArgument naming the sample), and folders are
// entered with O_NOFOLLOW relative to `out`, so a symlink inside `out` cannot
// redirect a write elsewhere. Each file appears under its name complete
// (written to a temporary name, then renamed).
Result<ExtractResult> Extract(const View& view, const std::string& out,
                              const ExtractOptions& options = {});

// The name a source gets when none is given: the target's last path
// component without a shard or view extension ("data/camvid/" -> "camvid").
std::string DefaultSourceName(std::string_view target);

// The label of a sample: the text of field `label_field` without trailing
// whitespace. NotFound naming the sample when it has no such field.
Result<std::string> SampleLabel(const Sample& sample, std::string_view label_field);

// Where a sample's label comes from (shuffle --interleave-by, info --order
// --label; docs/shuffle.md "Labels"):
//   "label"      the cls field when the sample has one, else the name of its
//                parent folder (what pack --label-from-dir stores as cls);
//   "dir"        the name of the sample's parent folder;
//   "path:N"     component N of the key's path, 0 first, -1 the file stem,
//                -2 its parent folder;
//   "field:NAME" or a bare NAME: the text of field NAME.
struct LabelSpec {
  enum class Kind { kLabel, kField, kPath };
  Kind kind = Kind::kLabel;
  std::string field = "cls";  // kField, and kLabel's first choice
  int component = -2;         // kPath

  static Result<LabelSpec> Parse(std::string_view text);
  std::string ToString() const;
  // False when the label comes from the key alone (no field bytes read).
  bool needs_fields() const { return kind != Kind::kPath; }
  // The label of the sample with `key` (and, when needs_fields(), its
  // fields); NotFound naming the sample and what to do when it has none.
  Result<std::string> Of(std::string_view key, const Sample* sample, uint64_t pos) const;
};

}  // namespace shardset

#endif  // SHARDSET_VIEW_H_
