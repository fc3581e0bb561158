// Views: the bit-packed table, the view file round trip, damage, changed
// sources, moved folders, Find, and a dataset read whole as a view.
#include "shardset/view.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/coding.h"
#include "base/hash.h"
#include "shardset/dataset.h"
#include "shardset/pack.h"
#include "testing/test_util.h"
#include "view/view_table.h"

namespace shardset {
namespace {

namespace fs = std::filesystem;
using test::ReadBytes;
using test::WriteBytes;

// ------------------------------------------------------------ bit packing

TEST(ViewTableTest, BitsFor) {
  EXPECT_EQ(view::BitsFor(0), 0u);
  EXPECT_EQ(view::BitsFor(1), 1u);
  EXPECT_EQ(view::BitsFor(2), 2u);
  EXPECT_EQ(view::BitsFor(3), 2u);
  EXPECT_EQ(view::BitsFor(4), 3u);
  EXPECT_EQ(view::BitsFor(4095), 12u);
  EXPECT_EQ(view::BitsFor(4096), 13u);
  EXPECT_EQ(view::BitsFor(uint64_t{1} << 40), 41u);
  EXPECT_EQ(view::BitsFor(~uint64_t{0}), 64u);
  for (unsigned b = 0; b < 64; ++b) {
    EXPECT_EQ(view::BitsFor(uint64_t{1} << b), b + 1) << b;
    EXPECT_EQ(view::BitsFor((uint64_t{1} << b) | ((uint64_t{1} << b) - 1)), b + 1) << b;
  }
}

TEST(ViewTableTest, PackedRoundTripEveryWidth) {
  std::mt19937_64 rng(42);
  for (unsigned bits = 0; bits <= 64; ++bits) {
    const uint64_t mask = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{64}, size_t{1000}}) {
      std::vector<uint64_t> values(n);
      for (size_t i = 0; i < n; ++i) {
        // Random values, the extremes among them.
        values[i] = i % 5 == 0 ? mask : i % 5 == 1 ? 0 : (rng() & mask);
      }
      // At a random offset into a buffer that already holds bytes, with the
      // 16 readable bytes GetPacked needs past the array.
      std::string buf(rng() % 13, '\xAB');
      const size_t start = buf.size();
      view::PutPacked(values, bits, &buf);
      ASSERT_EQ(buf.size() - start, view::PackedBytes(n, bits));
      EXPECT_EQ((buf.size() - start) % 8, 0u);
      EXPECT_EQ(std::string(start, '\xAB'), buf.substr(0, start)) << "wrote before its start";
      buf.append(16, '\xFF');
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(view::GetPacked(buf.data() + start, i, bits), values[i])
            << "bits " << bits << " n " << n << " i " << i;
      }
    }
  }
}

TEST(ViewTableTest, BlockInfoRoundTrip) {
  view::BlockInfo b;
  b.offset = 0x0123456789ABCDEFull;
  b.base_ordinal = (uint64_t{1} << 40) + 17;
  b.base_source = 0xFFFFFFFEu;
  b.kind = view::kPacked;
  b.src_bits = 32;
  b.ord_bits = 64;
  std::string enc;
  view::EncodeBlockInfo(b, &enc);
  ASSERT_EQ(enc.size(), view::kDirectoryEntrySize);
  const view::BlockInfo d = view::DecodeBlockInfo(enc.data());
  EXPECT_EQ(d.offset, b.offset);
  EXPECT_EQ(d.base_ordinal, b.base_ordinal);
  EXPECT_EQ(d.base_source, b.base_source);
  EXPECT_EQ(d.kind, b.kind);
  EXPECT_EQ(d.src_bits, b.src_bits);
  EXPECT_EQ(d.ord_bits, b.ord_bits);
}

// The entries of a view file's table, decoded from its bytes alone
// (docs/formats/view.md), so tables whose sources cannot exist in a test
// (ordinals near 2^40) are checked too.
std::vector<ViewEntry> DecodeTable(const std::string& d) {
  std::vector<ViewEntry> out;
  EXPECT_GE(d.size(), view::kHeaderSize + view::kFooterSize);
  if (d.size() < view::kHeaderSize + view::kFooterSize) return out;
  const char* f = d.data() + d.size() - view::kFooterSize;
  const uint64_t n = DecodeFixed64(f);
  const uint64_t blocks = DecodeFixed64(f + 8);
  const uint64_t dir = DecodeFixed64(f + 24);
  EXPECT_EQ(blocks, (n + view::kBlockEntries - 1) / view::kBlockEntries);
  for (uint64_t pos = 0; pos < n; ++pos) {
    const view::BlockInfo b = view::DecodeBlockInfo(
        d.data() + dir + (pos >> view::kBlockShift) * view::kDirectoryEntrySize);
    const uint64_t i = pos % view::kBlockEntries;
    if (b.kind == view::kRun) {
      out.push_back(ViewEntry{b.base_source, b.base_ordinal + i});
      continue;
    }
    const uint64_t in_block = std::min(view::kBlockEntries, n - (pos - i));
    const char* p = d.data() + b.offset;
    out.push_back(
        ViewEntry{static_cast<uint32_t>(b.base_source + view::GetPacked(p, i, b.src_bits)),
                  b.base_ordinal +
                      view::GetPacked(p + view::PackedBytes(in_block, b.src_bits), i, b.ord_bits)});
  }
  return out;
}

// ------------------------------------------------------------ fixtures

std::string KeyOf(const std::string& prefix, uint64_t i) {
  return fmt::format("{}{:06}", prefix, i);
}

class ViewTest : public test::TempDirTest {
 protected:
  // A native shard of `n` samples: keys prefix000000.., fields cls (i % 10)
  // and txt.
  std::string MakeShard(const std::string& name, uint64_t n, const std::string& prefix = "k") {
    std::vector<test::Plain> samples;
    for (uint64_t i = 0; i < n; ++i) {
      samples.push_back(test::Plain{
          KeyOf(prefix, i),
          {{"cls", std::to_string(i % 10)}, {"txt", fmt::format("{} sample {}", prefix, i)}}});
    }
    const std::string path = Path(name);
    WritePlain(path, ShardFormat::kNative, samples, WriteOptions{});
    return path;
  }

  // A tree of loose files root/<label>/<i>.txt packed into a dataset folder
  // with `per_shard` samples per shard (labels from folder names).
  std::string PackTree(const std::string& root, const std::string& out, int labels, int per_label,
                       uint64_t per_shard, int salt = 0) {
    for (int l = 0; l < labels; ++l) {
      fs::create_directories(fs::path(root) / fmt::format("c{}", l));
      for (int i = 0; i < per_label; ++i) {
        WriteBytes((fs::path(root) / fmt::format("c{}", l) / fmt::format("{:04}.txt", i)).string(),
                   fmt::format("label {} item {} salt {}\n", l, i, salt));
      }
    }
    fs::remove_all(out);  // a re-pack, not a resume
    PackOptions o;
    o.label_from_dir = true;
    o.sync = false;
    o.shard_samples = per_shard;
    o.force = true;
    auto r = Pack({root}, out, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return out;
  }

  // The ViewSource of dataset `target` as a view records it.
  static ViewSource SourceOf(const std::string& name, const std::vector<std::string>& targets) {
    ViewSource s;
    auto ds = Dataset::Open(targets);
    EXPECT_TRUE(ds.ok()) << ds.status().ToString();
    if (!ds.ok()) return s;
    s.name = name;
    s.targets = targets;
    s.num_samples = (*ds)->num_samples();
    for (size_t i = 0; i < (*ds)->num_shards(); ++i) {
      const ManifestShard& ms = (*ds)->manifest().shards[i];
      auto h = EdgeHash((*ds)->shard_path(i));
      EXPECT_TRUE(h.ok()) << h.status().ToString();
      s.shards.push_back(
          ViewShard{ms.path, ms.format, ms.num_samples, ms.file_size, h.ok() ? *h : 0});
    }
    return s;
  }

  static void WriteView(const std::string& path, std::vector<ViewSource> sources,
                        const std::vector<ViewEntry>& entries,
                        const std::string& recipe = R"({"command":"test"})") {
    auto w = ViewWriter::Create(path, std::move(sources), recipe, /*sync=*/false);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (const ViewEntry& e : entries) ASSERT_TRUE((*w)->Add(e).ok());
    EXPECT_EQ((*w)->num_entries(), entries.size());
    Status s = (*w)->Close();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  static std::unique_ptr<View> MustOpen(const std::string& target) {
    auto v = View::Open(target);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? std::move(*v) : nullptr;
  }

  // Writes `entries` over shards a (10,000 samples) and b (3,000) and checks
  // the file three ways: View::entry, Read's keys, and the raw table.
  void RoundTrip(const std::vector<ViewEntry>& entries) {
    const std::string a = Path("a.shard"), b = Path("b.shard");
    if (!fs::exists(a)) MakeShard("a.shard", 10000, "a");
    if (!fs::exists(b)) MakeShard("b.shard", 3000, "b");
    const std::string path = Path("rt.view");
    WriteView(path, {SourceOf("a", {a}), SourceOf("b", {b})}, entries);
    EXPECT_EQ(DecodeTable(ReadBytes(path)), entries);
    auto v = MustOpen(path);
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(v->is_view_file());
    ASSERT_EQ(v->num_samples(), entries.size());
    ASSERT_EQ(v->num_sources(), 2u);
    uint64_t selected[2] = {0, 0};
    for (const ViewEntry& e : entries) ++selected[e.source];
    EXPECT_EQ(v->source(0).selected, selected[0]);
    EXPECT_EQ(v->source(1).selected, selected[1]);
    EXPECT_EQ(v->source(0).num_samples, 10000u);
    EXPECT_EQ(v->source(1).num_samples, 3000u);
    EXPECT_EQ(v->file_size(), fs::file_size(path));
    Sample s;
    for (uint64_t pos = 0; pos < entries.size(); ++pos) {
      ASSERT_EQ(v->entry(pos), entries[pos]) << "pos " << pos;
      if (pos % 97 == 0 || pos + 1 == entries.size()) {
        ASSERT_TRUE(v->Read(pos, &s).ok());
        EXPECT_EQ(s.ordinal, pos);
        EXPECT_EQ(s.key, KeyOf(entries[pos].source == 0 ? "a" : "b", entries[pos].ordinal));
        auto key = v->Key(pos);
        ASSERT_TRUE(key.ok());
        EXPECT_EQ(*key, s.key);
      }
    }
    EXPECT_TRUE(v->Read(entries.size(), &s).IsNotFound());
    EXPECT_FALSE(v->Key(entries.size()).ok());
  }
};

// ------------------------------------------------------------ round trips

TEST_F(ViewTest, RunBlocksAtBlockBoundaries) {
  for (uint64_t n : {1u, 4095u, 4096u, 4097u, 8192u, 8193u}) {
    SCOPED_TRACE(n);
    std::vector<ViewEntry> entries;
    for (uint64_t i = 0; i < n; ++i) entries.push_back(ViewEntry{0, 1000 + i});
    RoundTrip(entries);
    // Runs cost no payload: header, directory, meta and footer only.
    const std::string d = ReadBytes(Path("rt.view"));
    const char* f = d.data() + d.size() - view::kFooterSize;
    EXPECT_EQ(DecodeFixed64(f + 24), view::kHeaderSize) << "a run block wrote a payload";
  }
}

TEST_F(ViewTest, PackedBlocksAtBlockBoundaries) {
  std::mt19937_64 rng(7);
  for (uint64_t n : {2u, 4095u, 4096u, 4097u, 8193u, 12288u}) {
    SCOPED_TRACE(n);
    std::vector<ViewEntry> entries;
    for (uint64_t i = 0; i < n; ++i) entries.push_back(ViewEntry{0, rng() % 10000});
    RoundTrip(entries);
  }
}

TEST_F(ViewTest, RunThenPackedThenRun) {
  std::vector<ViewEntry> entries;
  for (uint64_t i = 0; i < 4096; ++i) entries.push_back(ViewEntry{0, i});         // run
  for (uint64_t i = 0; i < 4096; ++i) entries.push_back(ViewEntry{0, 9999 - i});  // packed
  for (uint64_t i = 0; i < 4096; ++i) entries.push_back(ViewEntry{1, i % 3000});  // not a run
  for (uint64_t i = 0; i < 100; ++i) entries.push_back(ViewEntry{1, 2000 + i});   // short run
  RoundTrip(entries);
  // Blocks whose values are all equal (0 bits for both arrays).
  std::vector<ViewEntry> same(5000, ViewEntry{1, 2999});
  RoundTrip(same);
}

TEST_F(ViewTest, MixedSourcesInOneBlock) {
  std::mt19937_64 rng(9);
  std::vector<ViewEntry> entries;
  for (uint64_t i = 0; i < 9000; ++i) {
    const uint32_t src = static_cast<uint32_t>(rng() % 2);
    entries.push_back(ViewEntry{src, rng() % (src == 0 ? 10000 : 3000)});
  }
  RoundTrip(entries);
  // Only source 1 in a block: base_source 1, src_bits 0.
  std::vector<ViewEntry> ones;
  for (uint64_t i = 0; i < 5000; ++i) ones.push_back(ViewEntry{1, (i * 7) % 3000});
  RoundTrip(ones);
}

// Ordinals near 2^40 and many sources: no real dataset that big fits in a
// test, so the writer checks against the sources' recorded sizes and the
// table is decoded from the file's bytes.
TEST_F(ViewTest, HugeOrdinalsAndManySourcesInTheTable) {
  const uint64_t big = uint64_t{1} << 40;
  std::vector<ViewSource> sources;
  for (int i = 0; i < 300; ++i) {
    ViewSource s;
    s.name = fmt::format("s{}", i);
    s.targets = {Path(fmt::format("s{}", i))};
    s.num_samples = big + 5000;
    sources.push_back(s);
  }
  std::mt19937_64 rng(11);
  std::vector<ViewEntry> entries;
  for (uint64_t i = 0; i < 4096; ++i) entries.push_back(ViewEntry{7, big - 2048 + i});  // run
  for (uint64_t i = 0; i < 5000; ++i) {
    entries.push_back(
        ViewEntry{static_cast<uint32_t>(rng() % 300), big + 4999 - rng() % (big + 5000)});
  }
  entries.push_back(ViewEntry{299, big + 4999});
  entries.push_back(ViewEntry{0, 0});
  const std::string path = Path("huge.view");
  WriteView(path, sources, entries);
  EXPECT_EQ(DecodeTable(ReadBytes(path)), entries);
}

TEST_F(ViewTest, ByteIdenticalForIdenticalInput) {
  MakeShard("a.shard", 500);
  std::vector<ViewEntry> entries;
  for (uint64_t i = 0; i < 5000; ++i) entries.push_back(ViewEntry{0, (i * 31) % 500});
  WriteView(Path("one.view"), {SourceOf("a", {Path("a.shard")})}, entries);
  WriteView(Path("two.view"), {SourceOf("a", {Path("a.shard")})}, entries);
  EXPECT_EQ(ReadBytes(Path("one.view")), ReadBytes(Path("two.view")));
}

TEST_F(ViewTest, EmptyView) {
  MakeShard("a.shard", 10);
  const std::string path = Path("empty.view");
  WriteView(path, {SourceOf("a", {Path("a.shard")})}, {});
  auto v = MustOpen(path);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->num_samples(), 0u);
  EXPECT_EQ(v->source(0).selected, 0u);
  Sample s;
  EXPECT_TRUE(v->Read(0, &s).IsNotFound());
  EXPECT_TRUE(v->Find(KeyOf("k", 3)).status().IsNotFound());
  VerifyReport report;
  EXPECT_TRUE(v->Verify(&report).ok());
  EXPECT_TRUE(report.problems.empty());
}

TEST_F(ViewTest, WriterRefusesEntriesOutsideItsSources) {
  MakeShard("a.shard", 10);
  auto w = ViewWriter::Create(Path("x.view"), {SourceOf("a", {Path("a.shard")})}, "{}", false);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->Add(ViewEntry{0, 10}).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ((*w)->Add(ViewEntry{1, 0}).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE((*w)->Add(ViewEntry{0, 9}).ok());
  EXPECT_EQ((*w)->num_entries(), 1u);
}

TEST_F(ViewTest, UnclosedWriterLeavesNothing) {
  MakeShard("a.shard", 10);
  {
    auto w = ViewWriter::Create(Path("x.view"), {SourceOf("a", {Path("a.shard")})}, "{}", false);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Add(ViewEntry{0, 1}).ok());
  }
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir_)) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"a.shard"});
}

TEST_F(ViewTest, RecipeAndSourcesKept) {
  MakeShard("a.shard", 10);
  WriteView(Path("r.view"), {SourceOf("alpha", {Path("a.shard")})}, {{0, 3}, {0, 1}},
            R"({"command":"shardset select a.shard","seed":7})");
  auto v = MustOpen(Path("r.view"));
  ASSERT_NE(v, nullptr);
  EXPECT_NE(v->recipe_json().find("\"seed\":7"), std::string::npos) << v->recipe_json();
  EXPECT_EQ(v->source(0).name, "alpha");
  ASSERT_EQ(v->source(0).shards.size(), 1u);
  EXPECT_EQ(v->source(0).shards[0].num_samples, 10u);
  EXPECT_EQ(v->source(0).shards[0].file_size, fs::file_size(Path("a.shard")));
  auto h = EdgeHash(Path("a.shard"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(v->source(0).shards[0].edge_hash, *h);
  // The target is recorded relative to the view's folder, resolved on open.
  EXPECT_EQ(fs::weakly_canonical(v->source(0).targets.at(0)),
            fs::weakly_canonical(Path("a.shard")));
  const std::string bytes = ReadBytes(Path("r.view"));
  // (Shard paths are kept as the dataset names them, for messages only.)
  EXPECT_NE(bytes.find("\"targets\":[\"a.shard\"]"), std::string::npos)
      << bytes.substr(bytes.find("\"sources\""));
}

// ------------------------------------------------------------ damage

TEST_F(ViewTest, EveryFlippedByteIsCorruption) {
  MakeShard("a.shard", 5000);
  // A run block (no payload) and a short packed one: a small file, so that
  // every byte of it is flipped.
  std::vector<ViewEntry> entries;
  for (uint64_t i = 0; i < 4096; ++i) entries.push_back(ViewEntry{0, 300 + i});
  for (uint64_t i = 0; i < 50; ++i) entries.push_back(ViewEntry{0, (i * 37) % 5000});
  const std::string path = Path("v.view");
  WriteView(path, {SourceOf("a", {Path("a.shard")})}, entries);
  const std::string good = ReadBytes(path);
  const std::string bad_path = Path("bad.view");
  for (size_t i = 0; i < good.size(); ++i) {
    std::string d = good;
    d[i] = static_cast<char>(d[i] ^ (i % 2 == 0 ? 0x01 : 0x80));
    WriteBytes(bad_path, d);
    auto v = View::Open(bad_path);
    ASSERT_FALSE(v.ok()) << "byte " << i << " of " << good.size();
    // The version field too: its flip fails the checksum (OtherVersionIsNotSupported).
    EXPECT_TRUE(v.status().IsCorruption()) << "byte " << i << ": " << v.status().ToString();
    EXPECT_NE(v.status().message().find(bad_path), std::string::npos) << v.status().ToString();
  }
}

TEST_F(ViewTest, TruncatedIsCorruption) {
  MakeShard("a.shard", 200);
  std::vector<ViewEntry> entries;
  for (uint64_t i = 0; i < 300; ++i) entries.push_back(ViewEntry{0, (i * 7) % 200});
  const std::string path = Path("v.view");
  WriteView(path, {SourceOf("a", {Path("a.shard")})}, entries);
  const std::string good = ReadBytes(path);
  const std::string bad_path = Path("bad.view");
  for (size_t len = 0; len < good.size(); ++len) {
    WriteBytes(bad_path, good.substr(0, len));
    auto v = View::Open(bad_path);
    ASSERT_FALSE(v.ok()) << len;
    EXPECT_TRUE(v.status().IsCorruption()) << "length " << len << ": " << v.status().ToString();
  }
  // Bytes appended after the footer are damage too.
  WriteBytes(bad_path, good + std::string(8, '\0'));
  EXPECT_TRUE(View::Open(bad_path).status().IsCorruption());
}

TEST_F(ViewTest, OtherVersionIsNotSupported) {
  MakeShard("a.shard", 10);
  const std::string path = Path("v.view");
  WriteView(path, {SourceOf("a", {Path("a.shard")})}, {{0, 1}});
  std::string d = ReadBytes(path);
  std::string version;
  PutFixed32(&version, kViewVersion + 1);
  d.replace(8, 4, version);
  // As bit rot leaves it (the checksum no longer holds): damage, not a
  // reason to upgrade.
  WriteBytes(path, d);
  auto damaged = View::Open(path);
  ASSERT_FALSE(damaged.ok());
  EXPECT_TRUE(damaged.status().IsCorruption()) << damaged.status().ToString();
  // As a newer shardset would write it (its checksum holds).
  std::string sum;
  PutFixed64(&sum, Xxh3(std::string_view(d).substr(0, d.size() - 16)));
  d.replace(d.size() - 16, 8, sum);
  WriteBytes(path, d);
  auto v = View::Open(path);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Status::Code::kNotSupported) << v.status().ToString();
  EXPECT_NE(v.status().message().find("version 2"), std::string::npos) << v.status().ToString();
}

// A table whose checksum is right but whose contents lie (a hostile file
// re-hashes what it changed): Open refuses it or reads fail, never a crash.
TEST_F(ViewTest, ResealedHostileTablesDoNotCrash) {
  MakeShard("a.shard", 200);
  std::vector<ViewEntry> entries;
  for (uint64_t i = 0; i < 4100; ++i) entries.push_back(ViewEntry{0, (i * 13) % 200});
  const std::string path = Path("v.view");
  WriteView(path, {SourceOf("a", {Path("a.shard")})}, entries);
  const std::string good = ReadBytes(path);
  auto reseal = [](std::string d) {
    const size_t f = d.size() - view::kFooterSize;
    std::string sum;
    PutFixed64(&sum, Xxh3(std::string_view(d).substr(0, d.size() - 16)));
    d.replace(f + 48, 8, sum);
    return d;
  };
  auto put64 = [](std::string* d, size_t at, uint64_t v) {
    std::string b;
    PutFixed64(&b, v);
    d->replace(at, 8, b);
  };
  const size_t f = good.size() - view::kFooterSize;
  const uint64_t dir = DecodeFixed64(good.data() + f + 24);
  std::vector<std::string> cases;
  // num_entries so large that the block count wraps around.
  {
    std::string d = good;
    put64(&d, f, ~uint64_t{0});
    put64(&d, f + 8, 0);
    cases.push_back(d);
  }
  {
    std::string d = good;
    put64(&d, f, ~uint64_t{0} - 4000);
    put64(&d, f + 8, 1);
    cases.push_back(d);
  }
  // Directory entries: offsets, widths, kinds and bases.
  for (uint64_t v : {uint64_t{0}, uint64_t{15}, dir, dir - 1, ~uint64_t{0}, good.size() + 0}) {
    std::string d = good;
    put64(&d, dir, v);
    cases.push_back(d);
  }
  for (uint8_t kind : {uint8_t{1}, uint8_t{2}, uint8_t{255}}) {
    for (size_t b : {size_t{0}, size_t{1}}) {
      std::string d = good;
      d[dir + b * view::kDirectoryEntrySize + 20] = static_cast<char>(kind);
      cases.push_back(d);
    }
  }
  for (uint8_t bits : {uint8_t{0}, uint8_t{33}, uint8_t{64}, uint8_t{65}, uint8_t{255}}) {
    std::string d = good;
    d[dir + 21] = static_cast<char>(bits);
    cases.push_back(d);
    d = good;
    d[dir + 22] = static_cast<char>(bits);
    cases.push_back(d);
  }
  {
    std::string d = good;  // base ordinal of a run past its source, and wrapping
    d[dir + view::kDirectoryEntrySize + 20] = view::kRun;
    put64(&d, dir + view::kDirectoryEntrySize + 8, ~uint64_t{0} - 2);
    cases.push_back(d);
    put64(&d, dir + view::kDirectoryEntrySize + 8, 1000000);
    cases.push_back(d);
  }
  {
    std::string d = good;  // base source past the sources
    std::string b;
    PutFixed32(&b, 0xFFFFFFFFu);
    d.replace(dir + 16, 4, b);
    cases.push_back(d);
  }
  const std::string bad_path = Path("bad.view");
  Sample s;
  for (size_t c = 0; c < cases.size(); ++c) {
    SCOPED_TRACE(c);
    WriteBytes(bad_path, reseal(cases[c]));
    auto v = View::Open(bad_path);
    if (!v.ok()) {
      EXPECT_TRUE(v.status().IsCorruption()) << v.status().ToString();
      continue;
    }
    const uint64_t n = std::min<uint64_t>((*v)->num_samples(), 9000);
    for (uint64_t pos = 0; pos < n; ++pos) {
      Status st = (*v)->Read(pos, &s);
      if (st.ok()) {
        EXPECT_LT((*v)->entry(pos).ordinal, 200u);
      }
      (void)(*v)->Key(pos);
    }
    (void)(*v)->Find(KeyOf("k", 5));
    VerifyReport report;
    (void)(*v)->Verify(&report);
  }
}

// A view that claims 2^64 - 1 entries and no blocks: the block count
// (entries + 4095) / 4096 wraps to 0, matching the empty directory.
TEST_F(ViewTest, EntryCountThatWrapsTheBlockCountIsCorruption) {
  MakeShard("a.shard", 10);
  const std::string path = Path("v.view");
  WriteView(path, {SourceOf("a", {Path("a.shard")})}, {});
  const std::string good = ReadBytes(path);
  const size_t f = good.size() - view::kFooterSize;
  const uint64_t meta_offset = DecodeFixed64(good.data() + f + 32);
  std::string meta = good.substr(meta_offset, f - meta_offset);
  const size_t at = meta.find("\"num_samples\":0");
  ASSERT_NE(at, std::string::npos) << meta;
  meta.replace(at, 15, "\"num_samples\":18446744073709551615");
  for (uint64_t claimed : {~uint64_t{0}, ~uint64_t{0} - 4000}) {
    SCOPED_TRACE(claimed);
    std::string m = meta;
    if (claimed != ~uint64_t{0}) {
      m.replace(m.find("18446744073709551615"), 20, std::to_string(claimed));
    }
    std::string d = good.substr(0, meta_offset) + m;
    std::string footer = good.substr(f, view::kFooterSize);
    std::string b;
    PutFixed64(&b, claimed);
    footer.replace(0, 8, b);
    b.clear();
    PutFixed64(&b, m.size());
    footer.replace(40, 8, b);
    b.clear();
    PutFixed64(&b, Xxh3(d + footer.substr(0, 48)));
    footer.replace(48, 8, b);
    WriteBytes(path, d + footer);
    auto v = View::Open(path);
    ASSERT_FALSE(v.ok()) << "opened a view of " << (*v)->num_samples() << " entries and "
                         << (*v)->file_size() << " bytes";
    EXPECT_TRUE(v.status().IsCorruption()) << v.status().ToString();
  }
}

// A meta whose recipe nests 200,000 levels (resealed, so every checksum
// holds) overflowed the stack when the recipe was dumped: refused by its
// depth before it is parsed.
TEST_F(ViewTest, DeeplyNestedMetaIsCorruption) {
  MakeShard("a.shard", 10);
  const std::string path = Path("v.view");
  WriteView(path, {SourceOf("a", {Path("a.shard")})}, {});
  const std::string good = ReadBytes(path);
  const size_t f = good.size() - view::kFooterSize;
  const uint64_t meta_offset = DecodeFixed64(good.data() + f + 32);
  std::string meta = good.substr(meta_offset, f - meta_offset);
  const size_t close = meta.rfind('}');
  ASSERT_NE(close, std::string::npos);
  meta.insert(close, ",\"deep\":" + std::string(200000, '[') + std::string(200000, ']'));
  std::string d = good.substr(0, meta_offset) + meta;
  std::string footer = good.substr(f, view::kFooterSize);
  std::string b;
  PutFixed64(&b, meta.size());
  footer.replace(40, 8, b);
  b.clear();
  PutFixed64(&b, Xxh3(d + footer.substr(0, 48)));
  footer.replace(48, 8, b);
  WriteBytes(path, d + footer);
  auto v = View::Open(path);
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(v.status().IsCorruption()) << v.status().ToString();
  EXPECT_NE(v.status().message().find(path), std::string::npos);
  EXPECT_NE(v.status().message().find("deeper than"), std::string::npos);
}

TEST_F(ViewTest, NotAViewNamedLikeOne) {
  WriteBytes(Path("junk.view"), "hello, this is not a view file at all, not even close.....");
  auto v = View::Open(Path("junk.view"));
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(v.status().IsCorruption()) << v.status().ToString();
  EXPECT_NE(v.status().message().find("not a view file"), std::string::npos)
      << v.status().ToString();
  // A folder named like a view is still a dataset folder.
  PackTree(Path("tree"), Path("ds.view"), 1, 3, 10);
  auto folder = View::Open(Path("ds.view"));
  ASSERT_TRUE(folder.ok()) << folder.status().ToString();
  EXPECT_FALSE((*folder)->is_view_file());
  EXPECT_EQ((*folder)->num_samples(), 3u);
  auto missing = View::Open(Path("missing.view"));
  EXPECT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
}

// ------------------------------------------------------------ changed sources

class ViewChangeTest : public ViewTest {
 protected:
  void SetUp() override {
    ViewTest::SetUp();
    fs::create_directories(Path("proj"));
    ds_ = PackTree(Path("tree"), Path("proj/ds"), 3, 10, 7);  // 30 samples, 5 shards
    auto d = Dataset::Open(ds_);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ASSERT_EQ((*d)->num_samples(), 30u);
    ASSERT_GE((*d)->num_shards(), 3u);
    for (size_t i = 0; i < (*d)->num_shards(); ++i) shards_.push_back((*d)->shard_path(i));
    view_ = Path("proj/all.view");
    std::vector<ViewEntry> entries;
    for (uint64_t i = 0; i < 30; ++i) entries.push_back(ViewEntry{0, 29 - i});
    WriteView(view_, {SourceOf("ds", {ds_})}, entries,
              R"({"command":"shardset select proj/ds -o proj/all.view"})");
  }
  std::string ds_, view_;
  std::vector<std::string> shards_;
};

TEST_F(ViewChangeTest, ReadsWhatTheDatasetHolds) {
  auto v = MustOpen(view_);
  ASSERT_NE(v, nullptr);
  auto d = Dataset::Open(ds_);
  ASSERT_TRUE(d.ok());
  Sample a, b;
  for (uint64_t pos = 0; pos < 30; ++pos) {
    ASSERT_TRUE(v->Read(pos, &a).ok());
    ASSERT_TRUE((*d)->Read(29 - pos, &b).ok());
    EXPECT_EQ(test::ToPlain(a), test::ToPlain(b));
    EXPECT_EQ(a.ordinal, pos);
  }
  VerifyReport report;
  ASSERT_TRUE(v->Verify(&report).ok());
  EXPECT_TRUE(report.problems.empty()) << report.problems[0];
  EXPECT_EQ(report.samples_checked, 30u);
}

TEST_F(ViewChangeTest, DeletedShardIsNotFoundNamingViewAndSource) {
  fs::remove(shards_[1]);
  auto v = MustOpen(view_);  // shard counts and sizes come from the manifest
  ASSERT_NE(v, nullptr);
  auto d = Dataset::Open(ds_);
  ASSERT_TRUE(d.ok());
  const uint64_t first = (*d)->shard_start(1);
  Sample s;
  const Status st = v->Read(29 - first, &s);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_NE(st.message().find(view_), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("source 'ds'"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find(shards_[1]), std::string::npos) << st.ToString();
  // Samples of the other shards still read.
  EXPECT_TRUE(v->Read(29, &s).ok());
  EXPECT_FALSE(v->Key(29 - first).ok());
  VerifyReport report;
  (void)v->Verify(&report);
  EXPECT_FALSE(report.problems.empty());
}

TEST_F(ViewChangeTest, RewrittenShardOfSameSizeIsCorruptionChanged) {
  // Change one byte of a sample's text: same size, same sample count.
  std::string d = ReadBytes(shards_[2]);
  const size_t at = d.find("label ");
  ASSERT_NE(at, std::string::npos);
  d[at] = 'L';
  WriteBytes(shards_[2], d);
  auto v = MustOpen(view_);
  ASSERT_NE(v, nullptr);
  auto ds = Dataset::Open(ds_);
  ASSERT_TRUE(ds.ok());
  const uint64_t first = (*ds)->shard_start(2);
  Sample s;
  for (int attempt = 0; attempt < 2; ++attempt) {  // the check is remembered
    const Status st = v->Read(29 - first, &s);
    ASSERT_FALSE(st.ok());
    EXPECT_TRUE(st.IsCorruption()) << st.ToString();
    EXPECT_NE(st.message().find("changed"), std::string::npos) << st.ToString();
    EXPECT_NE(st.message().find(view_), std::string::npos) << st.ToString();
    EXPECT_NE(st.message().find(shards_[2]), std::string::npos) << st.ToString();
    EXPECT_NE(st.message().find("shardset select proj/ds"), std::string::npos) << st.ToString();
  }
  EXPECT_FALSE(v->Key(29 - first).ok());
  EXPECT_TRUE(v->Read(29, &s).ok()) << "shard 0 did not change";
  VerifyReport report;
  (void)v->Verify(&report);
  EXPECT_FALSE(report.problems.empty());
}

TEST_F(ViewChangeTest, RepackedWithOtherCountFailsAtOpen) {
  // One more file in the tree: the pack has 31 samples.
  WriteBytes(Path("tree/c0/9999.txt"), "one more\n");
  PackTree(Path("tree"), ds_, 3, 10, 7);
  auto v = View::Open(view_);
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(v.status().IsCorruption()) << v.status().ToString();
  EXPECT_NE(v.status().message().find("changed since the view was made"), std::string::npos)
      << v.status().ToString();
  EXPECT_NE(v.status().message().find("source 'ds'"), std::string::npos);
}

TEST_F(ViewChangeTest, RepackedWithSameCountOtherBytesFailsAtRead) {
  // Same files, other contents of one size: every count and size matches.
  PackTree(Path("tree"), ds_, 3, 10, 7, /*salt=*/1);
  auto v = MustOpen(view_);
  ASSERT_NE(v, nullptr);
  Sample s;
  const Status st = v->Read(0, &s);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("changed"), std::string::npos) << st.ToString();
}

TEST_F(ViewChangeTest, DeletedDatasetFailsAtOpen) {
  fs::remove_all(ds_);
  auto v = View::Open(view_);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find(view_), std::string::npos) << v.status().ToString();
  EXPECT_NE(v.status().message().find("source 'ds'"), std::string::npos) << v.status().ToString();
}

TEST_F(ViewChangeTest, MovingTheFolderTogetherStillOpens) {
  // A second view in a subfolder records "../ds".
  fs::create_directories(Path("proj/views"));
  WriteView(Path("proj/views/sub.view"), {SourceOf("ds", {ds_})}, {{0, 4}, {0, 5}});
  fs::rename(Path("proj"), Path("moved"));
  ASSERT_FALSE(fs::exists(ds_));
  for (const std::string& p : {Path("moved/all.view"), Path("moved/views/sub.view")}) {
    SCOPED_TRACE(p);
    auto v = MustOpen(p);
    ASSERT_NE(v, nullptr);
    Sample s;
    ASSERT_TRUE(v->Read(1, &s).ok());
    EXPECT_FALSE(s.key.empty());
  }
  auto v = MustOpen(Path("moved/views/sub.view"));
  ASSERT_NE(v, nullptr);
  auto k = v->Key(0);
  auto d = Dataset::Open(Path("moved/ds"));
  ASSERT_TRUE(d.ok() && k.ok());
  EXPECT_EQ(*k, *(*d)->Key(4));
}

// A dataset reached through a symlink inside the folder is recorded through
// the symlink, so the folder still opens after moving to another depth.
TEST_F(ViewChangeTest, SymlinkedDatasetMovesWithItsFolder) {
  fs::create_directories(Path("proj2"));
  fs::create_directory_symlink(ds_, Path("proj2/data"));
  WriteView(Path("proj2/v.view"), {SourceOf("data", {Path("proj2/data")})}, {{0, 3}, {0, 7}});
  EXPECT_NE(ReadBytes(Path("proj2/v.view")).find("\"targets\":[\"data\"]"), std::string::npos);
  fs::create_directories(Path("deep/er"));
  fs::rename(Path("proj2"), Path("deep/er/proj2"));
  auto v = MustOpen(Path("deep/er/proj2/v.view"));
  ASSERT_NE(v, nullptr);
  Sample s;
  EXPECT_TRUE(v->Read(1, &s).ok());
  // A target whose path only works with its symlinks resolved (a ".." after
  // a symlink) is still recorded so that it opens.
  fs::create_directories(Path("other/inner"));
  fs::create_directory_symlink(Path("other/inner"), Path("proj3"));
  WriteView(Path("proj3/v.view"), {SourceOf("ds", {Path("proj3/../../proj/ds")})}, {{0, 1}});
  auto w = MustOpen(Path("proj3/v.view"));
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->Read(0, &s).ok());
}

TEST_F(ViewChangeTest, ConcurrentFirstReads) {
  auto v = MustOpen(view_);
  ASSERT_NE(v, nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      Sample s;
      for (uint64_t pos = 0; pos < 30; ++pos) {
        if (!v->Read(pos, &s).ok()) ++failures;
        if (!v->Find(s.key).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// ------------------------------------------------------------ Find and datasets

TEST_F(ViewTest, FindOnAView) {
  MakeShard("a.shard", 10000, "a");
  MakeShard("b.shard", 3000, "b");
  // Source b holds keys "b..."; source c is b again under another name, so
  // its keys are in the view twice.
  std::vector<ViewEntry> entries;
  for (uint64_t i = 0; i < 5000; ++i) entries.push_back(ViewEntry{0, (i * 7919) % 10000});
  for (uint64_t i = 0; i < 4096; ++i) entries.push_back(ViewEntry{0, 2000 + i});  // a run
  entries.push_back(ViewEntry{2, 17});
  entries.push_back(ViewEntry{1, 17});
  for (uint64_t i = 0; i < 100; ++i) entries.push_back(ViewEntry{1, 2999 - i});
  const std::string path = Path("f.view");
  WriteView(path,
            {SourceOf("a", {Path("a.shard")}), SourceOf("b", {Path("b.shard")}),
             SourceOf("c", {Path("b.shard")})},
            entries);
  auto v = MustOpen(path);
  ASSERT_NE(v, nullptr);
  // The first position of every distinct entry.
  std::map<std::pair<uint32_t, uint64_t>, uint64_t> first;
  for (uint64_t pos = 0; pos < entries.size(); ++pos) {
    first.emplace(std::make_pair(entries[pos].source, entries[pos].ordinal), pos);
  }
  for (uint64_t pos = 0; pos < entries.size(); pos += 37) {
    auto key = v->Key(pos);
    ASSERT_TRUE(key.ok());
    auto found = v->Find(*key);
    ASSERT_TRUE(found.ok()) << *key << ": " << found.status().ToString();
    if (entries[pos].source == 0) {
      EXPECT_EQ(*found, first.at({0, entries[pos].ordinal})) << *key;
    }
  }
  // A run entry.
  auto in_run = v->Find(KeyOf("a", 2000 + 4000));
  ASSERT_TRUE(in_run.ok());
  EXPECT_EQ(v->entry(*in_run), (ViewEntry{0, 6000}));
  // "b000017" is in the view through c (pos 9096) before b (9097).
  auto twice = v->Find(KeyOf("b", 17));
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(*twice, 9096u);
  auto last = v->Find(KeyOf("b", 2900));
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(v->entry(*last), (ViewEntry{1, 2900}));
  // Keys a source holds but the view does not, and keys nobody holds.
  EXPECT_TRUE(v->Find(KeyOf("b", 18)).status().IsNotFound());
  EXPECT_TRUE(v->Find("nope").status().IsNotFound());
  EXPECT_TRUE(v->Find("").status().IsNotFound());
  const Status st = v->Find("nope").status();
  EXPECT_NE(st.message().find(path), std::string::npos) << st.ToString();
  // Every key of a entries at a few positions, exhaustively for a block.
  for (uint64_t pos = 0; pos < 4096; ++pos) {
    const ViewEntry e = entries[pos];
    if (e.source != 0) continue;
    auto f = v->Find(KeyOf("a", e.ordinal));
    ASSERT_TRUE(f.ok());
    ASSERT_EQ(*f, first.at({0, e.ordinal}));
  }
}

TEST_F(ViewTest, DatasetFolderReadWholeIsItsIdentityView) {
  const std::string ds = PackTree(Path("tree"), Path("ds"), 4, 9, 5);
  auto v = MustOpen(ds);
  ASSERT_NE(v, nullptr);
  auto d = Dataset::Open(ds);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(v->is_view_file());
  EXPECT_EQ(v->file_size(), 0u);
  EXPECT_EQ(v->recipe_json(), "{}");
  ASSERT_EQ(v->num_samples(), (*d)->num_samples());
  ASSERT_EQ(v->num_sources(), 1u);
  EXPECT_EQ(v->source(0).name, "ds");
  EXPECT_EQ(v->source(0).selected, 36u);
  EXPECT_EQ(v->source(0).shards.size(), (*d)->num_shards());
  Sample a, b;
  for (uint64_t i = 0; i < v->num_samples(); ++i) {
    EXPECT_EQ(v->entry(i), (ViewEntry{0, i}));
    ASSERT_TRUE(v->Read(i, &a).ok());
    ASSERT_TRUE((*d)->Read(i, &b).ok());
    EXPECT_EQ(test::ToPlain(a), test::ToPlain(b));
    EXPECT_EQ(a.ordinal, i);
    EXPECT_EQ(*v->Key(i), b.key);
    auto f = v->Find(b.key);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(*f, i);
  }
  EXPECT_TRUE(v->Find("c0/nope").status().IsNotFound());
  EXPECT_TRUE(v->Read(36, &a).IsNotFound());
  VerifyReport report;
  ASSERT_TRUE(v->Verify(&report).ok());
  EXPECT_TRUE(report.problems.empty());
}

TEST_F(ViewTest, ShardFilesReadWholeAsOneDataset) {
  MakeShard("a.shard", 5, "a");
  MakeShard("b.shard", 7, "b");
  auto v = View::Open(std::vector<std::string>{Path("a.shard"), Path("b.shard")});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)->num_samples(), 12u);
  EXPECT_EQ(*(*v)->Key(5), KeyOf("b", 0));
  EXPECT_EQ((*v)->source(0).name, "a");
  // A view of shard files records them and reads them again.
  WriteView(Path("ab.view"), {SourceOf("ab", {Path("a.shard"), Path("b.shard")})},
            {{0, 11}, {0, 0}});
  auto w = MustOpen(Path("ab.view"));
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(*w->Key(0), KeyOf("b", 6));
  EXPECT_EQ(*w->Key(1), KeyOf("a", 0));
}

TEST(ViewNamesTest, DefaultSourceName) {
  EXPECT_EQ(DefaultSourceName("data/camvid/"), "camvid");
  EXPECT_EQ(DefaultSourceName("data/camvid"), "camvid");
  EXPECT_EQ(DefaultSourceName("x/train.view"), "train");
  EXPECT_EQ(DefaultSourceName("a.tar.gz"), "a");
  EXPECT_EQ(DefaultSourceName("shard-000.shard"), "shard-000");
  EXPECT_EQ(DefaultSourceName("/"), "dataset");
  EXPECT_EQ(DefaultSourceName("."), "dataset");
  EXPECT_EQ(DefaultSourceName(".view"), ".view");
}

TEST(ViewLabelTest, SampleLabel) {
  Sample s;
  s.ordinal = 4;
  s.key = "x/1";
  s.fields.push_back(Field{"cls", "7 \r\n", 0});
  auto l = SampleLabel(s, "cls");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, "7");
  auto missing = SampleLabel(s, "label");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound());
  EXPECT_NE(missing.status().message().find("x/1"), std::string::npos);
}

}  // namespace
}  // namespace shardset
