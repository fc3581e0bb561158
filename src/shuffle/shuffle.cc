// Shuffle (include/shardset/shuffle.h, docs/shuffle.md).
//
// Writing shards in a shuffled order is a scatter and a gather:
// * scatter: the source is read once in its own order (sequential reads,
//   which is what compressed archives and disks are fast at) and each sample
//   is appended to the buffer of its output slice (a run of consecutive
//   output positions). The buffers share half of --memory; when they hold
//   more, the largest is appended to its slice's temporary file, so data
//   that fits in half of --memory never touches the disk;
// * gather: slice by slice, its samples are loaded (one sequential read of
//   its file plus its buffer), put in output order and written to the
//   output shards. A slice that does not fit beside the buffers still held
//   (possible only when the size estimate was far off) is gathered by
//   reading its samples one at a time from its file instead.
// Slices are sized from the source's bytes so that each is about half of
// --memory; the order itself does not depend on them. Peak memory is so
// about --memory: buffers (at most half) plus one slice (about half).
#include "shardset/shuffle.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/coding.h"
#include "base/file.h"
#include "base/hash.h"
#include "base/strings.h"
#include "dataset/dataset_writer.h"
#include "shuffle/order.h"
#include "view/labels.h"

namespace shardset {
namespace {

using json = nlohmann::json;
using shuffle::OrderPlan;

constexpr uint32_t kMaxSlices = 1024;
constexpr uint64_t kMinMemory = 1 << 20;
// Per sample held during a gather beyond its bytes: its position, offset,
// order index and InputSample scaffolding.
constexpr uint64_t kRecordOverhead = 64;
constexpr std::string_view kTempDirName = ".shardset-shuffle-tmp";
// Samples at least this large on average are read directly in output order
// whatever --memory is: a random read of this size costs about what a
// sequential one does, on disks and SSDs alike.
constexpr uint64_t kDirectSampleBytes = 64 << 10;
// Per sample while a slice of the order is put together in direct mode:
// its position (8) and its order index (4).
constexpr uint64_t kDirectOverhead = 12;

// ------------------------------------------------------------ records

// A sample in a slice: u64 pos, u32 key size, u32 field count, the key, then
// per field u32 name size, u8 flags, u64 data size, name, data. Little-endian
// (the temporary files never leave this machine or this run).
uint64_t RecordSize(const Sample& s) {
  uint64_t n = 16 + s.key.size();
  for (const Field& f : s.fields) n += 13 + f.name.size() + f.data.size();
  return n;
}

// Writes the record of `s` (RecordSize(s) bytes) at `dst`.
void EncodeRecord(uint64_t pos, const Sample& s, char* dst) {
  EncodeFixed64(dst, pos);
  EncodeFixed32(dst + 8, static_cast<uint32_t>(s.key.size()));
  EncodeFixed32(dst + 12, static_cast<uint32_t>(s.fields.size()));
  dst += 16;
  std::memcpy(dst, s.key.data(), s.key.size());
  dst += s.key.size();
  for (const Field& f : s.fields) {
    EncodeFixed32(dst, static_cast<uint32_t>(f.name.size()));
    dst[4] = static_cast<char>(f.flags);
    EncodeFixed64(dst + 5, f.data.size());
    dst += 13;
    std::memcpy(dst, f.name.data(), f.name.size());
    dst += f.name.size();
    std::memcpy(dst, f.data.data(), f.data.size());
    dst += f.data.size();
  }
}

// Bytes in pages of their own (an anonymous mapping), returned to the system
// the moment the Block goes. Heap blocks of these sizes would stay in the
// process after being freed (glibc keeps them for reuse once its mmap
// threshold has grown), and resident memory would stop following --memory.
class Block {
 public:
  Block() = default;
  static Result<Block> Allocate(uint64_t capacity) {
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    Block b;
    b.capacity_ = std::max<uint64_t>(page, (capacity + page - 1) / page * page);
    void* p =
        ::mmap(nullptr, b.capacity_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      return Status::ResourceExhausted(
          fmt::format("cannot map {} of memory for the shuffle ({}); lower --memory",
                      FormatBytes(b.capacity_), std::strerror(errno)));
    }
    b.data_ = static_cast<char*>(p);
    return b;
  }
  ~Block() {
    if (data_) ::munmap(data_, capacity_);
  }
  Block(Block&& o) noexcept { *this = std::move(o); }
  Block& operator=(Block&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(capacity_, o.capacity_);
    return *this;
  }

  uint64_t size() const { return size_; }
  uint64_t capacity() const { return capacity_; }
  uint64_t room() const { return capacity_ - size_; }
  std::string_view view() const { return {data_, size_}; }
  // `n` more bytes at the end (n <= room()), to be written by the caller.
  char* Extend(uint64_t n) {
    assert(n <= room());
    char* p = data_ + size_;
    size_ += n;
    return p;
  }

 private:
  char* data_ = nullptr;
  uint64_t size_ = 0, capacity_ = 0;
};

// Parses the record at `data`; returns its size, 0 when damaged.
uint64_t ParseRecord(std::string_view data, uint64_t* pos, InputSample* out,
                     uint64_t* source_bytes) {
  if (data.size() < 16) return 0;
  const char* p = data.data();
  *pos = DecodeFixed64(p);
  const uint32_t key_size = DecodeFixed32(p + 8);
  const uint32_t nfields = DecodeFixed32(p + 12);
  uint64_t at = 16;
  if (data.size() - at < key_size) return 0;
  if (out) out->key.assign(p + at, key_size);
  at += key_size;
  if (out) out->fields.resize(nfields);
  *source_bytes = 0;
  for (uint32_t i = 0; i < nfields; ++i) {
    if (data.size() - at < 13) return 0;
    const uint32_t name_size = DecodeFixed32(p + at);
    const uint8_t flags = static_cast<uint8_t>(p[at + 4]);
    const uint64_t size = DecodeFixed64(p + at + 5);
    at += 13;
    if (data.size() - at < name_size || data.size() - at - name_size < size) return 0;
    if (out) {
      out->fields[i].name.assign(p + at, name_size);
      out->fields[i].flags = flags;
      out->fields[i].data.assign(p + at + name_size, size);
    }
    if (!(flags & kFieldDerived)) *source_bytes += size;
    at += name_size + size;
  }
  return at;
}

// ------------------------------------------------------------ temp space

// A folder of temporary slice files, removed with everything in it when
// destroyed (success or failure).
class TempDir {
 public:
  ~TempDir() { Remove(); }
  Status Create(const std::string& path) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);  // a crashed run's leftovers
    if (::mkdir(path.c_str(), 0700) != 0) {
      return Status::FromErrno(
          fmt::format("{}: cannot create the shuffle's temporary folder (choose another with "
                      "--temp-dir)",
                      path),
          errno);
    }
    path_ = path;
    return Status::OK();
  }
  const std::string& path() const { return path_; }
  void Remove() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    path_.clear();
  }

 private:
  std::string path_;
};

// A slice's records not yet in its file live in chunks: appending never
// moves what is buffered (a growing string would copy it, holding two copies
// at once), and no record straddles two chunks, so each chunk is parsed on
// its own. Chunks are counted by capacity.
struct Slice {
  std::vector<Block> chunks;
  uint64_t held = 0;  // capacity of the chunks
  int fd = -1;
  uint64_t file_bytes = 0;
  uint64_t records = 0;
};

// ------------------------------------------------------------ planning

// Bytes of samples the view's entries are expected to hold: each source
// dataset's bytes times the share of its samples the view takes. A tar.gz
// is counted at its compressed size times 3 (PNGs inflate about 2.6:1, text
// more); a wrong estimate only makes slices larger or smaller.
uint64_t EstimateBytes(const View& v) {
  long double total = 0;
  for (size_t s = 0; s < v.num_sources(); ++s) {
    const ViewSource& src = v.source(s);
    long double bytes = 0;
    for (const ViewShard& sh : src.shards) {
      bytes += sh.file_size * (sh.format == ShardFormat::kTarGz ? 3.0L : 1.0L);
    }
    if (src.num_samples > 0) total += bytes * src.selected / src.num_samples;
  }
  return static_cast<uint64_t>(total);
}

// --memory left for samples beside the order: an interleaved order keeps its
// inverse (4 bytes per sample; CheckOptions ensures it is at most half).
uint64_t SampleMemory(const View& src, const ShuffleOptions& o) {
  const uint64_t plan = o.interleave_by.empty() ? 0 : src.num_samples() * sizeof(uint32_t);
  return o.memory - std::min(o.memory / 2, plan);
}

uint32_t PlanSlices(const View& src, const ShuffleOptions& o) {
  const uint64_t n = src.num_samples();
  const uint64_t estimated_bytes = EstimateBytes(src);
  const uint64_t target = std::max<uint64_t>(1, SampleMemory(src, o) / 2);
  const uint64_t need = (estimated_bytes + n * kRecordOverhead + target - 1) / target;
  return static_cast<uint32_t>(std::clamp<uint64_t>(need, 1, kMaxSlices));
}

// Whether to read the source in output order (ShuffleOptions::Method).
bool UseDirect(const View& src, const ShuffleOptions& o) {
  if (o.method != ShuffleOptions::Method::kAuto) return o.method == ShuffleOptions::Method::kDirect;
  for (size_t s = 0; s < src.num_sources(); ++s) {
    for (const ViewShard& sh : src.source(s).shards) {
      if (sh.format == ShardFormat::kTarGz) return false;  // a random read inflates
    }
  }
  const uint64_t bytes = EstimateBytes(src), n = std::max<uint64_t>(1, src.num_samples());
  return bytes <= SampleMemory(src, o) || bytes / n >= kDirectSampleBytes;
}

// Direct mode's slices: as many positions at a time as fit in --memory.
uint32_t DirectSlices(const View& src, const ShuffleOptions& o) {
  const uint64_t per = std::max<uint64_t>(1, SampleMemory(src, o) / kDirectOverhead);
  return static_cast<uint32_t>(
      std::clamp<uint64_t>((src.num_samples() + per - 1) / per, 1, kMaxSlices));
}

// One more open file per slice: raise the soft limit toward the hard one.
uint32_t FitOpenFiles(uint32_t slices) {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return std::min<uint32_t>(slices, 256);
  const rlim_t want = slices + 256;
  if (rl.rlim_cur < want) {
    rl.rlim_cur = std::min<rlim_t>(want, rl.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < want) return static_cast<uint32_t>(std::max<rlim_t>(1, rl.rlim_cur / 2));
  return slices;
}

Status CheckOptions(const View& src, const ShuffleOptions& o) {
  if (o.memory < kMinMemory) {
    return Status::InvalidArgument(
        fmt::format("--memory {} is too small; give at least 1M", FormatBytes(o.memory)));
  }
  if (!o.interleave_by.empty()) {
    SHARDSET_RETURN_IF_ERROR(LabelSpec::Parse(o.interleave_by).status());
    if (src.num_samples() >= (uint64_t{1} << 32)) {
      return Status::InvalidArgument(
          fmt::format("{}: --interleave-by handles up to 2^32 samples; shuffle uniformly instead",
                      src.target()));
    }
    // The order and its inverse, 4 bytes each per sample, plus the labels'
    // 4 bytes in the page cache.
    const uint64_t need = src.num_samples() * 8;
    if (need > o.memory) {
      return Status::ResourceExhausted(fmt::format(
          "{}: --interleave-by keeps 8 bytes per sample in memory ({} for {} samples), more "
          "than --memory {}; raise --memory",
          src.target(), FormatBytes(need), src.num_samples(), FormatBytes(o.memory)));
    }
  }
  return Status::OK();
}

// The order of `src`: uniform, or interleaved by the labels read now.
Result<std::unique_ptr<OrderPlan>> MakePlan(const View& src, const ShuffleOptions& o,
                                            uint32_t slices, const std::string& temp_dir) {
  const uint64_t n = src.num_samples();
  if (o.interleave_by.empty()) {
    const uint64_t k = o.bucket_samples ? o.bucket_samples : kShuffleBucketSamples;
    return shuffle::UniformPlan(n, o.seed, k, slices);
  }
  SHARDSET_ASSIGN_OR_RETURN(LabelSpec spec, LabelSpec::Parse(o.interleave_by));
  LabelColumn labels;
  LabelColumn::Options lo;
  lo.temp_dir = temp_dir;
  lo.hint = "too many to interleave; choose the label with --interleave-by";
  if (o.progress) {
    lo.progress = [&](uint64_t done, uint64_t total) { o.progress({"labels", done, total}); };
  }
  SHARDSET_RETURN_IF_ERROR(labels.Build(src, spec, lo));
  std::vector<uint32_t> order =
      shuffle::InterleavedOrder(n, labels.data(), labels.counts(), o.seed);
  std::vector<uint32_t> inverse(n);
  for (uint64_t j = 0; j < n; ++j) inverse[order[j]] = static_cast<uint32_t>(j);
  return shuffle::InverseOrderPlan(std::move(inverse), slices);
}

json RecipeJson(const View& src, const ShuffleOptions& o, bool view_output) {
  // What identifies the source: every shard's path, size, sample count and
  // edge hash, digested (a resume after the source changed would mix two
  // orders).
  std::string ident;
  for (size_t s = 0; s < src.num_sources(); ++s) {
    for (const ViewShard& sh : src.source(s).shards) {
      ident += fmt::format("{}\n{}\n{}\n", sh.path, sh.file_size, sh.num_samples);
    }
  }
  json r = {{"verb", "shuffle"},
            {"source", src.target()},
            {"source_digest", Hex64(Xxh3(ident))},
            {"samples", src.num_samples()},
            {"seed", o.seed},
            {"mode", o.interleave_by.empty() ? "uniform" : "interleave"}};
  if (!o.interleave_by.empty()) r["interleave_by"] = o.interleave_by;
  if (o.bucket_samples) r["bucket_samples"] = o.bucket_samples;
  if (!view_output) {
    r["format"] = std::string(FormatName(o.format));
    r["shard_size"] = o.shard_size;
    r["shard_samples"] = o.shard_samples;
    if (o.zip_deflate_level != 0) r["zip_deflate_level"] = o.zip_deflate_level;
    if (o.format == ShardFormat::kTarGz) r["gzip_level"] = o.gzip_level;
  }
  return r;
}

// ------------------------------------------------------------ the shuffler

// Where gathered samples go: a dataset folder (resumable) or one shard file.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status Add(const InputSample& s, uint64_t source_bytes, uint64_t progress) = 0;
};

class DatasetSink final : public Sink {
 public:
  explicit DatasetSink(DatasetWriter* w) : w_(w) {}
  Status Add(const InputSample& s, uint64_t source_bytes, uint64_t progress) override {
    return w_->Add(s, source_bytes, progress);
  }

 private:
  DatasetWriter* w_;
};

class ShardSink final : public Sink {
 public:
  explicit ShardSink(ShardWriter* w) : w_(w) {}
  Status Add(const InputSample& s, uint64_t, uint64_t) override { return w_->Add(s); }

 private:
  ShardWriter* w_;
};

class Shuffler {
 public:
  Shuffler(const View& src, const ShuffleOptions& o, const OrderPlan& plan, std::string temp)
      : src_(src), o_(o), plan_(plan), temp_(std::move(temp)), memory_(SampleMemory(src, o)) {}

  // Writes output positions [skip, n) to `sink`, reading the source in
  // output order when `direct`, else through the scatter and gather.
  Status Run(uint64_t skip, Sink* sink, ShuffleResult* result, bool direct) {
    sink_ = sink;
    result_ = result;
    if (direct) {
      result->direct = true;
      return RunDirect(skip);
    }
    const uint32_t slices = plan_.slices();
    // The first slice not wholly written by an interrupted run, and how many
    // of its samples were.
    first_slice_ = 0;
    uint64_t skip_in_slice = skip;
    if (skip > 0) {
      const std::vector<uint64_t> sizes = plan_.SliceSizes();
      while (first_slice_ < slices && skip_in_slice >= sizes[first_slice_]) {
        skip_in_slice -= sizes[first_slice_++];
      }
    }
    slices_.resize(slices);
    budget_ = memory_ / 2;
    // Small enough that the chunks left part-filled (one per slice) waste
    // little of the budget, large enough for big sequential writes.
    chunk_ = std::clamp<uint64_t>(budget_ / (4 * uint64_t{slices}), 64 << 10, 16 << 20);
    SHARDSET_RETURN_IF_ERROR(Scatter());
    // Counts the samples handed to the sink (the resumed ones included): the
    // sink records it with each sealed shard, and a later resume skips that
    // many.
    uint64_t out_pos = skip;
    for (uint32_t s = first_slice_; s < slices; ++s) {
      SHARDSET_RETURN_IF_ERROR(Gather(s, s == first_slice_ ? skip_in_slice : 0, &out_pos));
    }
    return Status::OK();
  }

 private:
  // Slice by slice: the slice's source positions (one pass of SliceOf over
  // all of them), their output order, then each sample read and handed on.
  // A source that fits in --memory is read through once first, in its own
  // order, so the random reads find it in the page cache even when it
  // started on disk; larger sources have large samples (UseDirect), whose
  // random reads are no slower than sequential ones.
  Status RunDirect(uint64_t skip) {
    const uint64_t n = src_.num_samples();
    Sample sample;
    if (EstimateBytes(src_) <= memory_) {
      for (uint64_t pos = 0; pos < n; ++pos) {
        SHARDSET_RETURN_IF_ERROR(src_.Read(pos, &sample));
        if (o_.progress && (pos % 4096 == 0 || pos + 1 == n)) o_.progress({"reading", pos + 1, n});
      }
    }
    InputSample input;
    std::vector<uint64_t> positions;
    std::vector<uint32_t> order;
    uint64_t out_pos = 0;
    for (uint32_t s = 0; s < plan_.slices(); ++s) {
      positions.clear();
      for (uint64_t pos = 0; pos < n; ++pos) {
        if (plan_.SliceOf(pos) == s) positions.push_back(pos);
      }
      if (out_pos + positions.size() <= skip) {
        out_pos += positions.size();
        continue;
      }
      plan_.OrderSlice(s, positions, &order);
      for (uint32_t k : order) {
        if (out_pos < skip) {
          ++out_pos;
          continue;
        }
        SHARDSET_RETURN_IF_ERROR(src_.Read(positions[k], &sample));
        const uint64_t source_bytes = ToInput(sample, &input);
        ++out_pos;
        SHARDSET_RETURN_IF_ERROR(sink_->Add(input, source_bytes, out_pos));
        if (o_.progress && (out_pos % 1024 == 0 || out_pos == n)) {
          o_.progress({"writing", out_pos, n});
        }
      }
    }
    return Status::OK();
  }

  // Copies `s` into `out` (reusing its buffers); returns the bytes of its
  // fields that came from files.
  static uint64_t ToInput(const Sample& s, InputSample* out) {
    out->key.assign(s.key);
    out->fields.resize(s.fields.size());
    uint64_t source_bytes = 0;
    for (size_t i = 0; i < s.fields.size(); ++i) {
      const Field& f = s.fields[i];
      out->fields[i].name.assign(f.name);
      out->fields[i].data.assign(f.data);
      out->fields[i].flags = f.flags;
      if (!(f.flags & kFieldDerived)) source_bytes += f.data.size();
    }
    return source_bytes;
  }

  Status Scatter() {
    const uint64_t n = src_.num_samples();
    Sample sample;
    for (uint64_t pos = 0; pos < n; ++pos) {
      const uint32_t s = plan_.SliceOf(pos);
      if (s < first_slice_) continue;
      SHARDSET_RETURN_IF_ERROR(src_.Read(pos, &sample));
      const uint64_t size = RecordSize(sample);
      SHARDSET_ASSIGN_OR_RETURN(Block * chunk, Room(s, size));
      EncodeRecord(pos, sample, chunk->Extend(size));
      ++slices_[s].records;
      if (o_.progress && (pos % 1024 == 0 || pos + 1 == n)) {
        o_.progress({"scatter", pos + 1, n});
      }
    }
    return Status::OK();
  }

  // The chunk of slice s to append a record of `bytes` to: the last one when
  // it has room, else a new one within the budget (other slices' chunks go
  // to their files first, then this slice's). A record larger than the
  // budget still gets a chunk of its own.
  Result<Block*> Room(uint32_t s, uint64_t bytes) {
    Slice& slice = slices_[s];
    if (!slice.chunks.empty() && slice.chunks.back().room() >= bytes) {
      return &slice.chunks.back();
    }
    const uint64_t cap = std::max(chunk_, bytes);
    while (buffered_ + cap > budget_) {
      const uint32_t other = LargestBuffer(s);
      if (other == UINT32_MAX) break;
      SHARDSET_RETURN_IF_ERROR(Flush(other));
    }
    if (buffered_ + cap > budget_ && !slice.chunks.empty()) SHARDSET_RETURN_IF_ERROR(Flush(s));
    SHARDSET_ASSIGN_OR_RETURN(Block chunk, Block::Allocate(cap));
    slice.held += chunk.capacity();
    buffered_ += chunk.capacity();
    slice.chunks.push_back(std::move(chunk));
    return &slice.chunks.back();
  }

  // The slice other than `except` whose chunks hold the most; UINT32_MAX
  // when no other slice holds any.
  uint32_t LargestBuffer(uint32_t except = UINT32_MAX) const {
    uint32_t best = UINT32_MAX;
    uint64_t most = 0;
    for (uint32_t s = 0; s < slices_.size(); ++s) {
      if (s != except && slices_[s].held > most) {
        best = s;
        most = slices_[s].held;
      }
    }
    return best;
  }

  // Appends slice s's chunks to its file and releases them.
  Status Flush(uint32_t s) {
    Slice& slice = slices_[s];
    if (slice.fd < 0) {
      const std::string path = SlicePath(s);
      slice.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (slice.fd < 0) {
        return Status::FromErrno(
            fmt::format("{}: cannot create a temporary file (choose another folder with "
                        "--temp-dir)",
                        path),
            errno);
      }
    }
    for (const Block& chunk : slice.chunks) {
      SHARDSET_RETURN_IF_ERROR(WriteAll(slice.fd, chunk.view(), SlicePath(s)));
      slice.file_bytes += chunk.size();
      temp_bytes_ += chunk.size();
    }
    result_->temp_bytes = std::max(result_->temp_bytes, temp_bytes_);
    ReleaseChunks(&slice);
    return Status::OK();
  }

  void ReleaseChunks(Slice* slice) {
    assert(buffered_ >= slice->held);
    buffered_ -= slice->held;
    slice->held = 0;
    std::vector<Block>().swap(slice->chunks);
  }

  std::string SlicePath(uint32_t s) const {
    return JoinPath(temp_, fmt::format("slice-{:04d}", s));
  }

  // Loads slice s (its file's part in one sequential read, its chunks in
  // place), puts its records in output order and hands them to the sink.
  Status Gather(uint32_t s, uint64_t skip, uint64_t* out_pos) {
    Slice& slice = slices_[s];
    // Beside the chunks still held (this slice's among them): the file's
    // part and per-record bookkeeping. Other slices' chunks go to their files
    // first to make room (sequential writes); reading the records one by one
    // from the file is the last resort.
    auto fits = [&] {
      return buffered_ + slice.file_bytes + slice.records * kRecordOverhead <= memory_;
    };
    while (!fits()) {
      const uint32_t other = LargestBuffer(s);
      if (other == UINT32_MAX) break;
      SHARDSET_RETURN_IF_ERROR(Flush(other));
    }
    const bool in_memory = fits();
    if (!in_memory) {
      ++result_->spilled_groups;
      SHARDSET_RETURN_IF_ERROR(Flush(s));
    }
    Block file_part;
    std::vector<uint64_t> positions, offsets;
    std::vector<std::string_view> records;
    positions.reserve(slice.records);
    if (in_memory) {
      records.reserve(slice.records);
      if (slice.file_bytes > 0) {
        SHARDSET_ASSIGN_OR_RETURN(file_part, Block::Allocate(slice.file_bytes));
        SHARDSET_RETURN_IF_ERROR(PreadAll(slice.fd, 0, file_part.Extend(slice.file_bytes),
                                          slice.file_bytes, SlicePath(s)));
        SHARDSET_RETURN_IF_ERROR(SplitRecords(s, file_part.view(), &positions, &records));
      }
      for (const Block& chunk : slice.chunks) {
        SHARDSET_RETURN_IF_ERROR(SplitRecords(s, chunk.view(), &positions, &records));
      }
    } else {
      offsets.reserve(slice.records + 1);
      SHARDSET_RETURN_IF_ERROR(IndexFile(s, &positions, &offsets));
    }
    std::vector<uint32_t> order;
    plan_.OrderSlice(s, positions, &order);
    InputSample sample;
    std::string one;
    for (uint64_t k = skip; k < order.size(); ++k) {
      const uint32_t r = order[k];
      std::string_view rec;
      if (in_memory) {
        rec = records[r];
      } else {
        one.resize(offsets[r + 1] - offsets[r]);
        SHARDSET_RETURN_IF_ERROR(
            PreadAll(slice.fd, offsets[r], one.data(), one.size(), SlicePath(s)));
        rec = one;
      }
      uint64_t pos = 0, source_bytes = 0;
      if (ParseRecord(rec, &pos, &sample, &source_bytes) == 0) {
        return Status::Corruption(fmt::format(
            "{}: temporary record {} is damaged (was the temporary folder changed during the "
            "shuffle?)",
            SlicePath(s), r));
      }
      ++*out_pos;
      SHARDSET_RETURN_IF_ERROR(sink_->Add(sample, source_bytes, *out_pos));
      if (o_.progress && (*out_pos % 1024 == 0 || *out_pos == src_.num_samples())) {
        o_.progress({"gather", *out_pos, src_.num_samples()});
      }
    }
    ReleaseChunks(&slice);
    if (slice.fd >= 0) {
      ::close(slice.fd);
      slice.fd = -1;
      ::unlink(SlicePath(s).c_str());
      temp_bytes_ -= slice.file_bytes;
    }
    return Status::OK();
  }

  // The records of `data` (whole records back to back).
  Status SplitRecords(uint32_t s, std::string_view data, std::vector<uint64_t>* positions,
                      std::vector<std::string_view>* records) {
    while (!data.empty()) {
      uint64_t pos = 0, source_bytes = 0;
      const uint64_t size = ParseRecord(data, &pos, nullptr, &source_bytes);
      if (size == 0) {
        return Status::Corruption(fmt::format(
            "{}: temporary data is damaged (was the temporary folder changed during the "
            "shuffle?)",
            SlicePath(s)));
      }
      positions->push_back(pos);
      records->push_back(data.substr(0, size));
      data.remove_prefix(size);
    }
    return Status::OK();
  }

  // Record boundaries of slice s's file, from the records' headers only.
  Status IndexFile(uint32_t s, std::vector<uint64_t>* positions, std::vector<uint64_t>* offsets) {
    Slice& slice = slices_[s];
    uint64_t at = 0;
    const uint64_t end = slice.file_bytes;
    std::string head;
    while (at < end) {
      uint64_t pos = 0, size = 0;
      SHARDSET_RETURN_IF_ERROR(RecordSizeAt(slice.fd, at, end, &pos, &size, &head, s));
      if (size == 0) {
        return Status::Corruption(
            fmt::format("{}: temporary file is damaged at byte {}", SlicePath(s), at));
      }
      positions->push_back(pos);
      offsets->push_back(at);
      at += size;
    }
    offsets->push_back(at);
    return Status::OK();
  }

  // The size of the record at `at` in a slice file, from its headers only.
  Status RecordSizeAt(int fd, uint64_t at, uint64_t end, uint64_t* pos, uint64_t* size,
                      std::string* head, uint32_t s) {
    head->resize(16);
    SHARDSET_RETURN_IF_ERROR(PreadAll(fd, at, head->data(), 16, SlicePath(s)));
    *pos = DecodeFixed64(head->data());
    const uint32_t key_size = DecodeFixed32(head->data() + 8);
    const uint32_t nfields = DecodeFixed32(head->data() + 12);
    uint64_t p = at + 16 + key_size;
    for (uint32_t i = 0; i < nfields && p + 13 <= end; ++i) {
      head->resize(13);
      SHARDSET_RETURN_IF_ERROR(PreadAll(fd, p, head->data(), 13, SlicePath(s)));
      p += 13 + DecodeFixed32(head->data()) + DecodeFixed64(head->data() + 5);
    }
    *size = p <= end ? p - at : 0;
    return Status::OK();
  }

  static Status PreadAll(int fd, uint64_t offset, char* dst, uint64_t n, const std::string& path) {
    uint64_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd, dst + done, n - done, offset + done);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        return Status::FromErrno(fmt::format("{}: cannot read temporary file", path),
                                 r < 0 ? errno : EIO);
      }
      done += r;
    }
    return Status::OK();
  }

  const View& src_;
  const ShuffleOptions& o_;
  const OrderPlan& plan_;
  std::string temp_;
  const uint64_t memory_;
  uint64_t budget_ = 0;  // for the chunks: half of memory_
  uint64_t chunk_ = 0;
  Sink* sink_ = nullptr;
  ShuffleResult* result_ = nullptr;
  std::vector<Slice> slices_;
  uint32_t first_slice_ = 0;
  uint64_t temp_bytes_ = 0;
  uint64_t buffered_ = 0;  // capacity of all slices' chunks
};

// "x.tar.gz" -> tar.gz; nullopt for a name without a shard extension.
std::optional<ShardFormat> FileOutputFormat(const std::string& out) {
  for (ShardFormat f : {ShardFormat::kTarGz, ShardFormat::kTar, ShardFormat::kZip,
                        ShardFormat::kTsv, ShardFormat::kNative}) {
    const std::string_view ext = FormatExtension(f);
    if (out.size() > ext.size() && out.compare(out.size() - ext.size(), ext.size(), ext) == 0) {
      return f;
    }
  }
  if (out.size() > 4 && out.compare(out.size() - 4, 4, ".tgz") == 0) return ShardFormat::kTarGz;
  return std::nullopt;
}

Result<ShuffleResult> ShuffleToFile(const View& src, const std::string& out, ShuffleOptions o) {
  ShuffleResult result;
  const std::string temp_dir = o.temp_dir.empty()
                                   ? JoinPath(DirName(out), "." + BaseName(out) + ".shuffle-tmp")
                                   : JoinPath(o.temp_dir, "." + BaseName(out) + ".shuffle-tmp");
  TempDir temp;
  SHARDSET_RETURN_IF_ERROR(temp.Create(temp_dir));
  // A killed earlier run's partial output (hidden; a single file does not
  // resume: it is written again whole).
  SHARDSET_RETURN_IF_ERROR(RemoveStaleTempFilesOf(out).status());
  const bool direct = UseDirect(src, o);
  const uint32_t slices = direct ? DirectSlices(src, o) : FitOpenFiles(PlanSlices(src, o));
  SHARDSET_ASSIGN_OR_RETURN(auto plan, MakePlan(src, o, slices, temp.path()));
  WriteOptions wo;
  wo.sync = o.sync;
  wo.zip_deflate_level = o.zip_deflate_level;
  wo.gzip_level = o.gzip_level;
  wo.overwrite = o.force;
  SHARDSET_ASSIGN_OR_RETURN(auto writer, CreateShardWriter(out, o.format, wo));
  ShardSink sink(writer.get());
  Shuffler shuffler(src, o, *plan, temp.path());
  SHARDSET_RETURN_IF_ERROR(shuffler.Run(0, &sink, &result, direct));
  SHARDSET_ASSIGN_OR_RETURN(ShardInfo info, writer->Close());
  result.samples = info.num_samples;
  result.shards = 1;
  result.bytes_out = info.file_size;
  return result;
}

}  // namespace

Result<std::vector<uint64_t>> ShuffleOrder(uint64_t n, const std::vector<uint32_t>& labels,
                                           const ShuffleOptions& o) {
  std::vector<uint64_t> out;
  out.reserve(n);
  if (!o.interleave_by.empty()) {
    if (labels.size() != n) return Status::InvalidArgument("ShuffleOrder: one label per sample");
    uint32_t max_label = 0;
    for (uint32_t l : labels) max_label = std::max(max_label, l);
    std::vector<uint64_t> counts(n ? max_label + 1 : 0, 0);
    for (uint32_t l : labels) ++counts[l];
    for (uint32_t p : shuffle::InterleavedOrder(n, labels.data(), counts, o.seed)) {
      out.push_back(p);
    }
    return out;
  }
  const uint64_t k = o.bucket_samples ? o.bucket_samples : kShuffleBucketSamples;
  auto plan = shuffle::UniformPlan(n, o.seed, k, 1);
  std::vector<uint64_t> positions(n);
  for (uint64_t i = 0; i < n; ++i) positions[i] = i;
  std::vector<uint32_t> order;
  plan->OrderSlice(0, positions, &order);
  for (uint32_t i : order) out.push_back(i);
  return out;
}

Result<ShuffleResult> Shuffle(const View& src, const std::string& out, const ShuffleOptions& o) {
  SHARDSET_RETURN_IF_ERROR(CheckOptions(src, o));
  if (src.num_samples() == 0) {
    return Status::InvalidArgument(
        fmt::format("{}: has no samples to shuffle; nothing written", src.target()));
  }
  if (auto file_format = FileOutputFormat(out)) {
    if (IsDirectory(out)) {
      return Status::InvalidArgument(
          fmt::format("{}: is a folder but named like a {} file; choose another -o", out,
                      FormatName(*file_format)));
    }
    ShuffleOptions fo = o;
    fo.format = *file_format;
    if (PathExists(out) && !o.force) {
      return Status::AlreadyExists(
          fmt::format("{}: exists; choose another -o, or pass --force to replace it", out));
    }
    return ShuffleToFile(src, out, fo);
  }

  DatasetWriterOptions wo;
  wo.format = o.format;
  wo.shard_size = o.shard_size;
  wo.shard_samples = o.shard_samples;
  wo.write.sync = o.sync;
  wo.write.zip_deflate_level = o.zip_deflate_level;
  wo.write.gzip_level = o.gzip_level;
  wo.recipe_json = RecipeJson(src, o, false).dump();
  wo.force = o.force;
  wo.verb = "shuffle";
  SHARDSET_ASSIGN_OR_RETURN(auto writer, DatasetWriter::Open(out, wo));
  ShuffleResult result;
  auto finish = [&](const Manifest& m) {
    result.samples = m.num_samples;
    result.shards = m.shards.size();
    result.bytes_out = m.total_bytes;
  };
  if (writer->already_complete()) {
    result.already_complete = true;
    finish(writer->manifest());
    return result;
  }
  result.resumed_samples = writer->resumed_samples();
  auto run = [&]() -> Status {
    TempDir temp;
    SHARDSET_RETURN_IF_ERROR(temp.Create(
        o.temp_dir.empty()
            ? JoinPath(out, kTempDirName)
            : JoinPath(o.temp_dir, fmt::format(".shardset-shuffle-{}", Hex64(Xxh3(out))))));
    const bool direct = UseDirect(src, o);
    const uint32_t slices = direct ? DirectSlices(src, o) : FitOpenFiles(PlanSlices(src, o));
    SHARDSET_ASSIGN_OR_RETURN(auto plan, MakePlan(src, o, slices, temp.path()));
    DatasetSink sink(writer.get());
    Shuffler shuffler(src, o, *plan, temp.path());
    SHARDSET_RETURN_IF_ERROR(shuffler.Run(writer->resumed_progress(), &sink, &result, direct));
    temp.Remove();
    SHARDSET_ASSIGN_OR_RETURN(Manifest m, writer->Finish(src.num_samples(), {}));
    finish(m);
    return Status::OK();
  };
  Status s = run();
  if (!s.ok()) {
    writer->Abandon();
    return s;
  }
  return result;
}

ShardFormat SourceShardFormat(const View& v) {
  std::optional<ShardFormat> f;
  for (size_t s = 0; s < v.num_sources(); ++s) {
    for (const ViewShard& sh : v.source(s).shards) {
      if (f && *f != sh.format) return ShardFormat::kNative;
      f = sh.format;
    }
  }
  return f && FormatWritable(*f) ? *f : ShardFormat::kNative;
}

Result<ViewMade> ShuffleView(const View& src, const std::string& out, const ShuffleOptions& o) {
  SHARDSET_RETURN_IF_ERROR(CheckOptions(src, o));
  std::vector<ViewSource> sources;
  for (size_t s = 0; s < src.num_sources(); ++s) {
    ViewSource vs = src.source(s);
    const Dataset& ds = src.dataset(s);
    for (size_t i = 0; i < vs.shards.size(); ++i) {
      SHARDSET_ASSIGN_OR_RETURN(uint64_t h, EdgeHashOf(ds, i));
      if (src.is_view_file() && h != vs.shards[i].edge_hash) {
        return Status::Corruption(fmt::format(
            "{}: source '{}' shard {} changed since that view was made; re-make it first",
            src.target(), EscapeForDisplay(vs.name), ds.shard_path(i)));
      }
      vs.shards[i].edge_hash = h;
    }
    vs.selected = 0;
    sources.push_back(std::move(vs));
  }
  json recipe = json::parse(o.recipe_json, nullptr, false);
  if (!recipe.is_object()) recipe = json::object();
  const json own = RecipeJson(src, o, true);
  for (auto it = own.begin(); it != own.end(); ++it) recipe[it.key()] = it.value();
  SHARDSET_ASSIGN_OR_RETURN(auto writer,
                            ViewWriter::Create(out, std::move(sources), recipe.dump(), o.sync));
  ViewMade made;
  made.path = out;
  made.per_source.assign(src.num_sources(), 0);
  auto add = [&](uint64_t pos) -> Status {
    const ViewEntry e = src.entry(pos);
    ++made.per_source[e.source];
    ++made.samples;
    if (o.progress && (made.samples % 65536 == 0 || made.samples == src.num_samples())) {
      o.progress({"order", made.samples, src.num_samples()});
    }
    return writer->Add(e);
  };
  const uint64_t n = src.num_samples();
  const std::string temp_dir = o.temp_dir.empty() ? DirName(out) : o.temp_dir;
  // Positions of a slice take 8 bytes each plus the order's 4.
  const uint32_t slices = static_cast<uint32_t>(
      std::clamp<uint64_t>((n * 12 + o.memory - 1) / o.memory, 1, UINT32_MAX));
  SHARDSET_ASSIGN_OR_RETURN(auto plan, MakePlan(src, o, slices, temp_dir));
  std::vector<uint64_t> positions;
  std::vector<uint32_t> order;
  for (uint32_t s = 0; s < plan->slices(); ++s) {
    positions.clear();
    for (uint64_t pos = 0; pos < n; ++pos) {
      if (plan->SliceOf(pos) == s) positions.push_back(pos);
    }
    plan->OrderSlice(s, positions, &order);
    for (uint32_t i : order) SHARDSET_RETURN_IF_ERROR(add(positions[i]));
  }
  SHARDSET_RETURN_IF_ERROR(writer->Close());
  return made;
}

}  // namespace shardset
