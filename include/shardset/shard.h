// Shards: immutable container files of samples, read by ordinal or key.
//
// A sample is a key plus named fields (bytes). Files that share a stem in a
// source tree ("0042.png", "0042.cls") form one sample with fields "png" and
// "cls" (the WebDataset convention, see docs/cli.md "Samples and keys").
//
// Every shard format (native, tar, ...) is read through ShardReader and written
// through ShardWriter. Readers answer Read(ordinal) in O(1) seeks through an
// index (embedded in native shards, a sidecar file or an in-memory scan for
// the others) and return field bytes as views into a memory map: no copy.
//
// Thread safety: a ShardReader is immutable after Open; Read, Find and Verify
// may be called from many threads at once. A ShardWriter is used by one thread.
#ifndef SHARDSET_SHARD_H_
#define SHARDSET_SHARD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shardset/remote.h"
#include "shardset/status.h"

namespace shardset {

// Field flags, stored in every index (docs/format.md "Field table").
enum FieldFlags : uint8_t {
  // The field was not a file in the source: it was made by pack, e.g. the
  // "cls" label taken from the parent directory by --label-from-dir. extract
  // does not write derived fields unless asked, so the source tree round-trips.
  kFieldDerived = 1,
};

struct Field {
  std::string_view name;
  std::string_view data;  // valid while the Sample that holds it lives
  uint8_t flags = 0;
};

// One sample as returned by a reader. Field bytes point into the shard's
// memory map (or into `storage` for formats that must decode).
struct Sample {
  uint64_t ordinal = 0;  // within the shard or dataset that returned it
  std::string key;
  std::vector<Field> fields;
  std::string storage;  // owns decoded bytes when a format cannot map them

  // The field named `name`, or nullptr.
  const Field* Find(std::string_view name) const;
};

// A sample to be written: owned bytes.
struct InputField {
  std::string name;
  std::string data;
  uint8_t flags = 0;
};
struct InputSample {
  std::string key;
  std::vector<InputField> fields;
};

// Every format shardset reads in place. Native, tar, zip, tsv and tar.gz are
// also written by pack (docs/formats/). A folder shard is a
// folder of loose files indexed in place: its shard file is the folder index
// (docs/formats/folder-index.md), made by `shardset dataset create`, and its
// field bytes stay in the original files.
enum class ShardFormat { kNative, kTar, kZip, kTsv, kTarGz, kFolder };
std::string_view FormatName(ShardFormat f);
// "native" | "tar" | "zip" | "tsv" | "tar.gz" (also "tgz") | "folder".
Result<ShardFormat> ParseFormat(std::string_view name);
// The file extension of a shard of this format, with the dot (".shard",
// ".tar", ".zip", ".tsv", ".tar.gz", ".fidx").
std::string_view FormatExtension(ShardFormat f);
// True when pack can write this format.
bool FormatWritable(ShardFormat f);

struct ReadOptions {
  // Check each sample's checksum on Read (xxh3, docs/format.md; CRC-32 for
  // zip). Off saves one pass over the bytes; a corrupt sample then goes
  // undetected.
  bool verify_checksums = true;

  // Limits against hostile or broken archives (docs/archives.md
  // "Safety"). Passing one is ResourceExhausted naming the file, the sample
  // and the flag that raises it; memory and time stay bounded by them, never
  // by what an archive claims.
  //
  // The largest field a reader decodes (inflate, base64) into memory.
  uint64_t max_field_bytes = uint64_t{4} << 30;
  // The most entries (members, rows) an archive may hold.
  uint64_t max_entries = uint64_t{1} << 32;
  // The largest decompressed:compressed ratio of a zip field bigger than
  // kRatioFloorBytes, or of a whole tar.gz stream past targz::kStreamRatioFloor
  // (64 MiB, docs/formats/targz-index.md "Limits"); 0: no limit. Deflate's own
  // limit is 1032:1; real images and text stay far below 100:1.
  uint64_t max_ratio = 200;
  static constexpr uint64_t kRatioFloorBytes = uint64_t{1} << 20;

  // tsv only: the columns, e.g. "key,cls,png:b64" (docs/formats/tsv.md
  // "Columns"). Empty: from the file's header line, else guessed.
  std::string tsv_columns;

  // s3:// and http(s):// targets: endpoint, cache, retries (docs/remote.md).
  RemoteOptions remote;
};

// Where a field of a loose-file sample lives (ShardReader::FieldFiles).
struct FieldFile {
  std::string name;
  // Absolute path of the file holding the field's bytes; empty for a derived
  // field (e.g. the cls label taken from the folder name), which has no file.
  std::string path;
  uint64_t size = 0;
  uint8_t flags = 0;
};

// A field as the index knows it, without its bytes (ShardReader::Stat).
struct FieldStat {
  std::string name;
  uint64_t size = 0;  // what Read returns: decoded (inflated, base64-decoded) bytes
  uint8_t flags = 0;
  // Modification time, unix seconds: a tar or zip member's own, a loose
  // file's (folder shards), otherwise the shard file's.
  int64_t mtime = 0;
};
struct SampleStat {
  std::string key;
  std::vector<FieldStat> fields;  // in the order Read returns them
};

// What Verify found. Problems are one line each and name the shard, the
// sample (ordinal and key where known) and what to do.
struct VerifyReport {
  uint64_t samples_checked = 0;
  uint64_t bytes_checked = 0;
  // Shards the manifest lists that do not exist (each also has a problem
  // line); the CLI exits 3 rather than 4 when these are the only problems.
  uint64_t missing_shards = 0;
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

class ShardReader {
 public:
  virtual ~ShardReader() = default;
  ShardReader(const ShardReader&) = delete;
  ShardReader& operator=(const ShardReader&) = delete;

  virtual const std::string& path() const = 0;
  virtual ShardFormat format() const = 0;
  virtual uint64_t num_samples() const = 0;
  // Size of the shard file in bytes.
  virtual uint64_t file_size() const = 0;
  // True when keys strictly increase with the ordinal (what pack writes);
  // Find is then a binary search.
  virtual bool keys_sorted() const = 0;

  // Fills *out with sample `ordinal`. NotFound when ordinal >= num_samples();
  // Corruption (naming the shard, ordinal and key) when the bytes fail their
  // checksum or the index is damaged: never returns wrong bytes.
  virtual Status Read(uint64_t ordinal, Sample* out) const = 0;
  // Only the key of sample `ordinal` (no field bytes touched).
  virtual Result<std::string> Key(uint64_t ordinal) const = 0;
  // The ordinal of the sample with this key, or NotFound. O(log n) when the
  // shard's keys are sorted (pack writes them so), O(n) otherwise.
  virtual Result<uint64_t> Find(std::string_view key) const = 0;
  // Checks every structure and checksum; problems go to *report (never stops
  // at the first). Returns non-OK only when the shard cannot be checked at all.
  virtual Status Verify(VerifyReport* report) const = 0;
  // Folder shards only: the file behind each field of sample `ordinal`, in
  // field order, for tools that link or list files instead of reading bytes
  // (`shardset link`, `shardset list`). NotSupported for packed formats,
  // whose fields live inside the shard file.
  virtual Result<std::vector<FieldFile>> FieldFiles(uint64_t ordinal) const;
  // The key and each field's name, size and time of sample `ordinal`, from
  // the index alone: no field byte is read or checked (a damaged sample stats
  // fine and fails on Read), so listing a shard (`shardset mount`) costs no
  // data I/O. tsv, whose rows must be parsed to find their cells, reads the
  // row (the default: Read, with the shard file's time).
  virtual Status Stat(uint64_t ordinal, SampleStat* out) const;

 protected:
  ShardReader() = default;
};

// Opens a shard of any format, recognised by its content (magic bytes), not
// its name. A tar uses its sidecar index (FILE.idx) when present and current,
// otherwise it is scanned once into memory.
Result<std::unique_ptr<ShardReader>> OpenShard(const std::string& path,
                                               const ReadOptions& options = {});

// The format of `path`, from its first bytes only (no index is read).
// NotSupported when it is neither a native shard nor a tar.
Result<ShardFormat> DetectFormat(const std::string& path);

// Opens `path` as a shard of `format` (as a manifest records it): a file that
// does not parse as that format is reported as Corruption, not NotSupported.
Result<std::unique_ptr<ShardReader>> OpenShardAs(const std::string& path, ShardFormat format,
                                                 const ReadOptions& options = {});

// Builds the sidecar index of an archive that needs one (`shardset index`):
// a tar's "<path>.idx", a tsv's "<stem>.lineidx" and "<stem>.lineidx.8b"
// (the path without its extension, as TSVFile names them), a tar.gz's
// checkpoint index "<path>.idx". Returns the number of samples indexed; NotSupported
// naming the format for those whose index is built in (native, zip).
Result<uint64_t> WriteShardIndex(const std::string& path, const ReadOptions& options = {},
                                 bool sync = true);
// The sidecar files a shard of `format` at `path` has (empty for formats
// without one).
std::vector<std::string> SidecarPaths(const std::string& path, ShardFormat format);

struct WriteOptions {
  // fsync the shard before renaming it to its final name. Turning this off
  // trades crash safety for speed (tests, benchmarks on tmpfs).
  bool sync = true;
  // Formats with a sidecar index (tar: "<path>.idx", tsv: "<stem>.lineidx"
  // and "<stem>.lineidx.8b", the path without its extension): write it too,
  // after the shard is committed.
  bool sidecar_index = true;
  // zip only: 0 stores fields (reads are then zero-copy views of the map);
  // 1-9 deflates each field with zlib at that level.
  int zip_deflate_level = 0;
  // tar.gz only: zlib's deflate level, 1-9 (6 is gzip's default).
  int gzip_level = 6;
  // Replace a file already at the shard's path when it is committed
  // (otherwise that is AlreadyExists and the file is kept).
  bool overwrite = false;
};

// What a sealed shard looks like; recorded in the dataset manifest.
struct ShardInfo {
  std::string path;
  ShardFormat format = ShardFormat::kNative;
  uint64_t num_samples = 0;
  uint64_t file_size = 0;
  uint64_t xxh3 = 0;  // XXH3-64 of the whole file
  std::string first_key, last_key;
};

// Writes one shard: samples are appended to a temporary file next to `path`;
// Close() seals it (index, footer), fsyncs and renames it to `path`. A crash
// at any moment leaves either no file at `path` or a complete shard.
// Destroying a writer without Close() removes the temporary file.
class ShardWriter {
 public:
  virtual ~ShardWriter() = default;
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends a sample. Field names must be unique within the sample.
  virtual Status Add(const InputSample& sample) = 0;
  virtual uint64_t num_samples() const = 0;
  // Bytes the shard would have if sealed now (approximate: before the index).
  virtual uint64_t bytes_written() const = 0;
  // Seals the shard. After Close the writer accepts nothing more.
  virtual Result<ShardInfo> Close() = 0;

 protected:
  ShardWriter() = default;
};

Result<std::unique_ptr<ShardWriter>> CreateShardWriter(const std::string& path,
                                                       ShardFormat format,
                                                       const WriteOptions& options = {});

}  // namespace shardset

#endif  // SHARDSET_SHARD_H_
