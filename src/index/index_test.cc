#include "index/index.h"

#include <random>

#include <gtest/gtest.h>

#include "base/coding.h"

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

}  // namespace
}  // namespace shardset::index
