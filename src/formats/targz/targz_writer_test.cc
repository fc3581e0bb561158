// Tests of the tar.gz writer: the tar inside is the tar writer's, the sidecar
// it writes is the one a scan would write, readers use it without a pass,
// and a crash or an error leaves nothing.
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include "base/file.h"
#include "base/hash.h"
#include "formats/tar/tar_header.h"
#include "formats/tar/tar_shard.h"
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

// The uncompressed bytes of a gzip file (zlib, gzip mode: CRC-32 checked).
std::string Gunzip(std::string_view gz) {
  z_stream s{};
  EXPECT_EQ(inflateInit2(&s, 31), Z_OK);
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  s.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char buf[1 << 16];
  int ret;
  do {
    s.next_out = reinterpret_cast<Bytef*>(buf);
    s.avail_out = sizeof(buf);
    ret = inflate(&s, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - s.avail_out);
  } while (ret == Z_OK);
  EXPECT_EQ(ret, Z_STREAM_END);
  EXPECT_EQ(s.avail_in, 0u) << "bytes after the gzip member";
  inflateEnd(&s);
  return out;
}

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

// Samples whose names take every way the tar writer stores a name (ustar
// name, prefix split, pax path, UTF-8), empty fields and binary data.
std::vector<Plain> TrickySamples() {
  std::string png(3000, '\0');
  for (size_t i = 0; i < png.size(); ++i) png[i] = static_cast<char>(i * 7);
  return {
      {"s/0001", {{"png", png}, {"cls", "3"}, {"json", ""}}},
      {"d/" + std::string(94, 'a'), {{"txt", "exactly 100 bytes"}}},
      {std::string(74, 'b') + "/" + std::string(71, 'c'), {{"bin", "150, split"}}},
      {std::string(146, 'n'), {{"bin", "150, no slash: pax"}}},
      {std::string(99, 'p') + "/" + std::string(99, 'q') + "/" + std::string(96, 'r'),
       {{"bin", "300: pax"}}},
      {"donn\xc3\xa9" "es/\xc3\xa9t\xc3\xa9_\xf0\x9f\x98\x80", {{"txt", "utf-8"}}},
      {"with space/a b c", {{"txt", "spaces"}}},
      {"README", {{"", "no field"}}},
      {"arch", {{"tar.gz", "dotted field"}, {"", "and an empty one"}}},
      {"zero", {{"bin", ""}}},
  };
}

// Many samples: incompressible and text fields, some empty, some larger
// than a span.
std::vector<Plain> ManySamples(std::mt19937_64& rng, size_t n, size_t max_bytes) {
  std::vector<Plain> out;
  for (size_t i = 0; i < n; ++i) {
    const size_t size = i % 50 == 7 ? 0 : rng() % max_bytes;
    out.push_back(Plain{fmt::format("d{}/{:05}", i % 7, i),
                        {{"bin", i % 2 ? RandomBytes(rng, size) : TextBytes(rng, size)},
                         {"cls", std::to_string(i % 10)}}});
  }
  return out;
}

class TarGzWriteTest : public TempDirTest {
 protected:
  ShardInfo Write(const std::string& path, const std::vector<Plain>& samples, int level = 6,
                  bool sidecar = true) {
    WriteOptions o;
    o.gzip_level = level;
    o.sidecar_index = sidecar;
    return WritePlain(path, ShardFormat::kTarGz, samples, o);
  }

  // The tar the tar writer writes for `samples`.
  std::string TarOf(const std::vector<Plain>& samples) {
    const std::string path = Path("reference.tar");
    WriteOptions o;
    o.sidecar_index = false;
    WritePlain(path, ShardFormat::kTar, samples, o);
    std::string bytes = ReadBytes(path);
    fs::remove(path);
    return bytes;
  }

  // What `shardset index` (a scan) writes for `path`, the writer's sidecar
  // put back afterwards.
  std::string ScannedSidecar(const std::string& path) {
    const std::string sidecar = SidecarPath(path);
    const std::string written = ReadBytes(sidecar);
    auto n = WriteIndex(path, ReadOptions(), /*sync=*/false);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    std::string scanned = ReadBytes(sidecar);
    WriteBytes(sidecar, written);
    return scanned;
  }
};

// ---- The bytes ----

TEST_F(TarGzWriteTest, RoundTripIsTheTarWritersTar) {
  std::mt19937_64 rng(1);
  std::vector<Plain> samples = TrickySamples();
  for (Plain& p : ManySamples(rng, 1500, 12000)) samples.push_back(std::move(p));
  const std::string path = Path("rt.tar.gz");
  const ShardInfo info = Write(path, samples);
  const std::string bytes = ReadBytes(path);
  EXPECT_EQ(info.path, path);
  EXPECT_EQ(info.format, ShardFormat::kTarGz);
  EXPECT_EQ(info.num_samples, samples.size());
  EXPECT_EQ(info.file_size, bytes.size());
  EXPECT_EQ(info.xxh3, Xxh3(bytes));
  EXPECT_EQ(info.first_key, samples.front().key);
  EXPECT_EQ(info.last_key, samples.back().key);
  // One gzip member whose tar is byte for byte the tar writer's.
  const std::string tar = Gunzip(bytes);
  EXPECT_TRUE(tar == TarOf(samples)) << tar.size();
  ASSERT_TRUE(fs::exists(SidecarPath(path)));
  EXPECT_EQ(*DetectFormat(path), ShardFormat::kTarGz);

  for (bool sidecar : {true, false}) {
    SCOPED_TRACE(sidecar ? "sidecar" : "scan");
    if (!sidecar) fs::remove(SidecarPath(path));
    auto r = OpenShard(path);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ((*r)->format(), ShardFormat::kTarGz);
    EXPECT_EQ((*r)->file_size(), bytes.size());
    EXPECT_EQ(ReadAll(**r), samples);
    Sample s;
    for (int i = 0; i < 200; ++i) {
      const uint64_t o = rng() % samples.size();
      ASSERT_TRUE((*r)->Read(o, &s).ok());
      EXPECT_EQ(ToPlain(s), samples[o]);
      auto found = (*r)->Find(samples[o].key);
      ASSERT_TRUE(found.ok()) << found.status().ToString();
      EXPECT_EQ(*found, o);
    }
    VerifyReport report;
    ASSERT_TRUE((*r)->Verify(&report).ok());
    EXPECT_TRUE(report.ok()) << report.problems.front();
    EXPECT_EQ(report.samples_checked, samples.size());
  }
}

TEST_F(TarGzWriteTest, DeterministicAndLevelsChangeOnlyTheCompression) {
  std::mt19937_64 rng(2);
  const std::vector<Plain> samples = ManySamples(rng, 200, 20000);
  Write(Path("a.tar.gz"), samples);
  Write(Path("b.tar.gz"), samples, 6, /*sidecar=*/false);
  // The sidecar option does not change the file.
  EXPECT_EQ(ReadBytes(Path("a.tar.gz")), ReadBytes(Path("b.tar.gz")));
  const std::string tar = TarOf(samples);
  uint64_t size1 = 0, size9 = 0;
  for (int level : {1, 9}) {
    const std::string path = Path(fmt::format("l{}.tar.gz", level));
    const ShardInfo info = Write(path, samples, level);
    EXPECT_TRUE(Gunzip(ReadBytes(path)) == tar) << level;
    (level == 1 ? size1 : size9) = info.file_size;
    auto r = OpenShard(path);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(ReadAll(**r), samples);
  }
  EXPECT_LT(size9, size1);
  for (int bad : {0, 10, -1}) {
    WriteOptions o;
    o.gzip_level = bad;
    auto w = CreateShardWriter(Path("bad.tar.gz"), ShardFormat::kTarGz, o);
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(w.status().message().find("gzip level"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(Path("bad.tar.gz")));
}

TEST_F(TarGzWriteTest, EmptyShard) {
  const std::string path = Path("empty.tar.gz");
  const ShardInfo info = Write(path, {});
  EXPECT_EQ(info.num_samples, 0u);
  EXPECT_EQ(Gunzip(ReadBytes(path)), std::string(tar::kRecordSize, '\0'));
  EXPECT_EQ(ScannedSidecar(path), ReadBytes(SidecarPath(path)));
  auto r = OpenShard(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->format(), ShardFormat::kTarGz);
  EXPECT_EQ((*r)->num_samples(), 0u);
}

TEST_F(TarGzWriteTest, RefusesWhatTheTarWriterRefuses) {
  WriteOptions o;
  o.sync = false;
  auto w = Create(Path("bad.tar.gz"), o);
  ASSERT_TRUE(w.ok());
  for (const Plain& p : std::vector<Plain>{{"k", {}},
                                           {"k", {{"png", "a"}, {"png", "b"}}},
                                           {"a.b", {{"png", "x"}}},
                                           {"../up", {{"png", "x"}}},
                                           {std::string("n\0l", 3), {{"png", "x"}}}}) {
    Status s = (*w)->Add(ToInput(p));
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find(Path("bad.tar.gz")), std::string::npos) << s.ToString();
  }
  ASSERT_TRUE((*w)->Add(ToInput({"ok", {{"txt", "x"}}})).ok());
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ((*w)->Add(ToInput({"late", {{"txt", "x"}}})).code(),
            Status::Code::kInvalidArgument);
  auto r = OpenShard(Path("bad.tar.gz"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadAll(**r), (std::vector<Plain>{{"ok", {{"txt", "x"}}}}));
}

// ---- The sidecar ----

// The writer's checkpoints are where a scan puts them: `shardset index` on the
// written file writes the same sidecar, byte for byte, and Verify (which
// compares the sidecar's checkpoints with a scan's) is clean.
TEST_F(TarGzWriteTest, SidecarIsTheScansByteForByte) {
  std::mt19937_64 rng(3);
  struct Case {
    std::string name;
    std::vector<Plain> samples;
    int level;
  };
  std::vector<Case> cases;
  cases.push_back({"mixed", ManySamples(rng, 600, 20000), 6});
  cases.push_back({"mixed-level1", ManySamples(rng, 300, 20000), 1});
  cases.push_back({"mixed-level9", ManySamples(rng, 300, 20000), 9});
  cases.push_back({"random", {{"r", {{"bin", RandomBytes(rng, 3 << 20)}}}}, 6});
  cases.push_back({"text", {{"t", {{"txt", TextBytes(rng, 5 << 20)}}}}, 6});
  cases.push_back({"zeros", {{"z", {{"bin", std::string(3 << 20, '\0')}}}}, 6});
  // A tar of exactly 5 MiB (512 records): a span ends at its last byte, so
  // the last checkpoint is at tar_size, before the empty final block.
  const size_t fill = (size_t{5} << 20) - 3 * tar::kBlockSize - 512;
  cases.push_back({"span-multiple", {{"f", {{"txt", TextBytes(rng, fill)}}}}, 6});
  int unaligned = 0;  // checkpoints whose block ends inside a byte
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = Path(c.name + ".tar.gz");
    Write(path, c.samples, c.level);
    const std::string tar = Gunzip(ReadBytes(path));
    if (c.name == "span-multiple") {
      ASSERT_EQ(tar.size(), size_t{5} << 20);
    }
    const std::string written = ReadBytes(SidecarPath(path));
    EXPECT_TRUE(ScannedSidecar(path) == written);
    auto r = Open(path, ReadOptions());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto* gz = dynamic_cast<TarGzReader*>(r->get());
    ASSERT_NE(gz, nullptr);
    EXPECT_EQ(gz->tar_size(), tar.size());
    EXPECT_EQ(gz->checkpoints().size(), 1 + tar.size() / kDefaultSpan);
    for (size_t i = 0; i < gz->checkpoints().size(); ++i) {
      EXPECT_EQ(gz->checkpoints().points()[i].out, i * kDefaultSpan);
      unaligned += gz->checkpoints().points()[i].bits > 0;
    }
    VerifyReport report;
    ASSERT_TRUE((*r)->Verify(&report).ok());
    EXPECT_TRUE(report.ok()) << report.problems.front();
    EXPECT_EQ(ReadAll(**r), c.samples);
  }
  EXPECT_GT(unaligned, 0);
}

// A reader opening a freshly written file takes the sidecar: it reads only
// the fingerprint's 128 KiB of the file, where a scan would inflate it all.
TEST_F(TarGzWriteTest, ReaderUsesTheSidecarWithoutAPass) {
  std::mt19937_64 rng(4);
  const std::vector<Plain> samples = ManySamples(rng, 1200, 20000);
  const std::string path = Path("fresh.tar.gz");
  Write(path, samples);
  const auto sidecar_mtime = fs::last_write_time(SidecarPath(path));
  auto r = Open(path, ReadOptions());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto* gz = dynamic_cast<TarGzReader*>(r->get());
  ASSERT_NE(gz, nullptr);
  ASSERT_GT((*r)->file_size(), 4 * kFingerprintEdgeBytes);
  EXPECT_LE(gz->compressed_bytes_read(), 2 * kFingerprintEdgeBytes);
  EXPECT_EQ(fs::last_write_time(SidecarPath(path)), sidecar_mtime);
  // A random read of the last sample starts at a checkpoint near it.
  const uint64_t before = gz->compressed_bytes_read();
  Sample s;
  ASSERT_TRUE((*r)->Read(samples.size() - 1, &s).ok());
  EXPECT_EQ(ToPlain(s), samples.back());
  EXPECT_LT(gz->compressed_bytes_read() - before, (*r)->file_size() / 4);
  // The same file without its sidecar is scanned: every byte read.
  fs::remove(SidecarPath(path));
  auto scanned = Open(path, ReadOptions());
  ASSERT_TRUE(scanned.ok());
  EXPECT_GE(dynamic_cast<TarGzReader*>(scanned->get())->compressed_bytes_read(),
            (*scanned)->file_size());
}

TEST_F(TarGzWriteTest, BytesWrittenTracksTheCompressedSize) {
  std::mt19937_64 rng(5);
  const std::vector<Plain> samples = ManySamples(rng, 400, 20000);
  WriteOptions o;
  o.sync = false;
  auto w = Create(Path("bw.tar.gz"), o);
  ASSERT_TRUE(w.ok());
  uint64_t last = 0;
  for (const Plain& p : samples) {
    ASSERT_TRUE((*w)->Add(ToInput(p)).ok());
    EXPECT_GE((*w)->bytes_written(), last);
    last = (*w)->bytes_written();
  }
  auto info = (*w)->Close();
  ASSERT_TRUE(info.ok());
  EXPECT_LE(last, info->file_size);
  // Behind by at most what deflate holds: one block.
  EXPECT_GE(last + (256 << 10), info->file_size);
}

// ---- Crashes and errors ----

TEST_F(TarGzWriteTest, UnclosedWriterLeavesNothing) {
  std::mt19937_64 rng(6);
  {
    WriteOptions o;
    auto w = Create(Path("gone.tar.gz"), o);
    ASSERT_TRUE(w.ok());
    for (const Plain& p : ManySamples(rng, 300, 20000)) ASSERT_TRUE((*w)->Add(ToInput(p)).ok());
    EXPECT_GT((*w)->bytes_written(), 0u);
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(TarGzWriteTest, WriteErrorLeavesNoShard) {
  // Writes past 64 KiB fail with EFBIG (SIGXFSZ ignored): a disk-full stand-in.
  std::mt19937_64 rng(7);
  const std::string path = Path("full.tar.gz");
  WriteOptions o;
  o.sync = false;
  auto w = Create(path, o);
  ASSERT_TRUE(w.ok());
  struct rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Status added = (*w)->Add(ToInput({"big", {{"bin", RandomBytes(rng, 3 << 20)}}}));
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(added.code(), Status::Code::kIOError) << added.ToString();
  EXPECT_EQ((*w)->Add(ToInput({"small", {{"txt", "x"}}})).code(), Status::Code::kIOError);
  EXPECT_FALSE((*w)->Close().ok());
  w->reset();
  EXPECT_TRUE(fs::is_empty(dir_));
}

// Damage to a written file or its sidecar is Corruption, never other bytes.
TEST_F(TarGzWriteTest, CorruptionIsFoundInTheWrittenFile) {
  std::mt19937_64 rng(8);
  const std::vector<Plain> samples = ManySamples(rng, 800, 8000);
  const std::string path = Path("dmg.tar.gz");
  Write(path, samples);
  const std::string good = ReadBytes(path);
  ASSERT_GT(good.size(), 3 * kFingerprintEdgeBytes);
  int caught = 0;
  for (int round = 0; round < 6; ++round) {
    std::string bad = good;
    const size_t at = kFingerprintEdgeBytes + rng() % (bad.size() - 2 * kFingerprintEdgeBytes);
    bad[at] = static_cast<char>(bad[at] ^ 0x55);
    WriteBytes(path, bad);
    auto r = Open(path, ReadOptions());
    ASSERT_TRUE(r.ok()) << r.status().ToString();  // the edges still match the sidecar
    Sample s;
    for (size_t i = 0; i < samples.size(); ++i) {
      Status st = (*r)->Read(i, &s);
      if (st.ok()) {
        ASSERT_EQ(ToPlain(s), samples[i]) << "flip at " << at << ", sample " << i;
      } else {
        EXPECT_TRUE(st.IsCorruption()) << st.ToString();
        ++caught;
      }
    }
    VerifyReport report;
    ASSERT_TRUE((*r)->Verify(&report).ok());
    EXPECT_FALSE(report.ok()) << "flip at " << at;
  }
  EXPECT_GT(caught, 0);
  // A changed edge makes the sidecar stale; a damaged table is Corruption.
  std::string bad = good;
  bad[good.size() - 20] ^= 1;
  WriteBytes(path, bad);
  auto stale = Open(path, ReadOptions());
  ASSERT_FALSE(stale.ok());
  EXPECT_TRUE(stale.status().IsCorruption()) << stale.status().ToString();
  WriteBytes(path, good);
  std::string side = ReadBytes(SidecarPath(path));
  side[kSidecarHeaderSize + 3] ^= 1;
  WriteBytes(SidecarPath(path), side);
  auto damaged = Open(path, ReadOptions());
  ASSERT_FALSE(damaged.ok());
  EXPECT_TRUE(damaged.status().IsCorruption()) << damaged.status().ToString();
  // Truncated: the sidecar no longer matches, and without it the scan fails.
  fs::remove(SidecarPath(path));
  WriteBytes(path, std::string_view(good).substr(0, good.size() / 2));
  auto cut = Open(path, ReadOptions());
  ASSERT_FALSE(cut.ok());
  EXPECT_TRUE(cut.status().IsCorruption()) << cut.status().ToString();
}

}  // namespace
}  // namespace shardset::targz
