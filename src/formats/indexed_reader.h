// IndexedShardReader: the ShardReader every format shares once it has an
// index (src/index): the data file is memory-mapped, the index maps ordinals
// to field offsets in it, and field bytes are returned as views into the map.
// Formats differ only in where the index comes from (embedded, sidecar, scan).
#ifndef SHARDSET_FORMATS_INDEXED_READER_H_
#define SHARDSET_FORMATS_INDEXED_READER_H_

#include <functional>
#include <optional>
#include <string>

#include "base/file.h"
#include "index/index.h"
#include "shardset/shard.h"

namespace shardset {

class IndexedShardReader : public ShardReader {
 public:
  // Extra structural checks a format adds to Verify (e.g. tar header
  // checksums, native data coverage). Appends problems to the report.
  using VerifyHook = std::function<void(const IndexedShardReader&, VerifyReport*)>;

  // `index_storage` owns the index bytes when they do not live in `data`
  // (an in-memory scan or a sidecar map); `index` views either.
  IndexedShardReader(ShardFormat format, MappedFile data, MappedFile sidecar,
                     std::string index_storage, index::IndexReader index,
                     const ReadOptions& options, VerifyHook hook = nullptr);

  const std::string& path() const override { return data_.path(); }
  ShardFormat format() const override { return format_; }
  uint64_t num_samples() const override { return index_.num_samples(); }
  uint64_t file_size() const override { return data_.size(); }
  bool keys_sorted() const override { return index_.keys_sorted(); }
  Status Read(uint64_t ordinal, Sample* out) const override;
  Result<std::string> Key(uint64_t ordinal) const override;
  Result<uint64_t> Find(std::string_view key) const override;
  Status Verify(VerifyReport* report) const override;

  // Stat: each field's time is the shard file's unless `time` (tar: the
  // member header's) returns one.
  using TimeHook = std::function<std::optional<int64_t>(const IndexedShardReader&,
                                                        const index::FieldLoc&)>;
  Status Stat(uint64_t ordinal, SampleStat* out) const override;
  void SetTimeHook(TimeHook time) { time_ = std::move(time); }

  // Every Read, Key and Find fails with `why` from now on; Verify reports it
  // and still checks every sample (a tar whose sidecar fingerprint fails).
  void RefuseReads(Status why) { refusal_ = std::move(why); }

  const MappedFile& data() const { return data_; }
  const index::IndexReader& index() const { return index_; }
  // Fills *out from an index entry (views into the map) and checks its
  // checksum if `verify`.
  Status Materialize(uint64_t ordinal, const index::Entry& e, bool verify, Sample* out) const;

 private:
  ShardFormat format_;
  MappedFile data_;
  MappedFile sidecar_;
  std::string index_storage_;
  index::IndexReader index_;
  ReadOptions options_;
  VerifyHook hook_;
  TimeHook time_;
  Status refusal_;
};

// Fills *out from the index entry of sample `ordinal`: key, names, sizes and
// flags; each field's time is `time(loc)` (Stat of the index-based readers).
Status StatFromIndex(const index::IndexReader& index, uint64_t ordinal,
                     const std::function<int64_t(const index::FieldLoc&)>& time, SampleStat* out);

// What a writer reports for the shard it is sealing at `file`'s final name.
ShardInfo SealedShardInfo(const AtomicFile& file, ShardFormat format,
                          const index::IndexBuilder& index, uint64_t xxh3);

// "the sample's checksum does not match" message with shard, ordinal, key.
Status SampleCorruption(const std::string& shard, uint64_t ordinal, std::string_view key,
                        std::string_view what);

}  // namespace shardset

#endif  // SHARDSET_FORMATS_INDEXED_READER_H_
