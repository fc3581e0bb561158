#include "formats/indexed_reader.h"

#include <fmt/format.h>

#include "base/hash.h"
#include "base/strings.h"

namespace shardset {

Status SampleCorruption(const std::string& shard, uint64_t ordinal, std::string_view key,
                        std::string_view what) {
  return Status::Corruption(fmt::format(
      "{}: sample {} (key '{}'): {}; the shard is damaged: restore it from a backup or re-pack",
      shard, ordinal, EscapeForDisplay(key), what));
}

ShardInfo SealedShardInfo(const AtomicFile& file, ShardFormat format,
                          const index::IndexBuilder& index, uint64_t xxh3) {
  ShardInfo info;
  info.path = file.final_path();
  info.format = format;
  info.num_samples = index.num_samples();
  info.file_size = file.offset();
  info.xxh3 = xxh3;
  info.first_key = index.first_key();
  info.last_key = index.last_key();
  return info;
}

IndexedShardReader::IndexedShardReader(ShardFormat format, MappedFile data, MappedFile sidecar,
                                       std::string index_storage, index::IndexReader index,
                                       const ReadOptions& options, VerifyHook hook)
    : format_(format),
      data_(std::move(data)),
      sidecar_(std::move(sidecar)),
      index_storage_(std::move(index_storage)),
      index_(std::move(index)),
      options_(options),
      hook_(std::move(hook)) {}

Status IndexedShardReader::Materialize(uint64_t ordinal, const index::Entry& e, bool verify,
                                       Sample* out) const {
  out->ordinal = ordinal;
  out->key = e.key;
  out->fields.resize(e.fields.size());
  out->storage.clear();
  const auto& defs = index_.fields();
  bool adjacent = true;
  for (size_t i = 0; i < e.fields.size(); ++i) {
    const index::FieldLoc& f = e.fields[i];
    out->fields[i] = Field{defs[f.field_id].name, data_.data().substr(f.offset, f.size),
                           defs[f.field_id].flags};
    if (i > 0 && e.fields[i - 1].offset + e.fields[i - 1].size != f.offset) adjacent = false;
  }
  if (!verify) return Status::OK();
  uint32_t sum;
  if (e.fields.empty()) {
    sum = index::SampleChecksum({});
  } else if (adjacent) {
    const uint64_t begin = e.fields.front().offset;
    const uint64_t end = e.fields.back().offset + e.fields.back().size;
    sum = index::SampleChecksum(data_.data().substr(begin, end - begin));
  } else {
    Xxh3Stream h;
    for (const Field& f : out->fields) h.Update(f.data);
    sum = static_cast<uint32_t>(h.Digest());
  }
  if (sum != e.checksum) {
    return SampleCorruption(path(), ordinal, e.key, "checksum mismatch, its bytes are corrupted");
  }
  return Status::OK();
}

Status IndexedShardReader::Read(uint64_t ordinal, Sample* out) const {
  if (!refusal_.ok()) return refusal_;
  const index::Entry* e = nullptr;
  SHARDSET_RETURN_IF_ERROR(index_.Get(ordinal, &e));
  return Materialize(ordinal, *e, options_.verify_checksums, out);
}

Status StatFromIndex(const index::IndexReader& index, uint64_t ordinal,
                     const std::function<int64_t(const index::FieldLoc&)>& time,
                     SampleStat* out) {
  const index::Entry* e = nullptr;
  SHARDSET_RETURN_IF_ERROR(index.Get(ordinal, &e));
  out->key = e->key;
  out->fields.resize(e->fields.size());
  const auto& defs = index.fields();
  for (size_t i = 0; i < e->fields.size(); ++i) {
    const index::FieldLoc& f = e->fields[i];
    FieldStat& fs = out->fields[i];
    fs.name = defs[f.field_id].name;
    fs.size = f.size;
    fs.flags = defs[f.field_id].flags;
    fs.mtime = time(f);
  }
  return Status::OK();
}

Status IndexedShardReader::Stat(uint64_t ordinal, SampleStat* out) const {
  if (!refusal_.ok()) return refusal_;
  const int64_t shard_time = data_.mtime_ns() / 1000000000;
  return StatFromIndex(index_, ordinal,
                       [&](const index::FieldLoc& f) {
                         if (!time_) return shard_time;
                         return time_(*this, f).value_or(shard_time);
                       },
                       out);
}

Result<std::string> IndexedShardReader::Key(uint64_t ordinal) const {
  if (!refusal_.ok()) return refusal_;
  const index::Entry* e = nullptr;
  SHARDSET_RETURN_IF_ERROR(index_.Get(ordinal, &e));
  return e->key;
}

Result<uint64_t> IndexedShardReader::Find(std::string_view key) const {
  if (!refusal_.ok()) return refusal_;
  return index_.Find(key);
}

Status IndexedShardReader::Verify(VerifyReport* report) const {
  if (!refusal_.ok()) report->problems.push_back(refusal_.message());
  std::vector<index::Entry> entries;
  Sample sample;
  for (uint32_t b = 0; b < index_.num_blocks(); ++b) {
    Status s = index_.GetBlock(b, &entries);
    if (!s.ok()) {
      report->problems.push_back(s.message());
      continue;
    }
    const uint64_t first = uint64_t{b} * index_.block_samples();
    for (size_t i = 0; i < entries.size(); ++i) {
      Status st = Materialize(first + i, entries[i], /*verify=*/true, &sample);
      ++report->samples_checked;
      for (const Field& f : sample.fields) report->bytes_checked += f.data.size();
      if (!st.ok()) report->problems.push_back(st.message());
    }
  }
  Status keys = index_.VerifyKeyTable();
  if (!keys.ok()) report->problems.push_back(keys.message());
  if (hook_) hook_(*this, report);
  return Status::OK();
}

}  // namespace shardset
