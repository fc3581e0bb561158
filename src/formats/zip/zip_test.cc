// Tests of the zip shard format: records, reader, writer, limits against
// hostile archives, interoperability with Python zipfile and Info-ZIP unzip
// (the peers the format is checked against), and the conformance corpus.
#include <sys/resource.h>
#include <sys/wait.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <atomic>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/coding.h"
#include "base/file.h"
#include "formats/archive_entry.h"
#include "formats/probe.h"
#include "formats/tar/tar_shard.h"
#include "formats/zip/zip_format.h"
#include "formats/zip/zip_shard.h"
#include "shardset/dataset.h"
#include "shardset/shard.h"
#include "shardset/view.h"
#include "testing/test_util.h"

namespace shardset::zip {
namespace {

using namespace shardset::test;  // NOLINT: the shared test helpers

namespace fs = std::filesystem;

// ---- Helpers ----

uint32_t Crc(std::string_view data) {
  return static_cast<uint32_t>(
      crc32_z(0, reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

std::string RawDeflate(std::string_view data, int level = 9) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, data.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void Put16(std::string* s, uint16_t v) {
  s->push_back(static_cast<char>(v));
  s->push_back(static_cast<char>(v >> 8));
}

// An entry for BuildZip: what goes in its headers, which tests may bend.
struct RawEntry {
  std::string name;
  std::string stored;  // the bytes after the local header
  uint16_t method = 0;
  uint16_t flags = 0;
  uint32_t crc = 0;
  uint64_t size = 0;  // uncompressed
  uint16_t made_by = 3 << 8 | 20;
  uint32_t external_attrs = uint32_t{0100644} << 16;
  bool zip64_size = false;            // usize in a zip64 extra field
  std::optional<uint64_t> offset;     // the central header's local offset
  std::string local_name;             // when not empty: the local header's name
};

RawEntry Stored(std::string name, std::string data) {
  RawEntry e;
  e.name = std::move(name);
  e.crc = Crc(data);
  e.size = data.size();
  e.stored = std::move(data);
  return e;
}

RawEntry Deflated(std::string name, std::string_view data) {
  RawEntry e;
  e.name = std::move(name);
  e.method = 8;
  e.crc = Crc(data);
  e.size = data.size();
  e.stored = RawDeflate(data);
  return e;
}

struct BuildOptions {
  std::optional<uint16_t> count;  // the end record's entry count
  std::string prefix;             // data before the archive (offsets not adjusted)
  std::string comment;
};
BuildOptions Count(uint16_t n) {
  BuildOptions o;
  o.count = n;
  return o;
}
BuildOptions Comment(std::string c) {
  BuildOptions o;
  o.comment = std::move(c);
  return o;
}

std::string BuildZip(const std::vector<RawEntry>& entries, const BuildOptions& o = {}) {
  std::string zip = o.prefix, cd;
  std::vector<uint64_t> offsets;
  for (const RawEntry& e : entries) {
    offsets.push_back(zip.size() - o.prefix.size());
    const std::string& lname = e.local_name.empty() ? e.name : e.local_name;
    PutFixed32(&zip, kLocalSig);
    Put16(&zip, 20);
    Put16(&zip, e.flags);
    Put16(&zip, e.method);
    Put16(&zip, 0);
    Put16(&zip, 0x21);
    PutFixed32(&zip, e.crc);
    PutFixed32(&zip, static_cast<uint32_t>(e.stored.size()));
    PutFixed32(&zip, e.zip64_size ? 0xffffffff : static_cast<uint32_t>(e.size));
    Put16(&zip, static_cast<uint16_t>(lname.size()));
    Put16(&zip, e.zip64_size ? 12 : 0);
    zip += lname;
    if (e.zip64_size) {
      Put16(&zip, kZip64Extra);
      Put16(&zip, 8);
      PutFixed64(&zip, e.size);
    }
    zip += e.stored;
  }
  const uint64_t cd_offset = zip.size() - o.prefix.size();
  for (size_t i = 0; i < entries.size(); ++i) {
    const RawEntry& e = entries[i];
    PutFixed32(&cd, kCentralSig);
    Put16(&cd, e.made_by);
    Put16(&cd, 20);
    Put16(&cd, e.flags);
    Put16(&cd, e.method);
    Put16(&cd, 0);
    Put16(&cd, 0x21);
    PutFixed32(&cd, e.crc);
    PutFixed32(&cd, static_cast<uint32_t>(e.stored.size()));
    PutFixed32(&cd, e.zip64_size ? 0xffffffff : static_cast<uint32_t>(e.size));
    Put16(&cd, static_cast<uint16_t>(e.name.size()));
    Put16(&cd, e.zip64_size ? 12 : 0);
    Put16(&cd, 0);
    Put16(&cd, 0);
    Put16(&cd, 0);
    PutFixed32(&cd, e.external_attrs);
    PutFixed32(&cd, static_cast<uint32_t>(e.offset ? *e.offset : offsets[i]));
    cd += e.name;
    if (e.zip64_size) {
      Put16(&cd, kZip64Extra);
      Put16(&cd, 8);
      PutFixed64(&cd, e.size);
    }
  }
  zip += cd;
  PutFixed32(&zip, kEndSig);
  Put16(&zip, 0);
  Put16(&zip, 0);
  const uint16_t n = o.count ? *o.count : static_cast<uint16_t>(entries.size());
  Put16(&zip, n);
  Put16(&zip, n);
  PutFixed32(&zip, static_cast<uint32_t>(cd.size()));
  PutFixed32(&zip, static_cast<uint32_t>(cd_offset));
  Put16(&zip, static_cast<uint16_t>(o.comment.size()));
  zip += o.comment;
  return zip;
}

// Peak resident memory of this process, in bytes.
uint64_t MaxRss() {
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

class ZipTest : public TempDirTest {
 protected:
  ShardInfo Write(const std::string& path, const std::vector<Plain>& samples, int level = 0) {
    WriteOptions opt;
    opt.zip_deflate_level = level;
    return WritePlain(path, ShardFormat::kZip, samples, opt);
  }

  std::unique_ptr<ShardReader> MustOpen(const std::string& path,
                                        const ReadOptions& options = {}) {
    auto r = Open(path, options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }

  std::string WriteZip(std::string_view name, std::string_view bytes) {
    const std::string p = Path(name);
    WriteBytes(p, bytes);
    return p;
  }

};

// Samples whose names and bytes exercise the writer.
std::vector<Plain> Samples() {
  std::string png(30000, '\0');
  std::mt19937 rng(7);
  for (char& c : png) c = static_cast<char>(rng());  // incompressible
  std::string text;
  for (int i = 0; i < 2000; ++i) text += fmt::format("line {} of a compressible text\n", i % 17);
  return {
      {"a/0001", {{"png", png}, {"cls", "3"}, {"json", ""}}},
      {"a/0002", {{"txt", text}}},
      {"donn\xc3\xa9" "es/\xc3\xa9t\xc3\xa9_\xf0\x9f\x98\x80", {{"txt", "utf-8"}}},
      {"with space/a b c", {{"txt", "spaces"}}},
      {"x/README", {{"", "no field"}}},
      {"x/arch", {{"tar.gz", "dotted field"}}},
      {"y/.hidden", {{"png", "dot first"}}},
      {"z/zero", {{"bin", ""}}},
      {"\xe6\x97\xa5\xe6\x9c\xac/\xe3\x83\x95\xe3\x82\xa1\xe3\x82\xa4\xe3\x83\xab",
       {{"jpg", "jp"}}},
  };
}

// ---- Records ----

TEST(ZipRecordTest, Cp437DecodesHighBytes) {
  EXPECT_EQ(Cp437ToUtf8("plain"), "plain");
  EXPECT_EQ(Cp437ToUtf8("\x91o\x86"), "\xc3\xa6o\xc3\xa5");  // æoå
  EXPECT_EQ(Cp437ToUtf8("\x9e\xff"), "\xe2\x82\xa7\xc2\xa0");  // ₧, no-break space
}

TEST(ZipRecordTest, DosTimeRollsOverLikeGo) {
  EXPECT_EQ(DosTimeToUnix(0x21, 0), 315532800);  // 1980-01-01 00:00:00
  EXPECT_EQ(DosTimeToUnix(0, 0), 312768000);     // date 0: 1979-11-30
  // 2017-10-31 21:11:58 (go-time-win7.zip), read as UTC.
  EXPECT_EQ(DosTimeToUnix((37 << 9) | (10 << 5) | 31, (21 << 11) | (11 << 5) | 29), 1509484318);
}

TEST(ZipRecordTest, MethodNames) {
  EXPECT_EQ(MethodName(8), "deflate");
  EXPECT_EQ(MethodName(12), "bzip2");
  EXPECT_EQ(MethodName(93), "zstd");
  EXPECT_EQ(MethodName(1234), "method 1234");
}

// ---- Round trips ----

TEST_F(ZipTest, RoundTripStoredAndDeflated) {
  const auto samples = Samples();
  for (int level : {0, 1, 6, 9}) {
    SCOPED_TRACE(level);
    const std::string path = Path(fmt::format("rt{}.zip", level));
    ShardInfo info = Write(path, samples, level);
    EXPECT_EQ(info.num_samples, samples.size());
    EXPECT_EQ(info.file_size, fs::file_size(path));
    EXPECT_EQ(info.first_key, samples.front().key);
    EXPECT_EQ(info.last_key, samples.back().key);
    auto r = MustOpen(path);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->format(), ShardFormat::kZip);
    EXPECT_EQ(ReadAll(*r), samples);
    for (uint64_t i = 0; i < samples.size(); ++i) {
      EXPECT_EQ(*r->Key(i), samples[i].key);
      auto f = r->Find(samples[i].key);
      ASSERT_TRUE(f.ok()) << f.status().ToString();
      EXPECT_EQ(*f, i);
    }
    EXPECT_TRUE(r->Find("nope").status().IsNotFound());
    EXPECT_TRUE(r->Read(samples.size(), nullptr).IsNotFound());
    VerifyReport report;
    ASSERT_TRUE(r->Verify(&report).ok());
    EXPECT_TRUE(report.ok()) << report.problems.front();
    EXPECT_EQ(report.samples_checked, samples.size());
    auto detected = DetectFormat(path);
    ASSERT_TRUE(detected.ok());
    EXPECT_EQ(*detected, ShardFormat::kZip);
  }
  // Deflate shrank the text but stored the random bytes.
  EXPECT_LT(fs::file_size(Path("rt6.zip")), fs::file_size(Path("rt0.zip")));
  const std::string deflated = ReadBytes(Path("rt6.zip"));
  const std::string stored = ReadBytes(Path("rt0.zip"));
  EXPECT_NE(deflated.find(Samples()[0].fields[0].second), std::string::npos);
}

TEST_F(ZipTest, SameSamplesSameBytes) {
  Write(Path("a.zip"), Samples(), 6);
  Write(Path("b.zip"), Samples(), 6);
  EXPECT_EQ(ReadBytes(Path("a.zip")), ReadBytes(Path("b.zip")));
  // 1980-01-01 00:00 in every header; no extra fields (no timestamps).
  const std::string zip = ReadBytes(Path("a.zip"));
  EXPECT_EQ(zip.substr(10, 4), std::string("\0\0\x21\0", 4));
}

TEST_F(ZipTest, EmptyShard) {
  ShardInfo info = Write(Path("empty.zip"), {});
  EXPECT_EQ(info.file_size, kEndSize);
  auto r = MustOpen(Path("empty.zip"));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->num_samples(), 0u);
  auto detected = DetectFormat(Path("empty.zip"));
  ASSERT_TRUE(detected.ok());
  EXPECT_EQ(*detected, ShardFormat::kZip);
}

TEST_F(ZipTest, WriterRefusesSamplesThatWouldNotReadBack) {
  WriteOptions opt;
  opt.sync = false;
  auto w = Create(Path("bad.zip"), opt);
  ASSERT_TRUE(w.ok());
  const std::vector<Plain> bad = {
      {"", {{"png", "x"}}},
      {"../evil", {{"txt", "x"}}},
      {"/abs", {{"txt", "x"}}},
      {"a//b", {{"txt", "x"}}},
      {"a/./b", {{"txt", "x"}}},
      {"dir/", {{"txt", "x"}}},
      {"a.b", {{"png", "x"}}},        // reads back as key "a", field "b.png"
      {"k", {{"a/b", "x"}}},          // a field with a '/'
      {std::string("nul\0x", 5), {{"txt", "x"}}},
      {"latin1\xe9", {{"txt", "x"}}},  // not UTF-8
      {"nofields", {}},
      {"twice", {{"txt", "1"}, {"txt", "2"}}},
  };
  for (const Plain& p : bad) {
    SCOPED_TRACE(p.key);
    Status s = (*w)->Add(ToInput(p));
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find("bad.zip"), std::string::npos) << s.message();
  }
  ASSERT_TRUE((*w)->Add(ToInput({"k", {{"txt", "1"}}})).ok());
  // Same key, no common field: a reader would merge the two.
  EXPECT_EQ((*w)->Add(ToInput({"k", {{"png", "2"}}})).code(), Status::Code::kInvalidArgument);
  // Same key, a field repeats: a new sample, as readers see it.
  EXPECT_TRUE((*w)->Add(ToInput({"k", {{"txt", "3"}}})).ok());
  ASSERT_TRUE((*w)->Close().ok());
  auto r = MustOpen(Path("bad.zip"));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ReadAll(*r), (std::vector<Plain>{{"k", {{"txt", "1"}}}, {"k", {{"txt", "3"}}}}));
  EXPECT_FALSE(r->keys_sorted());  // "k" twice: not strictly increasing
  EXPECT_EQ(*r->Find("k"), 0u);
}

TEST_F(ZipTest, Zip64WhenMoreThan65534Entries) {
  std::vector<Plain> samples;
  for (int i = 0; i < 70000; ++i) {
    samples.push_back({fmt::format("{}/{:05}", i % 10, i), {{"cls", std::to_string(i % 10)}}});
  }
  std::sort(samples.begin(), samples.end(),
            [](const Plain& a, const Plain& b) { return a.key < b.key; });
  const std::string path = Path("many.zip");
  Write(path, samples);
  const std::string zip = ReadBytes(path);
  // The zip64 end record and locator precede the end record, whose count
  // holds 0xffff.
  ASSERT_GT(zip.size(), kEndSize + kLocatorSize + kEnd64Size);
  EXPECT_EQ(DecodeFixed32(zip.data() + zip.size() - kEndSize - kLocatorSize), kLocatorSig);
  EXPECT_EQ(DecodeFixed32(zip.data() + zip.size() - kEndSize - kLocatorSize - kEnd64Size),
            kEnd64Sig);
  EXPECT_EQ(zip.substr(zip.size() - kEndSize + 8, 4), "\xff\xff\xff\xff");
  auto r = MustOpen(path);
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->num_samples(), samples.size());
  EXPECT_TRUE(r->keys_sorted());
  std::mt19937 rng(1);
  Sample s;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t k = rng() % samples.size();
    ASSERT_TRUE(r->Read(k, &s).ok());
    EXPECT_EQ(s.key, samples[k].key);
    EXPECT_EQ(s.fields.at(0).data, samples[k].fields[0].second);
    EXPECT_EQ(*r->Find(samples[k].key), k);
  }
  // Python's zipfile reads the zip64 records too.
  if (RunShell("python3 -c 'import zipfile' 2>/dev/null") == 0) {
    EXPECT_EQ(RunShell(fmt::format(
                  "python3 -c \"import zipfile,sys; z=zipfile.ZipFile('{}'); "
                  "sys.exit(len(z.infolist())!=70000 or z.testzip() is not None)\"",
                  path)),
              0);
  }
}

TEST_F(ZipTest, PeersReadEveryEntryIdentically) {
  if (RunShell("command -v unzip >/dev/null && python3 -c 'import zipfile'") != 0) {
    GTEST_SKIP() << "unzip or python3 missing (scripts/install-deps.sh installs them)";
  }
  const auto samples = Samples();
  for (int level : {0, 6}) {
    SCOPED_TRACE(level);
    const std::string path = Path(fmt::format("peer{}.zip", level));
    Write(path, samples, level);
    EXPECT_EQ(RunShell(fmt::format("unzip -tqq '{}'", path)), 0);
    // Python lists the entries in order and reads each one's bytes (name,
    // then a NUL, then the bytes' hex).
    const std::string listing = Path(fmt::format("peer{}.txt", level));
    ASSERT_EQ(RunShell(fmt::format(
                  "python3 -c \"import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); "
                  "assert z.testzip() is None; "
                  "sys.stdout.buffer.write(b''.join(i.filename.encode()+b'\\0'+"
                  "z.read(i).hex().encode()+b'\\n' for i in z.infolist()))\" '{}' > '{}'",
                  path, listing)),
              0);
    std::string want;
    for (const Plain& p : samples) {
      for (const auto& [field, data] : p.fields) {
        std::string hex;
        for (unsigned char c : data) hex += fmt::format("{:02x}", c);
        want += (field.empty() ? p.key : p.key + "." + field) + std::string(1, '\0') + hex + "\n";
      }
    }
    EXPECT_EQ(ReadBytes(listing), want);
  }
}

TEST_F(ZipTest, ConcurrentReadsFromOneReader) {
  std::vector<Plain> samples;
  for (int i = 0; i < 500; ++i) {
    samples.push_back({fmt::format("s/{:04}", i), {{"txt", std::string(100 + i, 'a' + i % 26)},
                                                   {"cls", std::to_string(i % 7)}}});
  }
  const std::string path = Path("threads.zip");
  Write(path, samples, 6);
  auto r = MustOpen(path);
  ASSERT_NE(r, nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      Sample s;
      for (int i = 0; i < 2000; ++i) {
        const uint64_t k = rng() % samples.size();
        auto f = r->Find(samples[k].key);
        if (!f.ok() || *f != k || !r->Read(k, &s).ok() || s.fields.size() != 2 ||
            s.fields[0].data != samples[k].fields[0].second) {
          ++bad;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

// ---- Reading archives others wrote ----

TEST_F(ZipTest, DirectoriesAndSymlinksAreEntriesNotSamples) {
  RawEntry dir = Stored("d/", "");
  dir.external_attrs = uint32_t{040755} << 16 | 0x10;
  RawEntry link = Stored("d/link.txt", "../target");
  link.external_attrs = uint32_t{0120777} << 16;
  const std::string path =
      WriteZip("mixed.zip", BuildZip({dir, Stored("d/1.txt", "one"), link,
                                      Deflated("d/1.json", "{\"a\": 1}")}));
  auto r = MustOpen(path);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ReadAll(*r), (std::vector<Plain>{{"d/1", {{"txt", "one"}, {"json", "{\"a\": 1}"}}}}));
  std::vector<std::string> seen;
  Status s = zip::ForEachEntry(path, ReadOptions(), [&](const ArchiveEntry& e,
                                                   const EntryDataReader& read) -> Status {
    auto data = read(1 << 20);
    EXPECT_TRUE(data.ok()) << data.status().ToString();
    seen.push_back(fmt::format("{} {} {} {:o} {} '{}' '{}'", e.name, EntryTypeName(e.type),
                               e.typeflag, e.mode, e.size, e.linkname, data.ok() ? *data : ""));
    return Status::OK();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "d/ dir 5 755 0 '' ''",
                      "d/1.txt file 0 644 3 '' 'one'",
                      "d/link.txt symlink 2 777 9 '../target' '../target'",
                      "d/1.json file 0 644 8 '' '{\"a\": 1}'",
                  }));
}

TEST_F(ZipTest, UnsortedArchiveFindsKeysFast) {
  std::vector<RawEntry> entries;
  std::vector<std::string> keys;
  std::mt19937 rng(5);
  for (int i = 0; i < 5000; ++i) keys.push_back(fmt::format("k{:06}", rng() % 1000000));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::shuffle(keys.begin(), keys.end(), rng);
  for (const std::string& k : keys) entries.push_back(Stored(k + ".txt", k));
  auto r = MustOpen(WriteZip("unsorted.zip", BuildZip(entries)));
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(r->keys_sorted());
  for (size_t i = 0; i < keys.size(); ++i) {
    auto f = r->Find(keys[i]);
    ASSERT_TRUE(f.ok()) << keys[i];
    EXPECT_EQ(*f, i);
  }
  EXPECT_TRUE(r->Find("k").status().IsNotFound());
}

TEST_F(ZipTest, PrependedDataAndCommentsAndJunk) {
  const std::vector<RawEntry> entries = {Stored("a.txt", "alpha"), Deflated("b.txt", "beta")};
  const std::string plain = BuildZip(entries, Comment("a comment"));
  const std::vector<Plain> want = {{"a", {{"txt", "alpha"}}}, {"b", {{"txt", "beta"}}}};
  // A self-extractor's stub before the archive, offsets not adjusted (what
  // `cat stub a.zip` makes), and junk after the end record.
  const std::string sfx = WriteZip("sfx", std::string(5000, '\x7f') + plain + "junk\n");
  auto r = MustOpen(sfx);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ReadAll(*r), want);
  VerifyReport report;
  ASSERT_TRUE(r->Verify(&report).ok());
  EXPECT_TRUE(report.ok()) << report.problems.front();
  auto detected = DetectFormat(sfx);
  ASSERT_TRUE(detected.ok()) << detected.status().ToString();
  EXPECT_EQ(*detected, ShardFormat::kZip);
  // A comment that runs past the end is refused, not skipped.
  std::string cut = plain.substr(0, plain.size() - 3);
  EXPECT_TRUE(Open(WriteZip("cut.zip", cut), ReadOptions()).status().IsCorruption());
}

TEST_F(ZipTest, TarHoldingAZipIsATar) {
  const std::string zip = BuildZip({Stored("a.txt", "alpha")});
  const std::string inner = WriteZip("inner.zip", zip);
  const std::string tar = Path("outer.tar");
  ASSERT_EQ(RunShell(fmt::format("tar cf '{}' -C '{}' inner.zip", tar, dir_)), 0);
  auto detected = DetectFormat(tar);
  ASSERT_TRUE(detected.ok());
  EXPECT_EQ(*detected, ShardFormat::kTar);
}

TEST_F(ZipTest, UnsupportedMethodsNameTheEntry) {
  RawEntry bz = Stored("b.bin", "BZh91AY&SY");
  bz.method = 12;
  RawEntry enc = Stored("e.bin", "0123456789ab");
  enc.flags = kFlagEncrypted;
  auto r = MustOpen(WriteZip("methods.zip", BuildZip({bz, enc, Stored("ok.txt", "fine")})));
  ASSERT_NE(r, nullptr);
  Sample s;
  Status st = r->Read(0, &s);
  EXPECT_EQ(st.code(), Status::Code::kNotSupported);
  EXPECT_NE(st.message().find("'b.bin'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("bzip2"), std::string::npos) << st.message();
  st = r->Read(1, &s);
  EXPECT_EQ(st.code(), Status::Code::kNotSupported);
  EXPECT_NE(st.message().find("encrypted"), std::string::npos) << st.message();
  ASSERT_TRUE(r->Read(2, &s).ok());
  VerifyReport report;
  ASSERT_TRUE(r->Verify(&report).ok());
  EXPECT_EQ(report.problems.size(), 2u);
}

// ---- Hostile and damaged archives ----

// The corruption harness (tests/test_corruption.py) flipped bits of a central
// header's method and flags: reads said "not supported" (exit 1) or would
// have decoded the bytes the wrong way. The local header, read anyway, must
// agree on both: a disagreement is Corruption naming the entry.
TEST_F(ZipTest, CentralMethodOrEncryptionDamageIsCorruption) {
  const std::string zip = BuildZip({Stored("a.bin", "alpha"), Stored("b.bin", "beta")});
  const size_t cd = zip.find("PK\1\2");
  ASSERT_NE(cd, std::string::npos);
  struct Damage {
    size_t at;
    uint8_t mask;
  };
  for (Damage d : {Damage{cd + 10, 0x0c}, Damage{cd + 11, 0x80}, Damage{cd + 8, 0x01},
                   Damage{cd + 8, 0x40}}) {
    SCOPED_TRACE(fmt::format("byte {} ^ {:#x}", d.at - cd, d.mask));
    std::string bad = zip;
    bad[d.at] ^= d.mask;
    auto r = MustOpen(WriteZip("central.zip", bad));
    ASSERT_NE(r, nullptr);
    Sample s;
    Status st = r->Read(0, &s);
    EXPECT_TRUE(st.IsCorruption()) << st.ToString();
    EXPECT_NE(st.message().find("'a.bin'"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("disagrees"), std::string::npos) << st.message();
    ASSERT_TRUE(r->Read(1, &s).ok());
    EXPECT_EQ(s.fields[0].data, "beta");
  }
}

TEST_F(ZipTest, CrcMismatchIsCorruption) {
  const std::string path = Path("crc.zip");
  Write(path, {{"a", {{"txt", "some bytes to damage"}}}});
  std::string zip = ReadBytes(path);
  const size_t at = zip.find("damage");
  ASSERT_NE(at, std::string::npos);
  zip[at] ^= 1;
  WriteBytes(path, zip);
  auto r = MustOpen(path);
  ASSERT_NE(r, nullptr);
  Sample s;
  Status st = r->Read(0, &s);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("CRC-32"), std::string::npos);
  EXPECT_NE(st.message().find("'a.txt'"), std::string::npos);
  VerifyReport report;
  ASSERT_TRUE(r->Verify(&report).ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("'a.txt'"), std::string::npos);
  // Without checksums the stored bytes are returned as they are.
  ReadOptions fast;
  fast.verify_checksums = false;
  auto unchecked = MustOpen(path, fast);
  ASSERT_TRUE(unchecked->Read(0, &s).ok());
  // A damaged deflate stream never yields bytes.
  const std::string path2 = Path("crc2.zip");
  Write(path2, {{"b", {{"txt", std::string(5000, 'x') + "tail"}}}}, 9);
  zip = ReadBytes(path2);
  zip[kLocalSize + 5 + 3] ^= 0x55;
  WriteBytes(path2, zip);
  auto d = MustOpen(path2, fast);
  st = d->Read(0, &s);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
}

TEST_F(ZipTest, TruncatedCentralDirectory) {
  const std::string zip = BuildZip(
      {Stored("a.txt", "alpha"), Stored("b.txt", "beta"), Stored("c.txt", "gamma")});
  // Cut the second central header out; the end record still says three.
  const size_t cd = zip.find("PK\1\2");
  const size_t second = zip.find("PK\1\2", cd + 1);
  const size_t third = zip.find("PK\1\2", second + 1);
  std::string bad = zip.substr(0, second) + zip.substr(third);
  auto r = Open(WriteZip("trunc.zip", bad), ReadOptions());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  // Every prefix of a zip fails cleanly or reads (never crashes).
  for (size_t n = 0; n < zip.size(); ++n) {
    const std::string p = WriteZip("prefix.zip", zip.substr(0, n));
    auto o = Open(p, ReadOptions());
    if (o.ok()) ReadAll(**o);
    (void)zip::ForEachEntry(p, ReadOptions(), [](const ArchiveEntry&, const EntryDataReader& read) {
      return read(1 << 20).status();
    });
  }
}

TEST_F(ZipTest, EntryCountTooLargeForTheFile) {
  const std::string zip = BuildZip({Stored("a.txt", "alpha")}, Count(60000));
  auto r = Open(WriteZip("count.zip", zip), ReadOptions());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  ReadOptions few;
  few.max_entries = 3;
  std::vector<RawEntry> entries;
  for (int i = 0; i < 5; ++i) entries.push_back(Stored(fmt::format("{}.txt", i), "x"));
  const std::string five = WriteZip("five.zip", BuildZip(entries));
  r = Open(five, few);
  EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted) << r.status().ToString();
  EXPECT_NE(r.status().message().find("--max-entries"), std::string::npos);
  // The end record may undercount (a wrapped 16-bit count): the headers
  // found still may not pass the limit.
  r = Open(WriteZip("five1.zip", BuildZip(entries, Count(1))), few);
  EXPECT_FALSE(r.ok());
}

TEST_F(ZipTest, EntryClaiming16EiBIsRefusedBeforeInflating) {
  RawEntry e = Deflated("huge.bin", "tiny");
  e.size = ~uint64_t{0};
  e.zip64_size = true;
  const std::string path = WriteZip("huge.zip", BuildZip({e}));
  auto r = MustOpen(path);
  ASSERT_NE(r, nullptr);
  Sample s;
  Status st = r->Read(0, &s);
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted) << st.ToString();
  EXPECT_NE(st.message().find("'huge.bin'"), std::string::npos);
  EXPECT_NE(st.message().find("--max-field-bytes"), std::string::npos);
  st = zip::ForEachEntry(path, ReadOptions(), [](const ArchiveEntry& a, const EntryDataReader& read) {
    EXPECT_EQ(a.size, ~uint64_t{0});
    return read(~uint64_t{0}).status();
  });
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted) << st.ToString();
  // Stored, the same claim is simply false.
  RawEntry stored = Stored("huge.bin", "tiny");
  stored.size = ~uint64_t{0};
  stored.zip64_size = true;
  auto r2 = MustOpen(WriteZip("huge2.zip", BuildZip({stored})));
  EXPECT_TRUE(r2->Read(0, &s).IsCorruption());
}

TEST_F(ZipTest, DeflateBombIsRefusedWithBoundedMemory) {
  // 256 MiB of zeros deflate to about 256 KiB: 1000:1.
  constexpr uint64_t kSize = uint64_t{256} << 20;
  z_stream zs{};
  ASSERT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  const std::string zeros(1 << 20, '\0');
  std::string stream(1 << 20, '\0');
  uint64_t crc = crc32_z(0, nullptr, 0);
  zs.next_out = reinterpret_cast<Bytef*>(stream.data());
  zs.avail_out = static_cast<uInt>(stream.size());
  for (uint64_t done = 0; done < kSize; done += zeros.size()) {
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zeros.data()));
    zs.avail_in = static_cast<uInt>(zeros.size());
    crc = crc32_z(crc, reinterpret_cast<const Bytef*>(zeros.data()), zeros.size());
    ASSERT_EQ(deflate(&zs, done + zeros.size() == kSize ? Z_FINISH : Z_NO_FLUSH),
              done + zeros.size() == kSize ? Z_STREAM_END : Z_OK);
  }
  stream.resize(zs.total_out);
  deflateEnd(&zs);
  ASSERT_GT(kSize / stream.size(), 900u);
  RawEntry e;
  e.name = "bomb.bin";
  e.method = 8;
  e.crc = static_cast<uint32_t>(crc);
  e.size = kSize;
  e.stored = stream;
  const std::string path = WriteZip("bomb.zip", BuildZip({e}));
  const uint64_t rss_before = MaxRss();
  auto r = MustOpen(path);
  ASSERT_NE(r, nullptr);
  Sample s;
  Status st = r->Read(0, &s);
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted) << st.ToString();
  EXPECT_NE(st.message().find("--max-ratio"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("'bomb.bin'"), std::string::npos) << st.message();
  st = zip::ForEachEntry(path, ReadOptions(), [](const ArchiveEntry&, const EntryDataReader& read) {
    return read(~uint64_t{0}).status();
  });
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted) << st.ToString();
  // Nothing near the claimed size was allocated.
  EXPECT_LT(MaxRss() - rss_before, kSize / 4);
  // A trusted archive can raise the limit, and then it reads.
  ReadOptions trusted;
  trusted.max_ratio = 2000;
  auto t = MustOpen(path, trusted);
  ASSERT_TRUE(t->Read(0, &s).ok());
  EXPECT_EQ(s.fields.at(0).data.size(), kSize);
}

TEST_F(ZipTest, LongerOrShorterStreamsAreCorruption) {
  RawEntry longer = Deflated("long.txt", "0123456789");
  longer.size = 5;
  longer.crc = Crc("01234");
  RawEntry shorter = Deflated("short.txt", "0123456789");
  shorter.size = 20;
  auto r = MustOpen(WriteZip("len.zip", BuildZip({longer, shorter})));
  Sample s;
  Status st = r->Read(0, &s);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("more than"), std::string::npos);
  st = r->Read(1, &s);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("fewer than"), std::string::npos);
}

TEST_F(ZipTest, OverlappingEntriesAreReported) {
  // Three central headers for one local header: the non-recursive zip bomb.
  const std::string data(1000, 'z');
  RawEntry first = Deflated("f0.bin", data);
  std::vector<RawEntry> entries = {first};
  for (int i = 1; i < 3; ++i) {
    RawEntry again = first;
    again.name = fmt::format("f{}.bin", i);
    again.stored.clear();
    again.offset = 0;
    entries.push_back(again);
  }
  // The headers must describe the shared bytes.
  std::string zip = BuildZip(entries);
  for (size_t at = zip.find("PK\1\2"); at != std::string::npos; at = zip.find("PK\1\2", at + 1)) {
    const uint32_t csize = static_cast<uint32_t>(first.stored.size());
    std::memcpy(zip.data() + at + 20, &csize, 4);
  }
  auto r = MustOpen(WriteZip("overlap.zip", zip));
  ASSERT_NE(r, nullptr);
  VerifyReport report;
  ASSERT_TRUE(r->Verify(&report).ok());
  int overlaps = 0;
  for (const std::string& p : report.problems) {
    if (p.find("overlaps") != std::string::npos) ++overlaps;
  }
  EXPECT_EQ(overlaps, 2) << (report.problems.empty() ? "" : report.problems.front());
}

// One deflated stream under many central headers: each entry passes every
// per-entry limit, but together they inflate the same stored bytes again and
// again (64 MiB from a 1 MiB file here, terabytes with larger claims; one
// sample's fields were decoded into one buffer sized for all the claims).
// Their stored sizes add up to more than the file: refused when the central
// directory is read, before anything is inflated.
TEST_F(ZipTest, EntriesSharingStoredBytesAreRefusedBeforeInflating) {
  std::string data(1 << 20, '\0');
  std::mt19937 rng(3);
  for (char& c : data) c = static_cast<char>(rng());  // incompressible: ratio 1
  RawEntry first = Deflated("k.f0", data);
  std::vector<RawEntry> entries = {first};
  for (int i = 1; i < 64; ++i) {
    RawEntry again = first;
    again.name = fmt::format("{}.f{}", i % 2 ? "k" : "other", i);
    again.stored.clear();
    again.offset = 0;
    entries.push_back(again);
  }
  std::string zip = BuildZip(entries);
  for (size_t at = zip.find("PK\1\2"); at != std::string::npos; at = zip.find("PK\1\2", at + 1)) {
    const uint32_t csize = static_cast<uint32_t>(first.stored.size());
    std::memcpy(zip.data() + at + 20, &csize, 4);
  }
  const std::string path = WriteZip("shared.zip", zip);
  const uint64_t rss_before = MaxRss();
  auto r = Open(path, {});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find(path), std::string::npos);
  EXPECT_NE(r.status().message().find("share bytes"), std::string::npos) << r.status().message();
  uint64_t listed = 0;
  Status st = zip::ForEachEntry(path, ReadOptions(), [&](const ArchiveEntry&, const EntryDataReader& read) {
    ++listed;
    return read(~uint64_t{0}).status();
  });
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_EQ(listed, 1u);  // the first entry alone fits
  EXPECT_LT(MaxRss() - rss_before, uint64_t{16} << 20);

  // Fields of distinct bytes still read, the deflated ones into one buffer.
  RawEntry a = Deflated("k.a", std::string(5000, 'a'));
  RawEntry b = Deflated("k.b", data.substr(0, 3000));
  RawEntry c = Stored("k.c", "plain");
  auto ok = MustOpen(WriteZip("fine.zip", BuildZip({a, b, c})));
  Sample s;
  ASSERT_TRUE(ok->Read(0, &s).ok());
  ASSERT_EQ(s.fields.size(), 3u);
  EXPECT_EQ(s.fields[0].data, std::string(5000, 'a'));
  EXPECT_EQ(s.fields[1].data, data.substr(0, 3000));
  EXPECT_EQ(s.fields[2].data, "plain");
}

TEST_F(ZipTest, LocalHeaderMismatchIsReported) {
  RawEntry e = Stored("name.txt", "data");
  e.local_name = "other.txt";
  auto r = MustOpen(WriteZip("mismatch.zip", BuildZip({e})));
  ASSERT_NE(r, nullptr);
  Sample s;
  EXPECT_TRUE(r->Read(0, &s).ok());  // reads go through the central directory
  VerifyReport report;
  ASSERT_TRUE(r->Verify(&report).ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("disagrees"), std::string::npos) << report.problems[0];
  EXPECT_NE(report.problems[0].find("'name.txt'"), std::string::npos) << report.problems[0];
}

TEST_F(ZipTest, RandomDamageNeverCrashes) {
  std::vector<RawEntry> entries;
  for (int i = 0; i < 6; ++i) {
    entries.push_back(i % 2 ? Deflated(fmt::format("d/{}.txt", i), std::string(300, 'a' + i))
                            : Stored(fmt::format("d/{}.bin", i), std::string(50, 'b' + i)));
  }
  const std::string zip = BuildZip(entries, Comment("c"));
  std::mt19937 rng(42);
  for (int round = 0; round < 1500; ++round) {
    std::string bad = zip;
    for (int k = 0; k < 1 + round % 4; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
    const std::string p = WriteZip("damaged.zip", bad);
    ReadOptions o;
    o.max_ratio = 1;  // also exercises the limits
    auto r = Open(p, o);
    if (r.ok()) {
      Sample s;
      for (uint64_t i = 0; i < (*r)->num_samples(); ++i) (void)(*r)->Read(i, &s);
      VerifyReport report;
      EXPECT_TRUE((*r)->Verify(&report).ok());
    }
    (void)zip::ForEachEntry(p, o, [](const ArchiveEntry&, const EntryDataReader& read) {
      return read(1 << 20).status();
    });
  }
}

TEST_F(ZipTest, UnsafeNamesReadAsKeysButNeverExtractOutside) {
  const std::string zip = BuildZip({Stored("ok.txt", "fine"), Stored("../evil.txt", "evil"),
                                    Stored("/abs.txt", "abs")});
  const std::string path = WriteZip("unsafe.zip", zip);
  auto r = MustOpen(path);
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->num_samples(), 3u);
  EXPECT_EQ(*r->Key(1), "../evil");
  EXPECT_EQ(*r->Key(2), "/abs");
  fs::create_directories(Path("jail"));
  auto ds = View::Open(path);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  auto extracted = Extract(**ds, Path("jail/out"));
  EXPECT_EQ(extracted.status().code(), Status::Code::kInvalidArgument)
      << extracted.status().ToString();
  // Nothing beside the target folder, nothing at the root.
  std::vector<std::string> in_jail;
  for (const auto& e : fs::directory_iterator(Path("jail"))) {
    in_jail.push_back(e.path().filename().string());
  }
  EXPECT_TRUE(in_jail.empty() || in_jail == std::vector<std::string>{"out"});
  EXPECT_FALSE(fs::exists("/abs.txt"));
  EXPECT_FALSE(fs::exists(Path("evil.txt")));
}

// ---- Conformance corpus ----

// Every zip of ../shared/testdata/archives whose MANIFEST.json says "ok"
// gives exactly the listed names, types, sizes and contents; every "error"
// one fails; the others neither crash nor hang.
TEST_F(ZipTest, ConformanceCorpus) {
  const fs::path root = fs::path(SHARDSET_SHARED_DIR) / "testdata/archives";
  if (!fs::exists(root / "MANIFEST.json")) GTEST_SKIP() << "no corpus at " << root;
  const nlohmann::json manifest = nlohmann::json::parse(ReadBytes((root / "MANIFEST.json").string()));
  // The one expectation shardset does not meet, on purpose: this copy of
  // readme.notzip is Go 1.18's, which failed only because Go then ignored
  // data prepended to a zip. It is readme.zip behind 20 bytes of text, as
  // test-prefix.zip (expected to read) is test.zip behind 43; Go has since
  // replaced the file (docs/formats/zip.md "Deviations").
  const std::set<std::string> deviations = {"zip/go-readme.notzip"};
  int ok = 0, errors = 0, unknown = 0;
  for (const auto& rec : manifest["files"]) {
    const std::string file = rec["file"];
    if (file.rfind("zip/", 0) != 0) continue;
    SCOPED_TRACE(file);
    const std::string path = (root / file).string();
    const nlohmann::json& expected = rec["expected"];
    const std::string result =
        expected.is_object() ? expected.value("result", "unknown") : "unknown";
    std::vector<ArchiveEntry> got;
    std::vector<std::string> contents;
    Status st = zip::ForEachEntry(path, ReadOptions(),
                             [&](const ArchiveEntry& e, const EntryDataReader& read) -> Status {
                               got.push_back(e);
                               SHARDSET_ASSIGN_OR_RETURN(std::string data, read(1 << 20));
                               contents.push_back(std::move(data));
                               return Status::OK();
                             });
    auto r = Open(path, ReadOptions());
    if (r.ok()) {
      Sample s;
      for (uint64_t i = 0; i < (*r)->num_samples(); ++i) (void)(*r)->Read(i, &s);
      VerifyReport report;
      EXPECT_TRUE((*r)->Verify(&report).ok());
    }
    if (deviations.count(file)) continue;
    if (result == "error") {
      ++errors;
      EXPECT_FALSE(st.ok()) << "read " << got.size() << " entries";
      EXPECT_FALSE(r.ok());
      continue;
    }
    if (result != "ok" || !expected["entries"].is_array()) {
      ++unknown;
      continue;
    }
    ++ok;
    ASSERT_TRUE(st.ok()) << st.ToString();
    const nlohmann::json& want = expected["entries"];
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      SCOPED_TRACE(got[i].name);
      EXPECT_EQ(got[i].name, want[i]["name"].get<std::string>());
      if (want[i].contains("size")) {
        EXPECT_EQ(got[i].size, want[i]["size"].get<uint64_t>());
      }
      if (want[i].contains("content")) {
        EXPECT_EQ(contents[i], want[i]["content"].get<std::string>());
      }
      const std::string type = want[i].value("type", "file");
      EXPECT_EQ(EntryTypeName(got[i].type), type == "directory" ? "dir" : type);
      // libarchive's test of zip64b asserts the mode its streaming reader
      // makes up (0664, local headers hold none); the central directory,
      // which shardset and libarchive's seeking reader use, says 0660.
      if (want[i].contains("mode") && file != "zip/libarchive-test_read_format_zip_zip64b.zip") {
        // "0644", "0777 (symlink)", "0100660": the permission bits.
        const std::string mode = want[i]["mode"];
        EXPECT_EQ(got[i].mode, std::stoul(mode.substr(0, mode.find(' ')), nullptr, 8) & 07777);
      }
    }
  }
  EXPECT_GE(ok, 25);
  EXPECT_EQ(errors, 1);  // go-comment-truncated.zip
  EXPECT_GE(unknown, 30);
}

}  // namespace
}  // namespace shardset::zip
