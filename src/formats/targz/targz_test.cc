// Tests of the tar.gz format: the gzip checkpoint layer on its own (random
// offsets, multi-member, damage), then tar.gz shards (sidecar, scan, cursors,
// limits, threads).
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include "base/file.h"
#include "formats/probe.h"
#include "formats/tar/tar_header.h"
#include "formats/targz/gz_index.h"
#include "formats/targz/gz_stream.h"
#include "formats/targz/targz_reader.h"
#include "formats/targz/targz_shard.h"
#include "formats/targz/targz_sidecar.h"
#include "shardset/shard.h"
#include "testing/test_util.h"

namespace shardset::targz {
namespace {

using namespace shardset::test;  // NOLINT: the shared test helpers

namespace fs = std::filesystem;

// ---- Helpers ----

// One gzip member of `data` (zlib's deflate with a gzip wrapper).
std::string GzipMember(std::string_view data, int level = 6) {
  z_stream s{};
  EXPECT_EQ(deflateInit2(&s, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&s, data.size()) + 64, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  s.avail_in = static_cast<uInt>(data.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

// `data` gzipped as members of `member_bytes` each (0: one member), as
// bgzip or `cat a.gz b.gz` make.
std::string Gzip(std::string_view data, size_t member_bytes = 0, int level = 6) {
  if (member_bytes == 0) return GzipMember(data, level);
  std::string out;
  for (size_t at = 0; at < data.size(); at += member_bytes) {
    out += GzipMember(data.substr(at, member_bytes), level);
  }
  return out;
}

// Bytes that deflate cannot shrink, and bytes it shrinks about 4:1.
std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}
std::string TextBytes(std::mt19937_64& rng, size_t n) {
  static const char* kWords[] = {"shard ", "sample ", "field ", "key ", "index ", "tar ",
                                 "gzip ", "window ", "\n", "checkpoint "};
  std::string s;
  while (s.size() < n) s += kWords[rng() % 10];
  s.resize(n);
  return s;
}

// A tar of `samples` in memory (members key.field in order), ended properly.
std::string MakeTar(const std::vector<Plain>& samples) {
  std::string tar;
  for (const Plain& p : samples) {
    for (const auto& [name, data] : p.fields) {
      tar += tar::EncodeMemberHeaders(p.key + "." + name, data.size());
      tar += data;
      tar.append(tar::PaddingAfter(data.size()), '\0');
    }
  }
  tar.append(2 * tar::kBlockSize, '\0');
  tar.append(tar::kRecordSize - tar.size() % tar::kRecordSize, '\0');
  return tar;
}

std::vector<Plain> MakeSamples(std::mt19937_64& rng, size_t n, size_t max_bytes) {
  std::vector<Plain> out;
  for (size_t i = 0; i < n; ++i) {
    const size_t size = rng() % max_bytes;
    out.push_back(Plain{fmt::format("d{}/{:05}", i % 7, i),
                        {{"bin", i % 2 ? RandomBytes(rng, size) : TextBytes(rng, size)},
                         {"cls", std::to_string(i % 10)}}});
  }
  return out;
}

class TarGzTest : public TempDirTest {
 protected:
  // A tar.gz of `samples` at `name`; returns its path.
  std::string WriteTarGz(std::string_view name, const std::vector<Plain>& samples,
                         size_t member_bytes = 0) {
    const std::string path = Path(name);
    WriteBytes(path, Gzip(MakeTar(samples), member_bytes));
    return path;
  }

  std::unique_ptr<ShardReader> MustOpen(const std::string& path, const ReadOptions& o = {}) {
    auto r = Open(path, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }

};

// Reads [offset, offset + n) of the stream through the checkpoint before it.
Result<std::string> ReadAt(const GzFile& file, const CheckpointTable& table, uint64_t offset,
                           size_t n) {
  const Checkpoint& cp = table.Before(offset);
  std::string window;
  SHARDSET_RETURN_IF_ERROR(table.Window(cp, &window));
  GzStream stream(&file, 0);
  SHARDSET_RETURN_IF_ERROR(stream.Seek(cp, window));
  SHARDSET_RETURN_IF_ERROR(stream.Skip(offset - cp.out));
  std::string out(n, '\0');
  SHARDSET_RETURN_IF_ERROR(stream.ReadExactly(out.data(), n));
  return out;
}

// The whole stream from the start, recording checkpoints every `span`.
Result<std::string> Inflate(const GzFile& file, uint64_t span, CheckpointTable* table) {
  GzStream stream(&file, 0);
  SHARDSET_RETURN_IF_ERROR(stream.Rewind());
  if (table) stream.RecordCheckpoints(span, table);
  std::string out;
  for (;;) {
    SHARDSET_ASSIGN_OR_RETURN(std::string_view v, stream.Peek(100000));
    if (v.empty()) break;
    out += v;
    stream.Consume(v.size());
  }
  SHARDSET_RETURN_IF_ERROR(stream.Drain());
  EXPECT_EQ(stream.size(), out.size());
  return out;
}

// ---- The gzip layer ----

TEST_F(TarGzTest, CheckpointRoundTripsAtRandomOffsets) {
  std::mt19937_64 rng(1);
  for (int kind = 0; kind < 3; ++kind) {
    // Incompressible, compressible, and both interleaved.
    std::string data;
    while (data.size() < (3 << 20)) {
      const size_t n = 1000 + rng() % 100000;
      data += kind == 0 || (kind == 2 && rng() % 2) ? RandomBytes(rng, n) : TextBytes(rng, n);
    }
    const std::string path = Path(fmt::format("k{}.gz", kind));
    WriteBytes(path, Gzip(data));
    auto file = GzFile::Open(path);
    ASSERT_TRUE(file.ok());
    for (uint64_t span : {uint64_t{32} << 10, uint64_t{256} << 10, uint64_t{1} << 20}) {
      CheckpointTable table(path);
      auto all = Inflate(**file, span, &table);
      ASSERT_TRUE(all.ok()) << all.status().ToString();
      ASSERT_EQ(*all, data);
      // Points sit at deflate block ends: zlib's blocks of incompressible
      // data hold ~256 KiB, so a smaller span gets fewer points than asked.
      ASSERT_GE(table.size(), 3u) << "span " << span;
      EXPECT_EQ(table.points()[0].out, 0u);
      for (size_t i = 1; i < table.size(); ++i) {
        EXPECT_GE(table.points()[i].out - table.points()[i - 1].out, span);
      }
      for (int i = 0; i < 60; ++i) {
        const uint64_t off = rng() % data.size();
        const size_t n = std::min<size_t>(data.size() - off, 1 + rng() % 70000);
        auto got = ReadAt(**file, table, off, n);
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        ASSERT_EQ(*got, data.substr(off, n)) << "kind " << kind << " offset " << off;
      }
      // The very end, and the bytes right at each checkpoint.
      auto tail = ReadAt(**file, table, data.size() - 1, 1);
      ASSERT_TRUE(tail.ok());
      EXPECT_EQ(*tail, data.substr(data.size() - 1));
      for (const Checkpoint& cp : table.points()) {
        if (cp.out >= data.size()) continue;
        auto got = ReadAt(**file, table, cp.out, 100);
        ASSERT_TRUE(got.ok());
        EXPECT_EQ(*got, data.substr(cp.out, 100));
      }
    }
  }
}

TEST_F(TarGzTest, MultiMemberReadsAsTheConcatenation) {
  std::mt19937_64 rng(2);
  std::string data = TextBytes(rng, 700000) + RandomBytes(rng, 500000) + TextBytes(rng, 300000);
  // bgzip-like members, with an empty member in the middle as `cat` of an
  // empty .gz makes.
  std::string gz = Gzip(data.substr(0, 600000), 65280) + GzipMember("") +
                   Gzip(data.substr(600000), 100000);
  const std::string path = Path("multi.gz");
  WriteBytes(path, gz);
  auto file = GzFile::Open(path);
  ASSERT_TRUE(file.ok());
  CheckpointTable table(path);
  auto all = Inflate(**file, 128 << 10, &table);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(*all, data);
  // Reads that cross member boundaries from checkpoints in earlier members.
  for (int i = 0; i < 100; ++i) {
    const uint64_t off = rng() % data.size();
    const size_t n = std::min<size_t>(data.size() - off, 1 + rng() % 300000);
    auto got = ReadAt(**file, table, off, n);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(*got, data.substr(off, n)) << "offset " << off;
  }
}

TEST_F(TarGzTest, TruncatedGzipIsCorruptionAtEveryCut) {
  std::mt19937_64 rng(3);
  const std::string data = TextBytes(rng, 200000) + RandomBytes(rng, 100000);
  const std::string gz = Gzip(data, 150000);
  std::vector<size_t> cuts = {0, 1, 2, 9, 10, 11, gz.size() - 8, gz.size() - 4, gz.size() - 1};
  for (int i = 0; i < 30; ++i) cuts.push_back(rng() % gz.size());
  for (size_t cut : cuts) {
    const std::string path = Path("cut.gz");
    WriteBytes(path, std::string_view(gz).substr(0, cut));
    auto file = GzFile::Open(path);
    ASSERT_TRUE(file.ok());
    auto all = Inflate(**file, 64 << 10, nullptr);
    ASSERT_FALSE(all.ok()) << "cut at " << cut;
    EXPECT_TRUE(all.status().IsCorruption()) << all.status().ToString();
    EXPECT_NE(all.status().message().find(path), std::string::npos) << all.status().ToString();
  }
}

TEST_F(TarGzTest, FlippedBytesNeverInflateToWrongBytesFromTheStart) {
  std::mt19937_64 rng(4);
  const std::string data = TextBytes(rng, 300000) + RandomBytes(rng, 300000);
  const std::string gz = Gzip(data);
  for (int i = 0; i < 60; ++i) {
    std::string bad = gz;
    const size_t at = rng() % bad.size();
    bad[at] = static_cast<char>(bad[at] ^ (1 + rng() % 255));
    const std::string path = Path("flip.gz");
    WriteBytes(path, bad);
    auto file = GzFile::Open(path);
    ASSERT_TRUE(file.ok());
    auto all = Inflate(**file, 64 << 10, nullptr);
    // A flip in the header's mtime/xfl/os bytes changes nothing that is
    // checked; any other is caught by inflate or the CRC-32 / length.
    if (all.ok()) {
      EXPECT_EQ(*all, data) << "flip at " << at;
      EXPECT_TRUE(at >= 4 && at < 10) << "flip at " << at;
    } else {
      EXPECT_TRUE(all.status().IsCorruption()) << all.status().ToString();
    }
  }
}

TEST_F(TarGzTest, TrailingZerosAreIgnoredAndGarbageIsReported) {
  const std::string data(5000, 'x');
  const std::string path = Path("tail.gz");
  WriteBytes(path, Gzip(data) + std::string(3000, '\0'));
  auto file = GzFile::Open(path);
  ASSERT_TRUE(file.ok());
  GzStream stream(file->get(), 0);
  ASSERT_TRUE(stream.Rewind().ok());
  ASSERT_TRUE(stream.Drain().ok());
  EXPECT_EQ(stream.size(), data.size());
  EXPECT_FALSE(stream.trailing_garbage_at());

  const std::string gz = Gzip(data);
  WriteBytes(path, gz + std::string(10, '\0') + "garbage");
  auto file2 = GzFile::Open(path);
  GzStream stream2(file2->get(), 0);
  ASSERT_TRUE(stream2.Rewind().ok());
  ASSERT_TRUE(stream2.Drain().ok());
  EXPECT_EQ(stream2.size(), data.size());
  EXPECT_EQ(stream2.trailing_garbage_at(), gz.size());

  // A magic number alone is the start of a member that is cut short.
  WriteBytes(path, gz + "\x1f\x8b");
  auto file3 = GzFile::Open(path);
  GzStream stream3(file3->get(), 0);
  ASSERT_TRUE(stream3.Rewind().ok());
  EXPECT_TRUE(stream3.Drain().IsCorruption());
}

// ---- tar.gz shards ----

TEST_F(TarGzTest, LooksOnlyAtGzippedTars) {
  std::mt19937_64 rng(5);
  const std::string tgz = WriteTarGz("a.tar.gz", MakeSamples(rng, 3, 100));
  auto probe = ReadProbe(tgz);
  ASSERT_TRUE(probe.ok());
  EXPECT_TRUE(Looks(*probe));
  const std::string gz = Path("text.gz");
  WriteBytes(gz, Gzip(TextBytes(rng, 5000)));
  EXPECT_FALSE(Looks(*ReadProbe(gz)));
  WriteBytes(gz, MakeTar(MakeSamples(rng, 3, 100)));  // a plain tar
  EXPECT_FALSE(Looks(*ReadProbe(gz)));
  auto detected = DetectFormat(tgz);
  ASSERT_TRUE(detected.ok());
  EXPECT_EQ(*detected, ShardFormat::kTarGz);
}

TEST_F(TarGzTest, SidecarAndScanReadTheSameSamples) {
  std::mt19937_64 rng(6);
  const std::vector<Plain> samples = MakeSamples(rng, 400, 20000);
  const std::string path = WriteTarGz("s.tar.gz", samples);
  auto scanned = MustOpen(path);
  ASSERT_TRUE(scanned);
  auto n = WriteIndex(path, ReadOptions(), /*sync=*/false);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, samples.size());
  ASSERT_TRUE(fs::exists(SidecarPath(path)));
  EXPECT_EQ(SidecarPaths(path), std::vector<std::string>{SidecarPath(path)});
  auto indexed = MustOpen(path);
  ASSERT_TRUE(indexed);
  ASSERT_EQ(indexed->num_samples(), samples.size());
  ASSERT_EQ(scanned->num_samples(), samples.size());
  EXPECT_EQ(indexed->format(), ShardFormat::kTarGz);
  Sample s;
  for (size_t i = 0; i < samples.size(); ++i) {
    ASSERT_TRUE(indexed->Read(i, &s).ok());
    EXPECT_EQ(ToPlain(s), samples[i]);
    ASSERT_TRUE(scanned->Read(i, &s).ok());
    EXPECT_EQ(ToPlain(s), samples[i]);
  }
  // Random order, and Find.
  for (int i = 0; i < 300; ++i) {
    const size_t o = rng() % samples.size();
    ASSERT_TRUE(indexed->Read(o, &s).ok());
    EXPECT_EQ(ToPlain(s), samples[o]);
    auto f = indexed->Find(samples[o].key);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(*f, o);
  }
  VerifyReport report;
  ASSERT_TRUE(indexed->Verify(&report).ok());
  EXPECT_TRUE(report.ok()) << report.problems[0];
  EXPECT_EQ(report.samples_checked, samples.size());
}

TEST_F(TarGzTest, SequentialReadsContinueOneCursor) {
  std::mt19937_64 rng(7);
  const std::vector<Plain> samples = MakeSamples(rng, 600, 30000);
  const std::string path = WriteTarGz("seq.tar.gz", samples);
  ASSERT_TRUE(WriteIndex(path, ReadOptions(), false).ok());
  auto r = MustOpen(path);
  auto* gz = dynamic_cast<TarGzReader*>(r.get());
  ASSERT_NE(gz, nullptr);
  ASSERT_GT(gz->checkpoints().size(), 3u);
  const uint64_t before = gz->compressed_bytes_read();
  Sample s;
  for (size_t i = 0; i < samples.size(); ++i) ASSERT_TRUE(r->Read(i, &s).ok());
  EXPECT_EQ(gz->cursor_seeks(), 1u);
  // Every compressed byte read about once.
  EXPECT_LE(gz->compressed_bytes_read() - before, r->file_size() + (64 << 10));
}

TEST_F(TarGzTest, RandomReadOfTheLastSampleReadsLittle) {
  std::mt19937_64 rng(8);
  const std::vector<Plain> samples = MakeSamples(rng, 1500, 20000);
  const std::string path = WriteTarGz("last.tar.gz", samples);
  ASSERT_TRUE(WriteIndex(path, ReadOptions(), false).ok());
  auto r = MustOpen(path);
  auto* gz = dynamic_cast<TarGzReader*>(r.get());
  const uint64_t before = gz->compressed_bytes_read();
  Sample s;
  ASSERT_TRUE(r->Read(samples.size() - 1, &s).ok());
  EXPECT_EQ(ToPlain(s), samples.back());
  const uint64_t read = gz->compressed_bytes_read() - before;
  EXPECT_LT(read, r->file_size() / 4) << read << " of " << r->file_size();
}

TEST_F(TarGzTest, MultiMemberTarGz) {
  std::mt19937_64 rng(9);
  const std::vector<Plain> samples = MakeSamples(rng, 300, 20000);
  const std::string path = WriteTarGz("bgz.tar.gz", samples, 65280);
  ASSERT_TRUE(WriteIndex(path, ReadOptions(), false).ok());
  auto r = MustOpen(path);
  Sample s;
  for (int i = 0; i < 300; ++i) {
    const size_t o = rng() % samples.size();
    ASSERT_TRUE(r->Read(o, &s).ok());
    EXPECT_EQ(ToPlain(s), samples[o]);
  }
  VerifyReport report;
  ASSERT_TRUE(r->Verify(&report).ok());
  EXPECT_TRUE(report.ok()) << report.problems[0];
}

TEST_F(TarGzTest, ConcurrentReadsAreCorrect) {
  std::mt19937_64 rng(10);
  const std::vector<Plain> samples = MakeSamples(rng, 500, 20000);
  const std::string path = WriteTarGz("mt.tar.gz", samples);
  ASSERT_TRUE(WriteIndex(path, ReadOptions(), false).ok());
  auto r = MustOpen(path);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 trng(100 + t);
      Sample s;
      // Half the threads stream a range, half jump around.
      for (size_t i = 0; i < 400; ++i) {
        const size_t o = t % 2 ? (t * 80 + i) % samples.size() : trng() % samples.size();
        if (!r->Read(o, &s).ok() || !(ToPlain(s) == samples[o])) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_F(TarGzTest, StaleSidecarIsCorruptionNeverOtherBytes) {
  std::mt19937_64 rng(11);
  std::vector<Plain> samples = MakeSamples(rng, 200, 5000);
  const std::string path = WriteTarGz("stale.tar.gz", samples);
  ASSERT_TRUE(WriteIndex(path, ReadOptions(), false).ok());
  samples[0].fields[0].second += "more";
  WriteTarGz("stale.tar.gz", samples);
  auto r = Open(path, ReadOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption());
  EXPECT_NE(r.status().message().find("stale"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("shardset index " + path), std::string::npos);
  // Deleting the sidecar opens by scanning.
  fs::remove(SidecarPath(path));
  auto scanned = MustOpen(path);
  ASSERT_TRUE(scanned);
  Sample s;
  ASSERT_TRUE(scanned->Read(0, &s).ok());
  EXPECT_EQ(ToPlain(s), samples[0]);
}

TEST_F(TarGzTest, DamageInTheMiddleIsCorruptionNeverWrongBytes) {
  std::mt19937_64 rng(12);
  const std::vector<Plain> samples = MakeSamples(rng, 800, 4000);
  const std::string path = WriteTarGz("dmg.tar.gz", samples);
  ASSERT_TRUE(WriteIndex(path, ReadOptions(), false).ok());
  const std::string good = ReadBytes(path);
  ASSERT_GT(good.size(), 3 * kFingerprintEdgeBytes);
  int caught = 0;
  for (int round = 0; round < 12; ++round) {
    // Outside the fingerprinted edges, so the sidecar still opens.
    std::string bad = good;
    const size_t at = kFingerprintEdgeBytes + rng() % (bad.size() - 2 * kFingerprintEdgeBytes);
    bad[at] = static_cast<char>(bad[at] ^ 0x55);
    WriteBytes(path, bad);
    auto r = MustOpen(path);
    ASSERT_TRUE(r);
    Sample s;
    for (size_t i = 0; i < samples.size(); ++i) {
      Status st = r->Read(i, &s);
      if (st.ok()) {
        ASSERT_EQ(ToPlain(s), samples[i]) << "flip at " << at << ", sample " << i;
      } else {
        EXPECT_TRUE(st.IsCorruption()) << st.ToString();
        EXPECT_NE(st.message().find(fmt::format("sample {} ", i)), std::string::npos)
            << st.ToString();
        ++caught;
      }
    }
    VerifyReport report;
    ASSERT_TRUE(r->Verify(&report).ok());
    EXPECT_FALSE(report.ok()) << "flip at " << at;
  }
  EXPECT_GT(caught, 0);
  WriteBytes(path, good);
}

TEST_F(TarGzTest, DamagedSidecarIsCorruption) {
  std::mt19937_64 rng(13);
  const std::vector<Plain> samples = MakeSamples(rng, 600, 20000);
  const std::string path = WriteTarGz("side.tar.gz", samples);
  ASSERT_TRUE(WriteIndex(path, ReadOptions(), false).ok());
  const std::string sidecar = SidecarPath(path);
  const std::string good = ReadBytes(sidecar);
  // The checkpoint table is covered by its hash.
  std::string bad = good;
  bad[kSidecarHeaderSize + kCheckpointEntrySize + 9] ^= 1;
  WriteBytes(sidecar, bad);
  auto r = Open(path, ReadOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  // A window byte: reads that start at that checkpoint fail, others work.
  auto file = GzFile::Open(path);
  WriteBytes(sidecar, good);
  auto loaded = OpenSidecar(**file);
  ASSERT_TRUE(loaded.ok());
  ASSERT_GT(loaded->table.size(), 2u);
  const Checkpoint cp = loaded->table.points()[1];
  bad = good;
  bad[cp.window_offset + cp.window_stored / 2] ^= 0x10;
  WriteBytes(sidecar, bad);
  auto r2 = MustOpen(path);
  Sample s;
  int failed = 0;
  for (size_t i = samples.size(); i-- > 0;) {  // backwards: every read seeks
    Status st = r2->Read(i, &s);
    if (st.ok()) {
      EXPECT_EQ(ToPlain(s), samples[i]);
    } else {
      EXPECT_TRUE(st.IsCorruption()) << st.ToString();
      ++failed;
    }
  }
  EXPECT_GT(failed, 0);
  VerifyReport report;
  ASSERT_TRUE(r2->Verify(&report).ok());
  EXPECT_FALSE(report.ok());
}

TEST_F(TarGzTest, TruncatedTarGzFailsToOpen) {
  std::mt19937_64 rng(14);
  const std::string path = WriteTarGz("t.tar.gz", MakeSamples(rng, 100, 5000));
  const std::string good = ReadBytes(path);
  for (size_t cut : {good.size() - 1, good.size() - 8, good.size() / 2, size_t{600}}) {
    WriteBytes(path, std::string_view(good).substr(0, cut));
    auto r = Open(path, ReadOptions());
    ASSERT_FALSE(r.ok()) << "cut " << cut;
    EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
    EXPECT_FALSE(WriteIndex(path, ReadOptions(), false).ok());
  }
}

TEST_F(TarGzTest, TrailingGarbageOnlyAfterTheEndOfArchive) {
  std::mt19937_64 rng(15);
  const std::vector<Plain> samples = MakeSamples(rng, 50, 3000);
  const std::string tar = MakeTar(samples);
  const std::string path = Path("g.tar.gz");
  // After the end-of-archive blocks: read like bsdtar and Python do, and
  // reported by verify like gzip -t.
  WriteBytes(path, Gzip(tar) + "trailing garbage\n");
  auto r = MustOpen(path);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->num_samples(), samples.size());
  VerifyReport report;
  ASSERT_TRUE(r->Verify(&report).ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("neither a member nor zero padding"), std::string::npos);
  // A tar cut at a member boundary, then garbage (as if the next member's
  // magic number were hit): refused.
  size_t at = 0, members = 0;
  for (const Plain& p : samples) {
    for (const auto& [name, data] : p.fields) {
      if (members++ >= 10) continue;
      at += tar::EncodeMemberHeaders(p.key + "." + name, data.size()).size() + data.size() +
            tar::PaddingAfter(data.size());
    }
  }
  WriteBytes(path, Gzip(std::string_view(tar).substr(0, at)) + "\x1e\x8b\x08 damaged member");
  auto bad = Open(path, ReadOptions());
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsCorruption()) << bad.status().ToString();
}

TEST_F(TarGzTest, BombIsRefusedWithBoundedMemory) {
  // A tar holding one 1 GiB file of zeros: 1 GiB of 1 MiB members of zeros,
  // about 1 MiB compressed (1000:1).
  std::string tar_head = tar::EncodeMemberHeaders("zeros.bin", uint64_t{1} << 30);
  const std::string zeros(1 << 20, '\0');
  const std::string member = GzipMember(zeros, 9);
  std::string gz = GzipMember(tar_head, 9);
  for (int i = 0; i < 1024; ++i) gz += member;
  const std::string path = Path("bomb.tar.gz");
  WriteBytes(path, gz);
  struct rusage before, after;
  ::getrusage(RUSAGE_SELF, &before);
  auto r = Open(path, ReadOptions());
  ::getrusage(RUSAGE_SELF, &after);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted) << r.status().ToString();
  EXPECT_NE(r.status().message().find("--max-ratio"), std::string::npos);
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 * 1024) << "KiB";  // ru_maxrss is in KiB
  auto entries = targz::ForEachEntry(path, ReadOptions(), [](const ArchiveEntry&,
                                                      const EntryDataReader&) {
    return Status::OK();
  });
  EXPECT_EQ(entries.code(), Status::Code::kResourceExhausted) << entries.ToString();
}

TEST_F(TarGzTest, ReadLimits) {
  std::mt19937_64 rng(16);
  const std::vector<Plain> samples = MakeSamples(rng, 100, 20000);
  const std::string path = WriteTarGz("lim.tar.gz", samples);
  ReadOptions few;
  few.max_entries = 150;  // 200 members
  auto r = Open(path, few);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(r.status().message().find("--max-entries"), std::string::npos);

  ReadOptions small;
  small.max_field_bytes = 1000;
  auto r2 = MustOpen(path, small);
  Sample s;
  for (size_t i = 0; i < samples.size(); ++i) {
    Status st = r2->Read(i, &s);
    if (samples[i].fields[0].second.size() > 1000) {
      EXPECT_EQ(st.code(), Status::Code::kResourceExhausted);
      EXPECT_NE(st.message().find("--max-field-bytes"), std::string::npos) << st.ToString();
    } else {
      EXPECT_TRUE(st.ok());
    }
  }
}

TEST_F(TarGzTest, ForEachEntryListsTheConformanceTarGzs) {
  const fs::path dir = fs::path(SHARDSET_SHARED_DIR) / "testdata/archives/tar";
  const std::vector<std::pair<std::string, std::vector<std::string>>> want = {
      {"libarchive-test_compat_gzip_1.tgz", {"f1", "f2", "f3", "d1/f1", "d1/f2", "d1/f3"}},
      {"libarchive-test_compat_gzip_2.tgz", {"f1", "f2", "f3", "d1/f1", "d1/f2", "d1/f3"}},
      {"libarchive-test_extract.tar.gz", {"file1", "file2"}},
  };
  for (const auto& [name, names] : want) {
    const std::string path = (dir / name).string();
    if (!fs::exists(path)) GTEST_SKIP() << path << " missing";
    std::vector<std::string> got;
    Status s = targz::ForEachEntry(path, ReadOptions(), [&](const ArchiveEntry& e,
                                                     const EntryDataReader& data) {
      auto d = data(1 << 20);
      if (!d.ok()) return d.status();
      EXPECT_EQ(d->size(), e.size);
      got.push_back(e.name);
      return Status::OK();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(got, names) << name;
  }
}

}  // namespace
}  // namespace shardset::targz
