#include "index/index.h"

#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <memory>

#include <fmt/format.h>

#include "base/coding.h"
#include "base/hash.h"
#include "index/block_cache.h"

namespace shardset::index {
namespace {

// Blocks compress with zstd only when that saves at least 1/8 of their size:
// below that, the decompression cost on every random read is not worth it.
constexpr int kZstdLevel = 3;

struct ZstdDctxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

ZSTD_DCtx* ThreadDctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdDctxDeleter> ctx(ZSTD_createDCtx());
  return ctx.get();
}

// The block this thread decoded or looked up last: a sequential scan finds
// its next sample here without touching the shared cache.
struct LastBlock {
  uint64_t reader_id = 0;
  uint32_t block = 0;
  std::shared_ptr<const DecodedBlock> entries;
};

LastBlock& ThreadLastBlock() {
  thread_local LastBlock last;
  return last;
}

std::atomic<uint64_t> next_reader_id{1};

}  // namespace

uint32_t SampleChecksum(std::string_view bytes) { return static_cast<uint32_t>(Xxh3(bytes)); }
uint32_t KeyHash(std::string_view key) { return static_cast<uint32_t>(Xxh3(key)); }

IndexBuilder::IndexBuilder(bool contiguous, bool compress, uint32_t block_samples)
    : contiguous_(contiguous), compress_(compress), block_samples_(block_samples) {
  assert(block_samples_ >= 1 && block_samples_ <= kMaxBlockSamples);
}

uint32_t IndexBuilder::FieldId(std::string_view name, uint8_t flags) {
  for (uint32_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name == name) return i;
  }
  // A full table is not grown: readers refuse more (docs/format.md).
  if (fields_.size() >= kMaxFields) return kMaxFields;
  fields_.push_back(FieldDef{std::string(name), flags});
  return static_cast<uint32_t>(fields_.size() - 1);
}

void IndexBuilder::Add(std::string_view key, const std::vector<FieldLoc>& fields,
                       uint32_t checksum) {
  if (num_samples_ == 0) {
    first_key_ = key;
  } else if (!(key > std::string_view(last_key_))) {
    keys_sorted_ = false;
  }
  last_key_ = key;
  if (num_samples_ <= UINT32_MAX) key_hashes_.push_back(uint64_t{KeyHash(key)} << 32 | num_samples_);
  pending_.push_back(Entry{std::string(key), fields, checksum});
  pending_estimate_ += key.size() + 6 + 4 * fields.size();
  ++num_samples_;
  if (pending_.size() == block_samples_) FlushBlock();
}

// Block payload, columnar so that zstd sees like with like (docs/format.md
// "Block"): n, base, n keys (front-coded), n field lists, n fixed32 checksums.
void IndexBuilder::FlushBlock() {
  if (pending_.empty()) return;
  std::string payload;
  PutVarint64(&payload, pending_.size());
  uint64_t base = pending_[0].fields.empty() ? 0 : pending_[0].fields[0].offset;
  // A sample with no fields has no offset; base is then the next field's
  // offset, which keeps contiguous decoding exact.
  for (const Entry& e : pending_) {
    if (!e.fields.empty()) {
      base = e.fields[0].offset;
      break;
    }
  }
  PutVarint64(&payload, base);
  std::string_view prev;
  for (const Entry& e : pending_) {
    size_t shared = 0;
    size_t limit = std::min(prev.size(), e.key.size());
    while (shared < limit && prev[shared] == e.key[shared]) ++shared;
    PutVarint64(&payload, shared);
    PutVarint64(&payload, e.key.size() - shared);
    payload.append(e.key, shared);
    prev = e.key;
  }
  uint64_t pos = base;
  for (const Entry& e : pending_) {
    PutVarint64(&payload, e.fields.size());
    for (const FieldLoc& f : e.fields) {
      PutVarint64(&payload, f.field_id);
      if (!contiguous_) {
        assert(f.offset >= pos);
        PutVarint64(&payload, f.offset - pos);
      } else {
        assert(f.offset == pos);
      }
      PutVarint64(&payload, f.size);
      pos = f.offset + f.size;
    }
  }
  for (const Entry& e : pending_) PutFixed32(&payload, e.checksum);

  uint8_t codec = kRaw;
  std::string stored;
  if (compress_) {
    stored.resize(ZSTD_compressBound(payload.size()));
    size_t n = ZSTD_compress(stored.data(), stored.size(), payload.data(), payload.size(),
                             kZstdLevel);
    if (!ZSTD_isError(n) && n < payload.size() - payload.size() / 8) {
      stored.resize(n);
      codec = kZstd;
    }
  }
  if (codec == kRaw) stored = std::move(payload);
  directory_.emplace_back(blocks_.size(), static_cast<uint32_t>(stored.size()));
  codecs_.push_back(codec);
  blocks_.append(stored);
  PutFixed32(&blocks_, static_cast<uint32_t>(Xxh3(stored)));
  pending_.clear();
  pending_estimate_ = 0;
}

std::string IndexBuilder::Finish(uint64_t index_offset) {
  FlushBlock();
  std::string out = std::move(blocks_);
  // Unsorted keys get a key table so Find stays O(log n); it needs ordinals
  // that fit 32 bits, which every shard of fewer than 4G samples has.
  const bool key_table = !keys_sorted_ && num_samples_ <= UINT32_MAX;
  if (key_table) {
    std::sort(key_hashes_.begin(), key_hashes_.end());
    const size_t start = out.size();
    for (uint64_t e : key_hashes_) {
      PutFixed32(&out, static_cast<uint32_t>(e >> 32));
      PutFixed32(&out, static_cast<uint32_t>(e));
    }
    PutFixed32(&out, static_cast<uint32_t>(Xxh3(std::string_view(out).substr(start))));
  }
  key_hashes_.clear();
  key_hashes_.shrink_to_fit();
  const uint64_t meta_offset = index_offset + out.size();
  const size_t meta_start = out.size();
  PutVarint64(&out, fields_.size());
  for (const FieldDef& f : fields_) {
    out.push_back(static_cast<char>(f.flags));
    PutVarint64(&out, f.name.size());
    out.append(f.name);
  }
  for (size_t i = 0; i < directory_.size(); ++i) {
    PutFixed64(&out, index_offset + directory_[i].first);
    PutFixed32(&out, directory_[i].second);
    out.push_back(static_cast<char>(codecs_[i]));
    out.append(3, '\0');
  }
  const size_t footer_start = out.size();
  PutFixed64(&out, index_offset);
  PutFixed64(&out, meta_offset);
  PutFixed64(&out, num_samples_);
  PutFixed32(&out, static_cast<uint32_t>(directory_.size()));
  PutFixed32(&out, block_samples_);
  uint32_t flags = (contiguous_ ? uint32_t{kContiguous} : 0u) |
                   (keys_sorted_ ? uint32_t{kKeysSorted} : 0u) |
                   (key_table ? uint32_t{kKeyTable} : 0u);
  PutFixed32(&out, flags);
  PutFixed32(&out, kVersion);
  PutFixed64(&out, Xxh3(std::string_view(out).substr(meta_start)));
  out.append(kFooterMagic);
  assert(out.size() - footer_start == kFooterSize);
  (void)footer_start;
  return out;
}

Result<IndexReader> IndexReader::Open(std::string_view file, uint64_t data_limit,
                                      std::string name) {
  IndexReader r;
  r.name_ = std::move(name);
  auto corrupt = [&](std::string_view what) {
    return Status::Corruption(fmt::format(
        "{}: index {}; the file is truncated or damaged: restore it, or rebuild its index",
        r.name_, what));
  };
  if (file.size() < kFooterSize) return corrupt("footer missing (file too short)");
  const char* f = file.data() + file.size() - kFooterSize;
  if (std::string_view(f + 48, 8) != kFooterMagic) return corrupt("footer magic not found");
  r.file_ = file;
  r.id_ = next_reader_id.fetch_add(1);
  r.data_limit_ = data_limit;
  r.index_offset_ = DecodeFixed64(f);
  r.meta_offset_ = DecodeFixed64(f + 8);
  r.num_samples_ = DecodeFixed64(f + 16);
  r.num_blocks_ = DecodeFixed32(f + 24);
  r.block_samples_ = DecodeFixed32(f + 28);
  r.flags_ = DecodeFixed32(f + 32);
  const uint32_t version = DecodeFixed32(f + 36);
  const uint64_t footer_start = file.size() - kFooterSize;
  // The checksum comes before the version: a damaged version field must read
  // as damage, not as a file from a newer shardset.
  if (r.meta_offset_ > footer_start) return corrupt("footer offsets are out of range");
  if (DecodeFixed64(f + 40) !=
      Xxh3(file.substr(r.meta_offset_, footer_start + 40 - r.meta_offset_))) {
    return corrupt("checksum mismatch in field table, directory or footer");
  }
  if (version != kVersion) {
    return Status::NotSupported(fmt::format(
        "{}: index version {} (this shardset reads version {}); upgrade shardset", r.name_,
        version, kVersion));
  }
  if (r.block_samples_ == 0 || r.block_samples_ > kMaxBlockSamples) {
    return corrupt("footer has an invalid block size");
  }
  // Division first: num_samples + block_samples - 1 wraps for counts near
  // 2^64, and a wrapped count of 0 blocks would pass for any num_samples.
  const uint64_t want_blocks = r.num_samples_ / r.block_samples_ +
                               (r.num_samples_ % r.block_samples_ != 0 ? 1 : 0);
  if (want_blocks != r.num_blocks_ ||
      uint64_t{r.num_blocks_} * kDirectoryEntrySize > footer_start) {
    return corrupt("footer counts are inconsistent");
  }
  r.directory_offset_ = footer_start - uint64_t{r.num_blocks_} * kDirectoryEntrySize;
  if (r.meta_offset_ > r.directory_offset_ || r.index_offset_ > r.meta_offset_) {
    return corrupt("footer offsets are out of range");
  }
  if (r.flags_ & kKeyTable) {
    const uint64_t table = r.num_samples_ * kKeyTableEntrySize + 4;
    if ((r.flags_ & kKeysSorted) || r.num_samples_ > UINT32_MAX ||
        r.meta_offset_ - r.index_offset_ < table) {
      return corrupt("key table does not fit");
    }
    r.key_table_offset_ = r.meta_offset_ - table;
    r.key_table_check_ = std::make_shared<KeyTableCheck>();
  }

  const char* p = file.data() + r.meta_offset_;
  const char* limit = file.data() + r.directory_offset_;
  uint64_t nfields;
  if (!GetVarint64(&p, limit, &nfields) || nfields > kMaxFields) {
    return corrupt("field table is malformed");
  }
  for (uint64_t i = 0; i < nfields; ++i) {
    uint64_t len;
    if (p >= limit) return corrupt("field table is malformed");
    uint8_t flags = static_cast<uint8_t>(*p++);
    if (!GetVarint64(&p, limit, &len) || len > uint64_t(limit - p)) {
      return corrupt("field table is malformed");
    }
    r.fields_.push_back(FieldDef{std::string(p, len), flags});
    p += len;
  }
  return r;
}

Status IndexReader::DecodeBlock(uint32_t block, std::vector<Entry>* out) const {
  auto corrupt = [&](std::string_view what) {
    return Status::Corruption(fmt::format(
        "{}: index block {} (samples {}..{}) {}; the shard is damaged: restore it from a "
        "backup or re-pack",
        name_, block, uint64_t{block} * block_samples_,
        std::min(num_samples_, uint64_t{block + 1} * block_samples_) - 1, what));
  };
  const char* d = file_.data() + directory_offset_ + uint64_t{block} * kDirectoryEntrySize;
  uint64_t offset = DecodeFixed64(d);
  uint32_t len = DecodeFixed32(d + 8);
  uint8_t codec = static_cast<uint8_t>(d[12]);
  if (offset < index_offset_ || offset > meta_offset_ || len > meta_offset_ - offset ||
      meta_offset_ - offset - len < 4) {
    return corrupt("lies outside the index");
  }
  std::string_view stored = file_.substr(offset, len);
  if (DecodeFixed32(file_.data() + offset + len) != static_cast<uint32_t>(Xxh3(stored))) {
    return corrupt("fails its checksum");
  }
  thread_local std::string scratch;
  std::string_view payload;
  if (codec == kRaw) {
    payload = stored;
  } else if (codec == kZstd) {
    unsigned long long size = ZSTD_getFrameContentSize(stored.data(), stored.size());
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
        size > kMaxBlockBytes) {
      return corrupt("has a bad compressed frame");
    }
    scratch.resize(size);
    size_t n = ZSTD_decompressDCtx(ThreadDctx(), scratch.data(), size, stored.data(),
                                   stored.size());
    if (ZSTD_isError(n) || n != size) return corrupt("does not decompress");
    payload = scratch;
  } else {
    return corrupt("has an unknown codec");
  }

  const char* p = payload.data();
  const char* limit = p + payload.size();
  uint64_t n, base;
  const uint64_t want_n =
      std::min<uint64_t>(block_samples_, num_samples_ - uint64_t{block} * block_samples_);
  if (!GetVarint64(&p, limit, &n) || n != want_n || !GetVarint64(&p, limit, &base)) {
    return corrupt("has a bad header");
  }
  out->resize(n);
  std::string prev;
  uint64_t key_bytes = 0;  // decoded, bounded by kMaxBlockBytes
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t shared, len;
    if (!GetVarint64(&p, limit, &shared) || !GetVarint64(&p, limit, &len) ||
        shared > prev.size() || len > uint64_t(limit - p) || shared + len > kMaxKeyBytes) {
      return corrupt("has a malformed key");
    }
    key_bytes += shared + len;
    if (key_bytes > kMaxBlockBytes) {
      return corrupt(fmt::format("has keys of more than {} bytes in total", kMaxBlockBytes));
    }
    std::string& key = (*out)[i].key;
    key.assign(prev, 0, shared);
    key.append(p, len);
    p += len;
    prev = key;
  }
  const bool contiguous = flags_ & kContiguous;
  uint64_t pos = base;
  uint64_t field_entries = 0;  // bounded by kMaxBlockFieldEntries
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t count;
    if (!GetVarint64(&p, limit, &count) || count > fields_.size()) {
      return corrupt("has a malformed field list");
    }
    field_entries += count;
    if (field_entries > kMaxBlockFieldEntries) {
      return corrupt(
          fmt::format("has more than {} field entries in total", kMaxBlockFieldEntries));
    }
    auto& fields = (*out)[i].fields;
    fields.resize(count);
    for (uint64_t j = 0; j < count; ++j) {
      uint64_t id, gap = 0, size;
      if (!GetVarint64(&p, limit, &id) || id >= fields_.size() ||
          (!contiguous && !GetVarint64(&p, limit, &gap)) || !GetVarint64(&p, limit, &size)) {
        return corrupt("has a malformed field list");
      }
      if (gap > data_limit_ || pos > data_limit_ - gap || size > data_limit_ - pos - gap) {
        return corrupt("points outside the data");
      }
      fields[j] = FieldLoc{static_cast<uint32_t>(id), pos + gap, size};
      pos += gap + size;
    }
  }
  if (uint64_t(limit - p) != 4 * n) return corrupt("has a malformed checksum column");
  for (uint64_t i = 0; i < n; ++i) (*out)[i].checksum = DecodeFixed32(p + 4 * i);
  return Status::OK();
}

Status IndexReader::CheckKeyTable() const {
  std::call_once(key_table_check_->once, [this] {
    const uint64_t len = num_samples_ * kKeyTableEntrySize;
    if (DecodeFixed32(file_.data() + key_table_offset_ + len) !=
        static_cast<uint32_t>(Xxh3(file_.substr(key_table_offset_, len)))) {
      key_table_check_->status = Status::Corruption(fmt::format(
          "{}: index key table fails its checksum; rebuild the index (shardset index) or "
          "restore the file",
          name_));
    }
  });
  return key_table_check_->status;
}

Status IndexReader::VerifyKeyTable() const {
  if (!(flags_ & kKeyTable)) return Status::OK();
  SHARDSET_RETURN_IF_ERROR(CheckKeyTable());
  const char* table = file_.data() + key_table_offset_;
  std::vector<bool> seen(num_samples_);
  Entry e;
  for (uint64_t i = 0; i < num_samples_; ++i) {
    const uint32_t h = DecodeFixed32(table + i * kKeyTableEntrySize);
    const uint64_t ordinal = DecodeFixed32(table + i * kKeyTableEntrySize + 4);
    if (ordinal >= num_samples_ || seen[ordinal]) {
      return Status::Corruption(fmt::format(
          "{}: index key table entry {} is invalid; rebuild the index", name_, i));
    }
    seen[ordinal] = true;
    SHARDSET_RETURN_IF_ERROR(Get(ordinal, &e));
    if (KeyHash(e.key) != h) {
      return Status::Corruption(fmt::format(
          "{}: index key table entry {} does not match sample {}; rebuild the index", name_, i,
          ordinal));
    }
  }
  return Status::OK();
}

Status IndexReader::GetBlock(uint32_t block, std::vector<Entry>* out) const {
  if (block >= num_blocks_) {
    return Status::NotFound(fmt::format("{}: no index block {}", name_, block));
  }
  return DecodeBlock(block, out);
}

Status IndexReader::Get(uint64_t ordinal, const Entry** out) const {
  if (ordinal >= num_samples_) {
    return Status::NotFound(fmt::format("{}: no sample {} (the shard has {} samples)", name_,
                                        ordinal, num_samples_));
  }
  const uint32_t block = static_cast<uint32_t>(ordinal / block_samples_);
  LastBlock& last = ThreadLastBlock();
  if (last.reader_id != id_ || last.block != block || !last.entries) {
    BlockCache& cache = BlockCache::Global();
    std::shared_ptr<const DecodedBlock> entries = cache.Lookup(id_, block);
    if (!entries) {
      auto decoded = std::make_shared<DecodedBlock>();
      SHARDSET_RETURN_IF_ERROR(DecodeBlock(block, decoded.get()));
      entries = std::move(decoded);
      cache.Insert(id_, block, entries);
    }
    last.reader_id = id_;
    last.block = block;
    last.entries = std::move(entries);
  }
  *out = &(*last.entries)[ordinal % block_samples_];
  return Status::OK();
}

Status IndexReader::Get(uint64_t ordinal, Entry* out) const {
  const Entry* e = nullptr;
  SHARDSET_RETURN_IF_ERROR(Get(ordinal, &e));
  *out = *e;
  return Status::OK();
}

Result<uint64_t> IndexReader::Find(std::string_view key) const {
  Entry e;
  if (keys_sorted()) {
    // Binary search on each block's first key, then a scan of one block.
    uint32_t lo = 0, hi = num_blocks_;
    while (hi - lo > 1) {
      uint32_t mid = lo + (hi - lo) / 2;
      SHARDSET_RETURN_IF_ERROR(Get(uint64_t{mid} * block_samples_, &e));
      if (std::string_view(e.key) <= key) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    if (num_blocks_ > 0) {
      uint64_t end = std::min(num_samples_, uint64_t{lo + 1} * block_samples_);
      for (uint64_t i = uint64_t{lo} * block_samples_; i < end; ++i) {
        SHARDSET_RETURN_IF_ERROR(Get(i, &e));
        if (e.key == key) return i;
      }
    }
  } else if (flags_ & kKeyTable) {
    SHARDSET_RETURN_IF_ERROR(CheckKeyTable());
    const uint32_t h = KeyHash(key);
    const char* table = file_.data() + key_table_offset_;
    uint64_t lo = 0, hi = num_samples_;  // first entry with hash >= h
    while (lo < hi) {
      uint64_t mid = lo + (hi - lo) / 2;
      if (DecodeFixed32(table + mid * kKeyTableEntrySize) < h) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    for (; lo < num_samples_ && DecodeFixed32(table + lo * kKeyTableEntrySize) == h; ++lo) {
      const uint64_t ordinal = DecodeFixed32(table + lo * kKeyTableEntrySize + 4);
      if (ordinal >= num_samples_) {
        return Status::Corruption(fmt::format(
            "{}: key table entry {} names sample {} of {}; rebuild the index", name_, lo,
            ordinal, num_samples_));
      }
      SHARDSET_RETURN_IF_ERROR(Get(ordinal, &e));
      if (e.key == key) return ordinal;
    }
  } else {
    for (uint64_t i = 0; i < num_samples_; ++i) {
      SHARDSET_RETURN_IF_ERROR(Get(i, &e));
      if (e.key == key) return i;
    }
  }
  return Status::NotFound(fmt::format("{}: no sample with key '{}'", name_, key));
}

}  // namespace shardset::index
