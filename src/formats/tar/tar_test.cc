// Tests of the tar shard format: header codec, scanner, writer, sidecar, and
// interoperability with GNU tar, bsdtar and Python tarfile (which must be
// installed: they are the peers the format is defined by).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/coding.h"
#include "base/file.h"
#include "base/hash.h"
#include "formats/archive_entry.h"
#include "formats/tar/tar_header.h"
#include "formats/tar/tar_scan.h"
#include "formats/tar/tar_shard.h"
#include "formats/tar/tar_sidecar.h"
#include "shardset/shard.h"
#include "testing/test_util.h"

namespace shardset::tar {
namespace {

using namespace shardset::test;  // NOLINT: the shared test helpers

namespace fs = std::filesystem;

// ---- Helpers ----

// Sets a file's mtime (nanoseconds since the epoch).
void SetMtime(const std::string& path, int64_t mtime_ns) {
  struct timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = mtime_ns / 1000000000;
  ts[0].tv_nsec = ts[1].tv_nsec = mtime_ns % 1000000000;
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, 0), 0);
}

int64_t MtimeNs(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
}

std::string MemberPath(const std::string& key, const std::string& field) {
  return field.empty() ? key : key + "." + field;
}

// Recomputes the (unsigned) checksum of a header block after a test edits it.
void FixChecksum(char* block) {
  std::memset(block + kChecksumField.offset, ' ', kChecksumField.size);
  uint32_t sum = 0;
  for (size_t i = 0; i < kBlockSize; ++i) sum += static_cast<unsigned char>(block[i]);
  std::string digits = fmt::format("{:06o}", sum);
  std::memcpy(block + kChecksumField.offset, digits.c_str(), 7);  // with its NUL
}

// A tar in memory made of regular members (our encoder), ended properly.
std::string MakeTar(const std::vector<std::pair<std::string, std::string>>& members) {
  std::string tar;
  for (const auto& [name, data] : members) {
    tar += EncodeMemberHeaders(name, data.size());
    tar += data;
    tar.append(PaddingAfter(data.size()), '\0');
  }
  tar.append(2 * kBlockSize, '\0');
  return tar;
}

class TarTest : public TempDirTest {
 protected:
  ShardInfo Write(const std::string& path, const std::vector<Plain>& samples, bool index = true) {
    WriteOptions opt;
    opt.sidecar_index = index;
    return WritePlain(path, ShardFormat::kTar, samples, opt);
  }

  std::unique_ptr<ShardReader> MustOpen(const std::string& path) {
    auto r = Open(path, ReadOptions());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }
};

// Samples whose names exercise every way a name is stored.
std::vector<Plain> TrickySamples() {
  std::string png(3000, '\0');
  for (size_t i = 0; i < png.size(); ++i) png[i] = static_cast<char>(i * 7);
  return {
      {"s/0001", {{"png", png}, {"cls", "3"}, {"json", ""}}},
      {"d/" + std::string(94, 'a'), {{"txt", "exactly 100 bytes"}}},  // name fills 100
      {std::string(74, 'b') + "/" + std::string(71, 'c'), {{"bin", "150, split"}}},
      {std::string(146, 'n'), {{"bin", "150, no slash: pax"}}},
      {std::string(99, 'p') + "/" + std::string(99, 'q') + "/" + std::string(96, 'r'),
       {{"bin", "300: pax"}}},
      {"donn\xc3\xa9"
       "es/\xc3\xa9t\xc3\xa9_\xf0\x9f\x98\x80",
       {{"txt", "utf-8"}}},
      {"\xe6\x97\xa5\xe6\x9c\xac/\xe3\x83\x95\xe3\x82\xa1\xe3\x82\xa4\xe3\x83\xab",
       {{"jpg", "jp"}}},
      {"with space/a b c", {{"txt", "spaces"}}},
      {"nl\nname", {{"txt", "newline"}}},
      {"README", {{"", "no field"}}},
      {".hidden", {{"png", "dot first"}}},
      {"arch", {{"tar.gz", "dotted field"}, {"", "and an empty one"}}},
      {"zero", {{"bin", ""}}},
  };
}

// ---- Header codec ----

TEST(TarHeaderTest, SplitMemberPath) {
  EXPECT_EQ(SplitMemberPath("dir/0042.png"), (KeyField{"dir/0042", "png"}));
  EXPECT_EQ(SplitMemberPath("a.b/c.tar.gz"), (KeyField{"a.b/c", "tar.gz"}));
  EXPECT_EQ(SplitMemberPath(".hidden.png"), (KeyField{".hidden", "png"}));
  EXPECT_EQ(SplitMemberPath("d/.hidden"), (KeyField{"d/.hidden", ""}));
  EXPECT_EQ(SplitMemberPath("README"), (KeyField{"README", ""}));
  EXPECT_EQ(SplitMemberPath(""), (KeyField{"", ""}));
  EXPECT_EQ(NormalizeMemberPath("././a/b.c"), "a/b.c");
  EXPECT_EQ(NormalizeMemberPath("a/./b"), "a/./b");
}

TEST(TarHeaderTest, ParseNumber) {
  EXPECT_EQ(ParseNumber(std::string_view("00000000012\0", 12)), 10u);
  EXPECT_EQ(ParseNumber(std::string_view("     12 \0\0\0\0", 12)), 10u);
  EXPECT_EQ(ParseNumber(std::string_view("\0\0\0\0\0\0\0\0", 8)), 0u);
  EXPECT_EQ(ParseNumber("077777777777"), 077777777777u);
  EXPECT_EQ(ParseNumber(std::string_view("0000009\0", 8)), std::nullopt);
  EXPECT_EQ(ParseNumber(std::string_view("12x4\0", 5)), std::nullopt);
  // GNU base-256: 0x80 marker, big-endian value.
  std::string b256(12, '\0');
  b256[0] = static_cast<char>(0x80);
  b256[7] = 0x02;  // 2 << 32
  EXPECT_EQ(ParseNumber(b256), 2ull << 32);
  b256[0] = static_cast<char>(0xff);  // negative
  EXPECT_EQ(ParseNumber(b256), std::nullopt);
  std::string huge(12, static_cast<char>(0x7f));
  huge[0] = static_cast<char>(0x80 | 0x3f);
  EXPECT_EQ(ParseNumber(huge), std::nullopt);  // over 2^63
}

// Negative base-256 mtimes are two's complement over the whole field; one
// that does not fit an int64 reads as 0 (fuzzing found the overflow).
TEST(TarHeaderTest, NegativeBase256Mtime) {
  auto mtime_of = [](const std::string& field) {
    std::string block = EncodeMemberHeaders("x.txt", 3);
    std::memcpy(block.data() + kMtimeField.offset, field.data(), kMtimeField.size);
    FixChecksum(block.data());
    Header h;
    EXPECT_TRUE(DecodeHeader(block, &h).ok());
    return h.mtime;
  };
  EXPECT_EQ(mtime_of(std::string(12, static_cast<char>(0xff))), -1);
  std::string minus_2_40(12, static_cast<char>(0xff));
  for (size_t i = 7; i < 12; ++i) minus_2_40[i] = 0;  // ff..ff 00 00 00 00 00
  EXPECT_EQ(mtime_of(minus_2_40), -(int64_t{1} << 40));
  std::string too_small(12, '\0');
  too_small[0] = static_cast<char>(0xff);
  too_small[1] = static_cast<char>(0x80);
  EXPECT_EQ(mtime_of(too_small), 0);
}

TEST(TarHeaderTest, ChecksumSignedAndUnsigned) {
  std::string block = EncodeMemberHeaders("x.txt", 3);
  ASSERT_EQ(block.size(), kBlockSize);
  EXPECT_TRUE(ChecksumMatches(block));
  block[1] = static_cast<char>(0xe9);
  EXPECT_FALSE(ChecksumMatches(block));
  FixChecksum(block.data());
  EXPECT_TRUE(ChecksumMatches(block));
  // The same block with a signed sum, as old Sun tars wrote it.
  std::memset(block.data() + kChecksumField.offset, ' ', kChecksumField.size);
  int32_t sum = 0;
  for (char c : block) sum += static_cast<signed char>(c);
  std::string digits = fmt::format("{:06o}", sum);
  std::memcpy(block.data() + kChecksumField.offset, digits.c_str(), 7);
  EXPECT_TRUE(ChecksumMatches(block));
  EXPECT_FALSE(ChecksumMatches(std::string(kBlockSize, '\0')));
}

TEST(TarHeaderTest, PaxRecordLengthsCountThemselves) {
  for (size_t n = 0; n < 1100; ++n) {
    std::string rec;
    AppendPaxRecord(&rec, "path", std::string(n, 'v'));
    const size_t space = rec.find(' ');
    ASSERT_EQ(std::stoul(rec.substr(0, space)), rec.size()) << rec;
    PaxHeader pax;
    ASSERT_TRUE(ParsePaxRecords(rec, &pax).ok());
    EXPECT_EQ(pax.path.value_or(""), std::string(n, 'v'));
  }
}

TEST(TarHeaderTest, PaxRecordsMalformed) {
  PaxHeader pax;
  EXPECT_TRUE(ParsePaxRecords("33 path=abc\n", &pax).IsCorruption());
  EXPECT_TRUE(ParsePaxRecords("10 path=ab", &pax).IsCorruption());  // no newline
  EXPECT_TRUE(ParsePaxRecords("x path=ab\n", &pax).IsCorruption());
  EXPECT_TRUE(ParsePaxRecords(std::string_view("11 pa\0h=ab\n", 11), &pax).IsCorruption());
  EXPECT_TRUE(ParsePaxRecords(std::string_view("12 path=a\0b\n", 12), &pax).IsCorruption());
  EXPECT_TRUE(ParsePaxRecords("11 size=-1\n", &pax).IsCorruption());
  EXPECT_TRUE(ParsePaxRecords("7 =abc\n", &pax).IsCorruption());
  EXPECT_TRUE(ParsePaxRecords("99999999999999999999999 path=a\n", &pax).IsCorruption());
  EXPECT_TRUE(ParsePaxRecords("28 size=1000000000000000000\n", &pax).IsCorruption());
  ASSERT_TRUE(ParsePaxRecords("33 size=000000000000000000000999\n", &pax).ok());
  EXPECT_EQ(pax.size, 999u);
  pax = PaxHeader();
  ASSERT_TRUE(ParsePaxRecords("12 path=abc\n9 size=7\n19 GNU.sparse.map=\n", &pax).ok());
  EXPECT_EQ(pax.path, "abc");
  EXPECT_EQ(pax.size, 7u);
  EXPECT_TRUE(pax.sparse);
  ASSERT_TRUE(ParsePaxRecords("8 path=\n", &pax).ok());  // empty value unsets
  EXPECT_FALSE(pax.path.has_value());
}

TEST(TarHeaderTest, LargeSizeUsesPax) {
  const uint64_t size = 9ull << 30;
  std::string h = EncodeMemberHeaders("big.bin", size);
  ASSERT_EQ(h.size(), 3 * kBlockSize);  // 'x' header, records, member header
  Header x, m;
  ASSERT_TRUE(DecodeHeader(std::string_view(h).substr(0, kBlockSize), &x).ok());
  EXPECT_EQ(x.typeflag, kPaxLocal);
  EXPECT_EQ(x.path, "PaxHeaders/big.bin");
  PaxHeader pax;
  ASSERT_TRUE(ParsePaxRecords(std::string_view(h).substr(kBlockSize, x.size), &pax).ok());
  EXPECT_EQ(pax.size, size);
  EXPECT_FALSE(pax.path.has_value());
  ASSERT_TRUE(DecodeHeader(std::string_view(h).substr(2 * kBlockSize), &m).ok());
  EXPECT_EQ(m.path, "big.bin");
  EXPECT_EQ(m.dialect, Dialect::kUstar);
}

TEST(TarHeaderTest, UstarSplitLikeGnuTar) {
  EXPECT_EQ(SplitUstarPath(std::string(100, 'a'))->second.size(), 100u);
  auto s = SplitUstarPath(std::string(74, 'b') + "/" + std::string(75, 'c'));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->first.size(), 74u);
  EXPECT_EQ(s->second.size(), 75u);
  EXPECT_FALSE(SplitUstarPath(std::string(146, 'n')).has_value());
  EXPECT_FALSE(SplitUstarPath(std::string(160, 'a') + "/b").has_value());
  EXPECT_FALSE(SplitUstarPath("a/" + std::string(101, 'b')).has_value());
}

// ---- Writer and reader ----

TEST_F(TarTest, RoundTripWithAndWithoutSidecar) {
  const std::vector<Plain> samples = TrickySamples();
  const std::string path = Path("rt.tar");
  ShardInfo info = Write(path, samples);
  const std::string bytes = ReadBytes(path);
  EXPECT_EQ(info.format, ShardFormat::kTar);
  EXPECT_EQ(info.num_samples, samples.size());
  EXPECT_EQ(info.file_size, bytes.size());
  EXPECT_EQ(info.xxh3, Xxh3(bytes));
  EXPECT_EQ(info.first_key, samples.front().key);
  EXPECT_EQ(info.last_key, samples.back().key);
  EXPECT_EQ(bytes.size() % kRecordSize, 0u);
  ASSERT_TRUE(PathExists(SidecarPath(path)));

  for (bool sidecar : {true, false}) {
    SCOPED_TRACE(sidecar ? "sidecar" : "scan");
    if (!sidecar) fs::remove(SidecarPath(path));
    auto r = MustOpen(path);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->format(), ShardFormat::kTar);
    EXPECT_EQ(r->file_size(), bytes.size());
    EXPECT_EQ(ReadAll(*r), samples);
    for (uint64_t i = 0; i < samples.size(); ++i) {
      auto found = r->Find(samples[i].key);
      ASSERT_TRUE(found.ok()) << found.status().ToString();
      EXPECT_EQ(*found, i);
      EXPECT_EQ(*r->Key(i), samples[i].key);
    }
    EXPECT_TRUE(r->Find("no such key").status().IsNotFound());
    VerifyReport report;
    ASSERT_TRUE(r->Verify(&report).ok());
    EXPECT_TRUE(report.ok()) << report.problems.front();
    EXPECT_EQ(report.samples_checked, samples.size());
  }
}

TEST_F(TarTest, DeterministicBytes) {
  const std::vector<Plain> samples = TrickySamples();
  Write(Path("a.tar"), samples, false);
  Write(Path("b.tar"), samples, false);
  EXPECT_EQ(ReadBytes(Path("a.tar")), ReadBytes(Path("b.tar")));
}

TEST_F(TarTest, EmptyShard) {
  const std::string path = Path("empty.tar");
  ShardInfo info = Write(path, {});
  EXPECT_EQ(info.num_samples, 0u);
  const std::string bytes = ReadBytes(path);
  EXPECT_EQ(bytes, std::string(kRecordSize, '\0'));
  EXPECT_TRUE(LooksTar(bytes));
  auto r = OpenShard(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->num_samples(), 0u);
  EXPECT_EQ((*r)->format(), ShardFormat::kTar);
}

TEST_F(TarTest, OpenShardRecognisesTar) {
  const std::string path = Path("x.tar");
  Write(path, {{"k", {{"txt", "v"}}}});
  EXPECT_TRUE(LooksTar(ReadBytes(path)));
  EXPECT_FALSE(LooksTar(std::string(kBlockSize, 'x')));
  EXPECT_FALSE(LooksTar("short"));
  auto r = OpenShard(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->format(), ShardFormat::kTar);
}

TEST_F(TarTest, WriterRefusesSamplesThatWouldNotReadBack) {
  WriteOptions opt;
  opt.sync = false;
  auto w = Create(Path("bad.tar"), opt);
  ASSERT_TRUE(w.ok());
  auto add = [&](const Plain& p) { return (*w)->Add(ToInput(p)); };
  const std::vector<Plain> bad = {
      {"k", {}},
      {"k", {{"png", "a"}, {"png", "b"}}},
      {"a.b", {{"png", "x"}}},
      {"a.b", {{"", "x"}}},
      {"../up", {{"png", "x"}}},
      {"/abs", {{"png", "x"}}},
      {"dir/", {{"", "x"}}},
      {"a//b", {{"png", "x"}}},
      {"./a", {{"png", "x"}}},
      {"", {{"png", "x"}}},
      {"k", {{"a/b", "x"}}},
      {std::string("n\0l", 3), {{"png", "x"}}},
  };
  for (const Plain& p : bad) {
    Status s = add(p);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << p.key << " " << s.ToString();
  }
  // One key twice in a row: fine when the second repeats a field (it reads
  // back as its own sample), refused when the two would merge.
  EXPECT_TRUE(add({"k", {{"png", "1"}}}).ok());
  EXPECT_TRUE(add({"k", {{"png", "2"}, {"cls", "c"}}}).ok());
  EXPECT_EQ(add({"k", {{"json", "3"}}}).code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE((*w)->Close().ok());
  auto r = MustOpen(Path("bad.tar"));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ReadAll(*r),
            (std::vector<Plain>{{"k", {{"png", "1"}}}, {"k", {{"png", "2"}, {"cls", "c"}}}}));
}

TEST_F(TarTest, WriteErrorLeavesNoShard) {
  // Writes past 64 KiB fail with EFBIG (SIGXFSZ ignored) until the limit is
  // restored: a disk-full stand-in.
  const std::string path = Path("full.tar");
  WriteOptions opt;
  opt.sync = false;
  auto w = Create(path, opt);
  ASSERT_TRUE(w.ok());
  struct rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Status added = (*w)->Add(ToInput({"big", {{"bin", std::string(3 << 20, 'x')}}}));
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(added.code(), Status::Code::kIOError) << added.ToString();
  EXPECT_EQ((*w)->Add(ToInput({"small", {{"txt", "x"}}})).code(), Status::Code::kIOError);
  EXPECT_FALSE((*w)->Close().ok());
  w->reset();
  EXPECT_FALSE(PathExists(path));
  EXPECT_FALSE(PathExists(SidecarPath(path)));
  EXPECT_TRUE(fs::is_empty(dir_));  // no temporary file left either
}

TEST_F(TarTest, RepeatedFieldStartsNewSample) {
  const std::string path = Path("rep.tar");
  WriteBytes(path, MakeTar({{"./a.png", "1"}, {"a.cls", "2"}, {"a.png", "3"}, {"b.png", "4"}}));
  auto r = MustOpen(path);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ReadAll(*r), (std::vector<Plain>{{"a", {{"png", "1"}, {"cls", "2"}}},
                                             {"a", {{"png", "3"}}},
                                             {"b", {{"png", "4"}}}}));
  EXPECT_EQ(*r->Find("a"), 0u);
  EXPECT_EQ(*r->Find("b"), 2u);
}

TEST_F(TarTest, StaleSidecarIsDetected) {
  const std::string path = Path("stale.tar");
  Write(path, {{"a", {{"txt", "one"}}}, {"b", {{"txt", "two"}}}});
  ASSERT_NE(MustOpen(path), nullptr);
  const int64_t mtime = MtimeNs(path);

  SetMtime(path, mtime + 1000000000);  // touched or copied: only the mtime differs
  EXPECT_NE(MustOpen(path), nullptr);
  SetMtime(path, mtime);

  std::string bytes = ReadBytes(path);  // same size and mtime, other content
  bytes[kBlockSize] ^= 1;                // in sample "a"'s bytes
  WriteBytes(path, bytes);
  SetMtime(path, mtime);
  auto r = Open(path, ReadOptions());
  {
    // Every read is refused; verify says so and, since the index still
    // places every field inside the tar, names the damaged sample (the
    // corruption harness damaged tars in their first 64 KiB, and verify only
    // named the shard).
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    Sample s;
    for (uint64_t i = 0; i < 2; ++i) {
      Status st = (*r)->Read(i, &s);
      EXPECT_TRUE(st.IsCorruption()) << st.ToString();
      EXPECT_NE(st.message().find("index is stale"), std::string::npos) << st.ToString();
    }
    EXPECT_TRUE((*r)->Key(0).status().IsCorruption());
    EXPECT_TRUE((*r)->Find("b").status().IsCorruption());
    VerifyReport report;
    ASSERT_TRUE((*r)->Verify(&report).ok());
    ASSERT_EQ(report.problems.size(), 2u);
    EXPECT_NE(report.problems[0].find("index is stale"), std::string::npos);
    EXPECT_NE(report.problems[1].find("sample 0 (key 'a')"), std::string::npos)
        << report.problems[1];
  }

  bytes += std::string(kRecordSize, '\0');  // appended to: size differs
  WriteBytes(path, bytes);
  r = Open(path, ReadOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("index is stale"), std::string::npos);
  EXPECT_NE(r.status().message().find("rerun shardset index " + path), std::string::npos);

  auto n = WriteIndex(path, ReadOptions(), /*sync=*/false);  // the fix the message names
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2u);
  EXPECT_NE(MustOpen(path), nullptr);
}

TEST_F(TarTest, DamagedSidecar) {
  const std::string path = Path("ds.tar");
  Write(path, {{"a", {{"txt", "one"}}}});
  std::string side = ReadBytes(SidecarPath(path));
  std::string bad_magic = side;
  bad_magic[1] = 'X';
  WriteBytes(SidecarPath(path), bad_magic);
  EXPECT_TRUE(Open(path, ReadOptions()).status().IsCorruption());
  std::string newer = side;
  newer[8] = 2;
  WriteBytes(SidecarPath(path), newer);
  EXPECT_EQ(Open(path, ReadOptions()).status().code(), Status::Code::kNotSupported);
  std::string damaged = side;
  damaged[damaged.size() - 30] ^= 0x40;  // the footer's block count
  WriteBytes(SidecarPath(path), damaged);
  EXPECT_TRUE(Open(path, ReadOptions()).status().IsCorruption());
  WriteBytes(SidecarPath(path), side.substr(0, 30));
  EXPECT_TRUE(Open(path, ReadOptions()).status().IsCorruption());
}

// Samples around a large middle: bytes there are outside the fingerprint's
// first and last 64 KiB, so damage to them is left to the checksums.
std::vector<Plain> SamplesWithLargeMiddle() {
  return {{"a", {{"txt", "first"}}},
          {"big", {{"bin", std::string(300 * 1024, 'B')}}},
          {"mid", {{"txt", "middle"}}},
          {"big2", {{"bin", std::string(300 * 1024, 'C')}}},
          {"z", {{"txt", "last"}}}};
}

TEST_F(TarTest, FlippedDataByteFailsReadAndVerify) {
  const std::string path = Path("flip.tar");
  Write(path, SamplesWithLargeMiddle());
  const int64_t mtime = MtimeNs(path);
  std::string bytes = ReadBytes(path);
  const size_t at = bytes.find(std::string(1000, 'B')) + 150 * 1024;
  bytes[at] ^= 0x10;
  WriteBytes(path, bytes);
  SetMtime(path, mtime);  // bit rot leaves the mtime alone

  auto r = MustOpen(path);
  ASSERT_NE(r, nullptr);
  Sample s;
  EXPECT_TRUE(r->Read(0, &s).ok());
  Status st = r->Read(1, &s);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("sample 1 (key 'big')"), std::string::npos) << st.message();
  EXPECT_TRUE(r->Read(2, &s).ok());
  VerifyReport report;
  ASSERT_TRUE(r->Verify(&report).ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("sample 1 (key 'big')"), std::string::npos);
}

TEST_F(TarTest, VerifyRechecksHeaders) {
  const std::string path = Path("hdr.tar");
  Write(path, SamplesWithLargeMiddle());
  const int64_t mtime = MtimeNs(path);
  std::string bytes = ReadBytes(path);
  const size_t header = bytes.find("mid.txt");
  ASSERT_NE(header, std::string::npos);
  bytes[header] = 'M';  // the header no longer matches its checksum
  WriteBytes(path, bytes);
  SetMtime(path, mtime);

  auto r = MustOpen(path);  // the sidecar does not read headers
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ReadAll(*r).size(), 5u);
  VerifyReport report;
  ASSERT_TRUE(r->Verify(&report).ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("checksum"), std::string::npos) << report.problems[0];
  EXPECT_NE(report.problems[0].find("after member 'big.bin'"), std::string::npos);
  fs::remove(SidecarPath(path));
  EXPECT_TRUE(Open(path, ReadOptions()).status().IsCorruption());
}

TEST_F(TarTest, TruncatedTarNeverCrashes) {
  const std::string full = Path("full.tar");
  Write(full, TrickySamples(), false);
  const std::string bytes = ReadBytes(full);
  const std::string path = Path("cut.tar");
  for (size_t len = 0; len < bytes.size(); len += len < 8192 ? 61 : 997) {
    WriteBytes(path, bytes.substr(0, len));
    auto r = Open(path, ReadOptions());
    if (!r.ok()) {
      EXPECT_TRUE(r.status().IsCorruption()) << len << ": " << r.status().ToString();
      continue;
    }
    ReadAll(**r);  // whatever was complete reads fine
  }
  // Cut inside a member's data: the message names the member.
  const size_t data = bytes.find("exactly 100 bytes");
  WriteBytes(path, bytes.substr(0, data + 5));
  auto r = Open(path, ReadOptions());
  ASSERT_TRUE(r.status().IsCorruption());
  EXPECT_NE(r.status().message().find("member 'd/aaaa"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("cut.tar"), std::string::npos);
}

TEST_F(TarTest, HugeSizeFieldIsCorruption) {
  const std::string path = Path("huge.tar");
  // Octal maximum, pax size, and base-256, each in a file of a few blocks.
  std::vector<std::string> tars;
  tars.push_back(EncodeMemberHeaders("octal.bin", kMaxOctalSize) + std::string(1024, '\0'));
  tars.push_back(EncodeMemberHeaders("pax.bin", 1ull << 40) + std::string(1024, '\0'));
  std::string b256 = EncodeMemberHeaders("b256.bin", 0);
  std::memset(b256.data() + kSizeField.offset, 0, kSizeField.size);
  b256[kSizeField.offset] = static_cast<char>(0x80);
  b256[kSizeField.offset + 4] = 0x40;  // 2^62
  FixChecksum(b256.data());
  tars.push_back(b256 + std::string(1024, '\0'));
  for (const std::string& t : tars) {
    WriteBytes(path, t);
    auto r = Open(path, ReadOptions());
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
    EXPECT_NE(r.status().message().find("claims"), std::string::npos) << r.status().message();
  }
}

TEST_F(TarTest, NotATar) {
  const std::string path = Path("junk.tar");
  WriteBytes(path, std::string(4096, 'j'));
  auto r = Open(path, ReadOptions());
  EXPECT_TRUE(r.status().IsCorruption());
  EXPECT_NE(r.status().message().find("header at byte 0"), std::string::npos);
  EXPECT_TRUE(WriteIndex(path, ReadOptions(), false).status().IsCorruption());
}

TEST_F(TarTest, SparseMembersAreEntriesButNotSamples) {
  // GNU tar's sparse formats store a file without its holes: an entry lists
  // and reads back expanded, but a sample cannot map its bytes.
  fs::create_directories(Path("sp"));
  const std::string file = Path("sp/s.bin");
  WriteBytes(file, "head");
  ASSERT_EQ(RunShell(fmt::format("truncate -s 1M '{}' && printf tail >> '{}'", file, file)), 0);
  const std::string want = ReadBytes(file);
  for (const std::string format : {"gnu", "posix"}) {
    const std::string path = Path("sparse-" + format + ".tar");
    ASSERT_EQ(
        RunShell(fmt::format("tar cSf '{}' --format={} -C '{}' s.bin", path, format, Path("sp"))),
        0);
    EXPECT_EQ(Open(path, ReadOptions()).status().code(), Status::Code::kNotSupported) << format;
    int entries = 0;
    Status s = ForEachEntry(path, ReadOptions(),
                            [&](const ArchiveEntry& e, const EntryDataReader& data) -> Status {
                              ++entries;
                              EXPECT_EQ(e.name, "s.bin");
                              EXPECT_EQ(e.size, want.size());
                              SHARDSET_ASSIGN_OR_RETURN(std::string got, data(1 << 30));
                              EXPECT_TRUE(got == want) << format;
                              return Status::OK();
                            });
    EXPECT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(entries, 1);
  }
}

TEST_F(TarTest, RandomDamageNeverCrashes) {
  // Small archives of every header kind we read: ours (ustar + pax) and GNU
  // long names, damaged at random; every outcome but a crash or hang is fine.
  std::vector<Plain> samples = TrickySamples();
  samples.resize(6);
  Write(Path("seed.tar"), samples, false);
  std::string gnu = Path("gnu.tar");
  fs::create_directories(Path("g"));
  WriteBytes(Path("g/" + std::string(120, 'g') + ".txt"), "long");
  ASSERT_EQ(RunShell(fmt::format("tar cf '{}' --format=gnu -C '{}' .", gnu, Path("g"))), 0);
  std::mt19937 rng(42);
  const std::string path = Path("fuzz.tar");
  int parsed = 0, refused = 0;
  for (const std::string& seed : {ReadBytes(Path("seed.tar")), ReadBytes(gnu)}) {
    for (int i = 0; i < 2000; ++i) {
      std::string t = seed;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < edits; ++k) {
        // Mostly header bytes (the first 600 of each block), where parsing happens.
        size_t at = rng() % t.size();
        if (rng() % 4 != 0) at = at / kBlockSize * kBlockSize + rng() % 160;
        at = std::min(at, t.size() - 1);
        t[at] = static_cast<char>(rng() % 3 == 0 ? '0' + rng() % 10 : rng());
        // Keep some damaged headers valid so the parser sees their fields.
        if (rng() % 2 == 0) FixChecksum(t.data() + at / kBlockSize * kBlockSize);
      }
      if (rng() % 8 == 0) t.resize(rng() % t.size());
      index::IndexBuilder builder(/*contiguous=*/false);
      (BuildIndex(t, "fuzz", &builder).ok() ? parsed : refused)++;
      if (i % 20 != 0) continue;
      // Now and then the whole reader, through a file.
      WriteBytes(path, t);
      auto r = Open(path, ReadOptions());
      if (!r.ok()) continue;
      Sample s;
      for (uint64_t n = 0; n < (*r)->num_samples(); ++n) (void)(*r)->Read(n, &s);
      VerifyReport report;
      EXPECT_TRUE((*r)->Verify(&report).ok());
    }
  }
  EXPECT_GT(parsed, 50);   // the damage leaves enough archives readable to
  EXPECT_GT(refused, 50);  // exercise both paths
}

// Our headers are GNU tar's: a sample written by shardset is byte for byte
// what GNU tar writes for the same files with deterministic metadata.
TEST_F(TarTest, MatchesGnuTarUstarByteForByte) {
  const std::string long_dir = std::string(74, 'b');
  const std::vector<Plain> samples = {
      {"a", {{"txt", "hello"}, {"cls", "3"}}},
      {long_dir + "/" + std::string(71, 'c'), {{"bin", std::string(1500, 'z')}}},
  };
  Write(Path("ours.tar"), samples, false);
  const std::string src = Path("src");
  fs::create_directories(fs::path(src) / long_dir);
  std::string files;
  for (const Plain& p : samples) {
    for (const auto& [field, data] : p.fields) {
      WriteBytes((fs::path(src) / MemberPath(p.key, field)).string(), data);
      files += " '" + MemberPath(p.key, field) + "'";
    }
  }
  ASSERT_EQ(RunShell(fmt::format("tar cf '{}' --format=ustar --numeric-owner --owner=0 "
                                 "--group=0 --mtime=@0 --mode=0644 -C '{}'{}",
                                 Path("gnu.tar"), src, files)),
            0);
  EXPECT_TRUE(ReadBytes(Path("ours.tar")) == ReadBytes(Path("gnu.tar")));
}

// ---- Peers read what we write ----

TEST_F(TarTest, PeersExtractIdenticalBytes) {
  const std::vector<Plain> samples = TrickySamples();
  const std::string path = Path("peer.tar");
  Write(path, samples);
  const std::vector<std::pair<std::string, std::string>> tools = {
      {"gnu", "tar xf '{tar}' -C '{dir}'"},
      {"bsdtar", "bsdtar xf '{tar}' -C '{dir}'"},
      {"python",
       "/usr/bin/python3 -c 'import sys, tarfile; "
       "tarfile.open(sys.argv[1]).extractall(sys.argv[2])' '{tar}' '{dir}'"},
  };
  for (const auto& [name, cmd] : tools) {
    SCOPED_TRACE(name);
    const std::string out = Path("x-" + name);
    fs::create_directory(out);
    const std::string err = Path(name + ".err");
    ASSERT_EQ(RunShell(fmt::format(fmt::runtime(cmd), fmt::arg("tar", path), fmt::arg("dir", out)) +
                       " 2>'" + err + "'"),
              0)
        << ReadBytes(err);
    EXPECT_EQ(ReadBytes(err), "");
    size_t files = 0;
    for (const auto& e : fs::recursive_directory_iterator(out)) files += e.is_regular_file();
    size_t want = 0;
    for (const Plain& p : samples) {
      for (const auto& [field, data] : p.fields) {
        ++want;
        const std::string file = (fs::path(out) / MemberPath(p.key, field)).string();
        EXPECT_TRUE(fs::is_regular_file(file)) << file;
        EXPECT_EQ(ReadBytes(file), data) << file;
      }
    }
    EXPECT_EQ(files, want);
  }
  for (const char* list : {"tar tvf", "bsdtar tvf"}) {
    EXPECT_EQ(RunShell(fmt::format("{} '{}' >/dev/null 2>'{}'", list, path, Path("l.err"))), 0);
    EXPECT_EQ(ReadBytes(Path("l.err")), "") << list;
  }
  // Python lists exactly our member names, in order, with no pax leftovers.
  const std::string names = Path("names");
  ASSERT_EQ(
      RunShell(fmt::format("/usr/bin/python3 -c 'import sys, tarfile; "
                           "sys.stdout.buffer.write(b\"\\0\".join(m.name.encode(\"utf-8\", "
                           "\"surrogateescape\") for m in tarfile.open(sys.argv[1])))' '{}' >'{}'",
                           path, names)),
      0);
  std::string want_names;
  for (const Plain& p : samples) {
    for (const auto& [field, data] : p.fields) {
      if (!want_names.empty()) want_names += '\0';
      want_names += MemberPath(p.key, field);
    }
  }
  EXPECT_EQ(ReadBytes(names), want_names);
}

// ---- We read what peers write ----

struct TreeFile {
  std::string path, data;
};

// A source tree: samples with two fields, long names (one that ustar can
// split, one it cannot), UTF-8, an empty file, a symlink and a directory.
std::vector<TreeFile> MakeTree(const std::string& root) {
  std::string png(5000, 'p');
  std::vector<TreeFile> files = {
      {"train/0001.cls", "3"},
      {"train/0001.png", png},
      {"train/0002.cls", "7"},
      {"train/0002.png", png + "2"},
      {"deep/" + std::string(90, 'd') + "/" + std::string(90, 'e') + ".txt", "splittable"},
      {"long/" + std::string(150, 'l') + ".txt", "too long for ustar"},
      {"utf/\xc3\xa9t\xc3\xa9.txt", "utf8"},
      {"empty.txt", ""},
      {"README", "readme"},
  };
  for (const TreeFile& f : files) {
    fs::create_directories((fs::path(root) / f.path).parent_path());
    WriteBytes((fs::path(root) / f.path).string(), f.data);
  }
  fs::create_directories(fs::path(root) / "emptydir");
  fs::create_symlink("train/0001.png", fs::path(root) / "link.png");
  return files;
}

// key -> (field -> data), what a tree's files should read back as.
using SampleMap = std::map<std::string, std::map<std::string, std::string>>;

SampleMap Expected(const std::vector<TreeFile>& files, bool with_long) {
  SampleMap m;
  for (const TreeFile& f : files) {
    if (!with_long && f.path.substr(0, 5) == "long/") continue;
    KeyField kf = SplitMemberPath(f.path);
    m[std::string(kf.key)][std::string(kf.field)] = f.data;
  }
  return m;
}

SampleMap Actual(const ShardReader& r) {
  SampleMap m;
  for (const Plain& p : ReadAll(r)) {
    EXPECT_EQ(m.count(p.key), 0u) << p.key;
    for (const auto& [field, data] : p.fields) m[p.key][field] = data;
  }
  return m;
}

TEST_F(TarTest, ReadsArchivesWrittenByPeers) {
  const std::string root = Path("tree");
  const std::vector<TreeFile> files = MakeTree(root);
  struct Writer {
    std::string name, cmd;
    bool long_names;
  };
  const std::vector<Writer> writers = {
      {"gnu-default", "tar cf '{tar}' --sort=name -C '{root}' .", true},
      {"gnu-gnu", "tar cf '{tar}' --format=gnu --sort=name -C '{root}' .", true},
      {"gnu-pax", "tar cf '{tar}' --format=pax --sort=name -C '{root}' .", true},
      {"gnu-ustar", "tar cf '{tar}' --format=ustar --sort=name --exclude=long -C '{root}' .",
       false},
      {"gnu-v7",
       "tar cf '{tar}' --format=v7 --sort=name --exclude=long --exclude=deep "
       "-C '{root}' .",
       false},
      // bsdtar has no --sort: feed it a sorted list so that fields stay together.
      {"bsdtar", "cd '{root}' && find . | LC_ALL=C sort | bsdtar cf '{tar}' -n -T -", true},
      {"python-pax",
       "/usr/bin/python3 -c 'import sys, tarfile; t = tarfile.open(sys.argv[1], \"w\", "
       "format=tarfile.PAX_FORMAT); t.add(sys.argv[2], arcname=\".\"); t.close()' '{tar}' "
       "'{root}'",
       true},
      {"python-gnu",
       "/usr/bin/python3 -c 'import os, sys, tarfile; t = tarfile.open(sys.argv[1], \"w\", "
       "format=tarfile.GNU_FORMAT); [t.add(os.path.join(sys.argv[2], n), arcname=n) for n in "
       "sorted(os.listdir(sys.argv[2]))]; t.close()' '{tar}' '{root}'",
       true},
  };
  for (const Writer& w : writers) {
    SCOPED_TRACE(w.name);
    const std::string tar = Path(w.name + ".tar");
    const std::string cmd =
        fmt::format(fmt::runtime(w.cmd), fmt::arg("tar", tar), fmt::arg("root", root));
    ASSERT_EQ(RunShell(cmd), 0) << cmd;
    SampleMap want = Expected(files, w.long_names);
    if (w.name == "gnu-v7") want.erase("deep/" + std::string(90, 'd') + "/" + std::string(90, 'e'));
    for (int pass = 0; pass < 2; ++pass) {
      SCOPED_TRACE(pass == 0 ? "scan" : "sidecar");
      if (pass == 1) {
        auto n = WriteIndex(tar, ReadOptions(), /*sync=*/false);
        ASSERT_TRUE(n.ok()) << n.status().ToString();
        EXPECT_EQ(*n, want.size());
      }
      auto r = MustOpen(tar);
      ASSERT_NE(r, nullptr);
      EXPECT_EQ(r->num_samples(), want.size());
      EXPECT_EQ(Actual(*r), want);
      for (const auto& [key, fields] : want) {
        auto ordinal = r->Find(key);
        ASSERT_TRUE(ordinal.ok()) << key << ": " << ordinal.status().ToString();
        EXPECT_EQ(*r->Key(*ordinal), key);
      }
      VerifyReport report;
      ASSERT_TRUE(r->Verify(&report).ok());
      EXPECT_TRUE(report.ok()) << report.problems.front();
    }
  }
}

// ---- Third-party archives: nothing crashes or hangs ----

TEST_F(TarTest, ConformanceCorpusDoesNotCrash) {
  const fs::path corpus = fs::path(SHARDSET_SHARED_DIR) / "testdata/archives/tar";
  if (!fs::is_directory(corpus)) GTEST_SKIP() << "no corpus at " << corpus;
  int opened = 0, files = 0;
  for (const auto& e : fs::directory_iterator(corpus)) {
    if (e.path().extension() != ".tar") continue;
    ++files;
    SCOPED_TRACE(e.path().filename().string());
    // A copy, so that WriteIndex can put a sidecar beside it.
    const std::string copy = Path(e.path().filename().string());
    fs::copy_file(e.path(), copy);
    auto r = Open(copy, ReadOptions());
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find(copy), std::string::npos) << r.status().ToString();
      continue;
    }
    ++opened;
    ReadAll(**r);
    VerifyReport report;
    EXPECT_TRUE((*r)->Verify(&report).ok());
    EXPECT_TRUE(report.ok()) << report.problems.front();
    auto n = WriteIndex(copy, ReadOptions(), false);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, (*r)->num_samples());
  }
  EXPECT_GT(files, 40);
  EXPECT_GT(opened, 20);
}

// Spot checks against the facts MANIFEST.json transcribes from the origin tests.
TEST_F(TarTest, ConformanceCorpusSpotChecks) {
  const fs::path corpus = fs::path(SHARDSET_SHARED_DIR) / "testdata/archives/tar";
  if (!fs::is_directory(corpus)) GTEST_SKIP() << "no corpus at " << corpus;
  auto open = [&](const std::string& name) {
    return Open((corpus / name).string(), ReadOptions());
  };
  struct Case {
    std::string file;
    std::vector<Plain> samples;
  };
  const std::string longname =
      "longname/longname/longname/longname/longname/longname/longname/longname/longname/"
      "longname/longname/longname/longname/longname/longname/file";
  std::string pax_name = "a/";
  for (int i = 1; i <= 100; ++i) pax_name += std::to_string(i);
  const std::vector<Case> cases = {
      {"go-gnu.tar", {{"small", {{"txt", "Kilts"}}}, {"small2", {{"txt", "Google.com\n"}}}}},
      {"go-ustar.tar", {{longname, {{"txt", "hello\n"}}}}},
      {"go-gnu-long-nul.tar", {{"0123456789", {{"", ""}}}}},
      {"libarchive-test_read_format_tar_concatenated.tar", {{"file1", {{"", ""}}}}},
      {"libarchive-test_read_format_tar_empty_with_gnulabel.tar", {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    auto r = open(c.file);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(ReadAll(**r), c.samples);
  }
  auto pax = open("go-pax.tar");
  ASSERT_TRUE(pax.ok()) << pax.status().ToString();
  ASSERT_EQ((*pax)->num_samples(), 1u);
  EXPECT_EQ(*(*pax)->Key(0), pax_name);
  auto pos_size = open("go-pax-pos-size-file.tar");  // pax size "000...0999"
  ASSERT_TRUE(pos_size.ok()) << pos_size.status().ToString();
  Sample s;
  ASSERT_TRUE((*pos_size)->Read(0, &s).ok());
  EXPECT_EQ(s.key, "foo");
  EXPECT_EQ(s.fields.at(0).data.size(), 999u);
  auto v7 = open("go-v7.tar");
  ASSERT_TRUE(v7.ok());
  EXPECT_EQ((*v7)->num_samples(), 2u);
  auto global = open("go-pax-global-records.tar");
  ASSERT_TRUE(global.ok()) << global.status().ToString();
  EXPECT_EQ((*global)->num_samples(), 4u);  // file1..file4; 'g' headers are not members
  for (const char* bad :
       {"go-neg-size.tar", "go-pax-nul-path.tar", "go-pax-nul-xattrs.tar",
        "go-pax-bad-hdr-file.tar", "go-writer-big.tar", "go-writer-big-long.tar",
        "cpython-recursion.tar", "libarchive-test_read_format_tar_invalid_pax_size.tar",
        "libarchive-test_read_format_tar_pax_g_large.tar",
        "libarchive-test_read_format_tar_V_negative_size.tar"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(open(bad).status().IsCorruption()) << open(bad).status().ToString();
  }
}

}  // namespace
}  // namespace shardset::tar
