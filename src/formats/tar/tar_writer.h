// A tar written as a stream of bytes into any sink: the members of samples and
// the end of archive, exactly as docs/formats/tar.md "What shardset writes"
// says. The tar shard writer sinks it into its file; the tar.gz writer into
// deflate (src/formats/targz/targz_writer.cc). Both therefore write the same
// tar bytes for the same samples, and build the same index as a scan would.
#ifndef SHARDSET_FORMATS_TAR_TAR_WRITER_H_
#define SHARDSET_FORMATS_TAR_TAR_WRITER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/hash.h"
#include "formats/member_samples.h"
#include "index/index.h"
#include "shardset/shard.h"

namespace shardset::tar {

class TarStreamWriter {
 public:
  // Receives the tar's bytes in order. After it fails once the stream is
  // half written: the owner must refuse every later Add and the sink must
  // keep failing (ShardFile's errors stick).
  using Sink = std::function<Status(std::string_view bytes)>;

  // `shard` names the shard in messages.
  TarStreamWriter(std::string shard, Sink sink);

  // Appends the members of `sample` ("key.field", in field order) and records
  // it in index(). Refuses (InvalidArgument, nothing appended) samples that
  // would not read back as themselves (tar_shard.h Create). Errors of the
  // sink are returned as they are.
  Status Add(const InputSample& sample);
  // Appends the end of archive: two zero blocks, then zeros to a whole
  // record (kRecordSize).
  Status Finish();

  // Tar bytes appended so far.
  uint64_t offset() const { return offset_; }
  uint64_t num_samples() const { return index_.num_samples(); }
  // Field offsets are offsets in the tar stream.
  index::IndexBuilder& index() { return index_; }
  const index::IndexBuilder& index() const { return index_; }

 private:
  Status Append(std::string_view bytes);
  Status AppendZeros(uint64_t n);
  // Appends a member's headers, data and padding; returns its data offset.
  Result<uint64_t> AppendMember(const std::string& name, std::string_view data);
  Status InvalidSample(std::string_view key, std::string_view what) const;

  std::string shard_;
  Sink sink_;
  uint64_t offset_ = 0;
  index::IndexBuilder index_;
  Xxh3Stream sample_hash_;
  std::vector<index::FieldLoc> locs_;
  MemberSampleChecker checker_;
};

}  // namespace shardset::tar

#endif  // SHARDSET_FORMATS_TAR_TAR_WRITER_H_
