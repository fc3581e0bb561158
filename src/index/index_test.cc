#include "index/index.h"

#include <random>

#include <gtest/gtest.h>

#include "base/coding.h"
#include "base/hash.h"

namespace shardset::index {
namespace {

// Builds an index over imaginary data, with gaps between fields (the tar case)
// or without, and checks every entry decodes to what was added.
void RoundTrip(bool contiguous, bool compress, uint32_t block_samples, size_t n) {
  std::mt19937_64 rng(n + block_samples);
  IndexBuilder b(contiguous, compress, block_samples);
  std::vector<Entry> want;
  uint64_t pos = 512;
  for (size_t i = 0; i < n; ++i) {
    Entry e;
    e.key = "key/" + std::to_string(100000 + i * 3);
    size_t nf = rng() % 3;
    for (size_t f = 0; f < nf; ++f) {
      if (!contiguous) pos += 512 * (rng() % 3);
      uint64_t size = rng() % 5000;
      e.fields.push_back(FieldLoc{b.FieldId(f == 0 ? "png" : f == 1 ? "json" : "cls", 0), pos,
                                  size});
      pos += size;
    }
    e.checksum = static_cast<uint32_t>(rng());
    b.Add(e.key, e.fields, e.checksum);
    want.push_back(e);
  }
  const uint64_t index_offset = pos + 100;
  std::string file(index_offset, 'x');
  file += b.Finish(index_offset);
  auto r = IndexReader::Open(file, index_offset, "test");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->num_samples(), n);
  EXPECT_TRUE(r->keys_sorted());
  for (size_t i = 0; i < n; ++i) {
    Entry got;
    ASSERT_TRUE(r->Get(i, &got).ok());
    EXPECT_EQ(got.key, want[i].key);
    EXPECT_EQ(got.checksum, want[i].checksum);
    ASSERT_EQ(got.fields.size(), want[i].fields.size()) << i;
    for (size_t f = 0; f < got.fields.size(); ++f) {
      EXPECT_EQ(got.fields[f].offset, want[i].fields[f].offset);
      EXPECT_EQ(got.fields[f].size, want[i].fields[f].size);
      EXPECT_EQ(got.fields[f].field_id, want[i].fields[f].field_id);
    }
  }
  for (size_t i = 0; i < n; i += 7) {
    auto ord = r->Find(want[i].key);
    ASSERT_TRUE(ord.ok());
    EXPECT_EQ(*ord, i);
  }
}

TEST(Index, RoundTrips) {
  for (bool contiguous : {true, false}) {
    for (bool compress : {true, false}) {
      for (uint32_t bs : {1u, 7u, 64u}) {
        for (size_t n : {0u, 1u, 63u, 64u, 65u, 1000u}) RoundTrip(contiguous, compress, bs, n);
      }
    }
  }
}

TEST(Index, UnsortedKeysGetAKeyTable) {
  IndexBuilder b(true);
  std::mt19937_64 rng(5);
  std::vector<std::string> keys;
  for (int i = 0; i < 5000; ++i) keys.push_back("k" + std::to_string(rng()));
  for (const auto& k : keys) b.Add(k, {}, 0);
  std::string file = b.Finish(0);
  auto r = IndexReader::Open(file, 0, "t");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->keys_sorted());
  EXPECT_TRUE(r->flags() & kKeyTable);
  for (size_t i = 0; i < keys.size(); ++i) {
    auto ord = r->Find(keys[i]);
    ASSERT_TRUE(ord.ok()) << ord.status().ToString();
    EXPECT_EQ(*ord, i);
  }
  EXPECT_TRUE(r->Find("nope").status().IsNotFound());
  EXPECT_TRUE(r->VerifyKeyTable().ok());

  // A damaged key table is caught by its checksum on first use.
  std::string bad = file;
  const uint64_t meta_offset = DecodeFixed64(file.data() + file.size() - kFooterSize + 8);
  bad[meta_offset - 10] ^= 1;  // the key table ends where the field table starts
  auto rb = IndexReader::Open(bad, 0, "t");
  ASSERT_TRUE(rb.ok());
  EXPECT_TRUE(rb->Find(keys[0]).status().IsCorruption());
  EXPECT_TRUE(rb->VerifyKeyTable().IsCorruption());
}

TEST(Index, SortedKeysHaveNoKeyTable) {
  IndexBuilder b(true);
  b.Add("a", {}, 0);
  b.Add("b", {}, 0);
  const std::string file = b.Finish(0);
  auto r = IndexReader::Open(file, 0, "t");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->flags() & kKeyTable);
}

TEST(Index, RejectsOffsetsBeyondData) {
  IndexBuilder b(false);
  b.Add("k", {FieldLoc{b.FieldId("png", 0), 100, 50}}, 0);
  std::string file = b.Finish(0);
  auto r = IndexReader::Open(file, 120, "t");  // data ends before the field does
  ASSERT_TRUE(r.ok());
  Entry e;
  Status s = r->Get(0, &e);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("outside the data"), std::string::npos);
}

TEST(Index, EveryTruncationIsAnError) {
  IndexBuilder b(true);
  for (int i = 0; i < 200; ++i) b.Add("k" + std::to_string(1000 + i), {}, i);
  std::string file = b.Finish(0);
  for (size_t len = 0; len < file.size(); ++len) {
    auto r = IndexReader::Open(std::string_view(file).substr(0, len), 0, "t");
    EXPECT_FALSE(r.ok()) << len;
  }
}


// An index region assembled by hand, as a hostile writer would: raw blocks
// (each followed by its checksum), a field table of `field_names`, the
// directory and a footer whose counts are taken as given. Every checksum is
// right, so only the bounds stand between the reader and the claims.
std::string CraftIndex(const std::vector<std::string>& payloads, size_t field_names,
                       uint64_t num_samples, uint32_t num_blocks, uint32_t block_samples,
                       uint32_t flags) {
  std::string out;
  std::vector<std::pair<uint64_t, uint32_t>> dir;
  for (const std::string& p : payloads) {
    dir.emplace_back(out.size(), static_cast<uint32_t>(p.size()));
    out += p;
    PutFixed32(&out, static_cast<uint32_t>(Xxh3(p)));
  }
  const size_t meta = out.size();
  PutVarint64(&out, field_names);
  for (size_t i = 0; i < field_names; ++i) {
    out.push_back(0);
    const std::string name = "f" + std::to_string(i);
    PutVarint64(&out, name.size());
    out += name;
  }
  for (const auto& [offset, len] : dir) {
    PutFixed64(&out, offset);
    PutFixed32(&out, len);
    out.append(4, '\0');  // codec raw, reserved
  }
  PutFixed64(&out, 0);
  PutFixed64(&out, meta);
  PutFixed64(&out, num_samples);
  PutFixed32(&out, num_blocks);
  PutFixed32(&out, block_samples);
  PutFixed32(&out, flags);
  PutFixed32(&out, kVersion);
  PutFixed64(&out, Xxh3(std::string_view(out).substr(meta)));
  out += kFooterMagic;
  return out;
}

TEST(IndexBounds, SampleCountNearTwoToThe64IsRefused) {
  // (2^64 - 1 + 2 - 1) / 2 wraps to 0 blocks: the count must not pass for a
  // footer with no directory, or Get(ordinal) would read far past it.
  const std::string file = CraftIndex({}, 0, UINT64_MAX, 0, 2, kContiguous | kKeysSorted);
  auto r = IndexReader::Open(file, 0, "hostile.shard");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("hostile.shard"), std::string::npos);
  EXPECT_NE(r.status().message().find("counts are inconsistent"), std::string::npos);
}

TEST(IndexBounds, FrontCodedKeysCannotMultiplyIntoGigabytes) {
  // 65,536 keys that each repeat the previous 64 KiB key cost 4 payload
  // bytes apiece and would decode to 4 GiB.
  const uint32_t n = kMaxBlockSamples;
  std::string p;
  PutVarint64(&p, n);
  PutVarint64(&p, 0);  // base
  PutVarint64(&p, 0);
  PutVarint64(&p, kMaxKeyBytes);
  p.append(kMaxKeyBytes, 'k');
  for (uint32_t i = 1; i < n; ++i) {
    PutVarint64(&p, kMaxKeyBytes);
    PutVarint64(&p, 0);
  }
  for (uint32_t i = 0; i < n; ++i) PutVarint64(&p, 0);  // no fields
  p.append(4 * size_t{n}, '\0');                       // checksums
  ASSERT_LT(p.size(), size_t{1} << 20);
  const std::string file = CraftIndex({p}, 0, n, 1, n, kContiguous);
  auto r = IndexReader::Open(file, 0, "hostile.shard");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Entry e;
  Status s = r->Get(0, &e);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("hostile.shard"), std::string::npos);
  EXPECT_NE(s.message().find("keys of more than"), std::string::npos) << s.ToString();
}

TEST(IndexBounds, FieldEntriesOfABlockAreBounded) {
  // 65,536 samples of 17 empty fields: 2 payload bytes per entry, over the
  // 2^20 entries one block may decode to.
  const uint32_t n = kMaxBlockSamples, per = 17;
  std::string p;
  PutVarint64(&p, n);
  PutVarint64(&p, 0);
  for (uint32_t i = 0; i < n; ++i) {
    PutVarint64(&p, 0);
    PutVarint64(&p, 0);  // empty keys
  }
  for (uint32_t i = 0; i < n; ++i) {
    PutVarint64(&p, per);
    for (uint32_t j = 0; j < per; ++j) {
      PutVarint64(&p, j);
      PutVarint64(&p, 0);
    }
  }
  p.append(4 * size_t{n}, '\0');
  const std::string file = CraftIndex({p}, per, n, 1, n, kContiguous);
  auto r = IndexReader::Open(file, 0, "hostile.shard");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<Entry> block;
  Status s = r->GetBlock(0, &block);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("hostile.shard"), std::string::npos);
  EXPECT_NE(s.message().find("field entries"), std::string::npos) << s.ToString();
}

TEST(IndexBounds, LargestLegalBlockStillDecodes) {
  // The bounds leave room for what shardset writes: 64 samples with 64 KiB
  // keys (4 MiB decoded) and many fields each.
  IndexBuilder b(true);
  std::vector<FieldLoc> fields;
  for (int f = 0; f < 100; ++f) fields.push_back(FieldLoc{b.FieldId("f" + std::to_string(f), 0), 0, 0});
  for (int i = 0; i < 64; ++i) {
    std::string key(kMaxKeyBytes, 'a');
    key.back() = static_cast<char>('A' + i);
    b.Add(key, fields, 0);
  }
  const std::string file = b.Finish(0);
  auto r = IndexReader::Open(file, 0, "t");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<Entry> block;
  ASSERT_TRUE(r->GetBlock(0, &block).ok());
  EXPECT_EQ(block.size(), 64u);
}

}  // namespace
}  // namespace shardset::index
