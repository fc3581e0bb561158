// Tests of the tsv format: columns, base64, the reader with each source of
// row offsets (.lineidx.8b, .lineidx, a scan), stale line indexes, the writer
// and `shardset index`.
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/coding.h"
#include "base/hash.h"
#include "formats/probe.h"
#include "formats/tsv/tsv_columns.h"
#include "formats/tsv/tsv_shard.h"
#include "shardset/shard.h"
#include "testing/test_util.h"

namespace shardset::tsv {
namespace {

using namespace shardset::test;  // NOLINT: the shared test helpers

namespace fs = std::filesystem;

// ---- Helpers ----

std::string B64(std::string_view bytes) {
  std::string out;
  Base64Append(bytes, &out);
  return out;
}

std::string Unb64(std::string_view text) {
  EXPECT_EQ(Base64Problem(text), "") << text;
  std::string out(Base64DecodedSize(text), '\0');
  Base64Decode(text, out.data());
  return out;
}

// Deterministic bytes that start like a PNG (binary, not text).
std::string FakePng(int seed, size_t size = 300) {
  std::string s = "\x89PNG\r\n\x1a\n";
  std::mt19937 rng(seed);
  while (s.size() < size) s.push_back(static_cast<char>(rng()));
  return s;
}

Probe ProbeOf(std::string_view bytes) {
  Probe p;
  p.size = bytes.size();
  p.head = std::string(bytes.substr(0, Probe::kHeadBytes));
  return p;
}

class TsvTest : public TempDirTest {
 protected:
  ShardInfo Write(const std::string& path, const std::vector<Plain>& samples, bool index = true) {
    WriteOptions opt;
    opt.sidecar_index = index;
    return WritePlain(path, ShardFormat::kTsv, samples, opt);
  }

  std::unique_ptr<ShardReader> MustOpen(const std::string& path, ReadOptions ro = {}) {
    auto r = Open(path, ro);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }

  std::vector<Plain> ReadAll(const ShardReader& r) {
    std::vector<Plain> out;
    Sample s;
    for (uint64_t i = 0; i < r.num_samples(); ++i) {
      Status st = r.Read(i, &s);
      EXPECT_TRUE(st.ok()) << st.ToString();
      out.push_back(ToPlain(s));
    }
    return out;
  }

  // Keeps only the named sidecars of `tsv` ("8b", "text" or none).
  void KeepSidecars(const std::string& tsv, bool binary, bool text) {
    const std::vector<std::string> paths = SidecarPaths(tsv);
    if (!text) fs::remove(paths[0]);
    if (!binary) fs::remove(paths[1]);
  }

};

std::vector<Plain> SomeSamples(int n) {
  std::vector<Plain> v;
  for (int i = 0; i < n; ++i) {
    v.push_back({fmt::format("train/{:05d}", i),
                 {{"png", FakePng(i, 100 + i % 37)}, {"cls", std::to_string(i % 10)}}});
  }
  return v;
}

// ---- Base64 and columns ----

TEST(TsvBase64Test, MatchesRfc4648Vectors) {
  // RFC 4648 section 10.
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},         {"f", "Zg=="},        {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, enc] : vectors) {
    EXPECT_EQ(B64(plain), enc);
    EXPECT_EQ(Base64DecodedSize(enc), plain.size());
    EXPECT_EQ(Unb64(enc), plain);
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(Unb64(B64(all)), all);
}

TEST(TsvBase64Test, StrictValidation) {
  EXPECT_EQ(Base64Problem("Zm9vYg=="), "");
  EXPECT_NE(Base64Problem("Zm9vYg"), "");     // padding required
  EXPECT_NE(Base64Problem("Zm9vYg="), "");    // length
  EXPECT_NE(Base64Problem("Zm9v Yg="), "");   // space
  EXPECT_NE(Base64Problem("Zm=vYmFy"), "");   // '=' inside
  EXPECT_NE(Base64Problem("Zm9vY==="), "");   // three '='
  EXPECT_NE(Base64Problem("Zm9v-_Fy"), "");   // URL-safe alphabet
  EXPECT_NE(Base64Problem("Zm9vYmFy\n"), "");  // line break
  EXPECT_NE(Base64Problem("===="), "");
  EXPECT_EQ(Base64Problem("Zm9v!mFy"), "byte 0x21 at position 4 is not in the base64 alphabet");
}

TEST(TsvColumnsTest, SpecParses) {
  auto c = ParseColumnSpec("key, cls ,png:b64,-,x:derived:b64");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->size(), 5u);
  EXPECT_EQ((*c)[1], (ColumnDef{"cls", false, false, false}));
  EXPECT_EQ((*c)[2], (ColumnDef{"png", true, false, false}));
  EXPECT_TRUE((*c)[3].skip);
  EXPECT_EQ((*c)[4], (ColumnDef{"x", true, true, false}));
  for (const char* bad : {"cls,png:b64", "key,png:b65", "key,,png", "key,a,a", "key,a:", ""}) {
    auto r = ParseColumnSpec(bad);
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("--tsv-columns"), std::string::npos) << bad;
  }
  EXPECT_TRUE(ParseColumnSpec("key,-,-").ok());  // skips may repeat
}

TEST(TsvColumnsTest, HeaderRoundTripsAndVersions) {
  std::vector<ColumnDef> cols{{"key"}, {"cls", false, true}, {"png", true}, {"seg.png", true}};
  const std::string h = FormatHeader(cols);
  EXPECT_EQ(h, "#shardset-tsv/1\tcls:derived\tpng:b64\tseg.png:b64");
  auto back = ParseHeader(h);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, cols);
  EXPECT_EQ(ParseHeader("#shardset-tsv/2\tpng:b64").status().code(), Status::Code::kNotSupported);
  EXPECT_EQ(ParseHeader("#shardset-tsv/1\tpng:zstd").status().code(),
            Status::Code::kNotSupported);
  EXPECT_EQ(ParseHeader("#shardset-tsv/x\tpng").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(ParseHeader("#shardset-tsv/1\tpng\tpng").status().code(), Status::Code::kCorruption);
}

// The guess rule, docs/formats/tsv.md "Guessed columns".
TEST(TsvColumnsTest, GuessRule) {
  std::vector<std::string> store;
  std::vector<std::vector<std::string_view>> rows;
  store.reserve(1000);
  for (int i = 0; i < 8; ++i) {
    const size_t base = store.size();
    store.push_back(fmt::format("k{}", i));
    store.push_back(std::to_string(i * 3));                                   // cls
    store.push_back(B64(FakePng(i)));                                         // png
    store.push_back(fmt::format("[{{\"class\": \"dog\", \"rect\": [{}]}}]", i));  // json
    store.push_back("0123456789abcdef0123456789abcdef");                      // md5: text
    store.push_back(B64("plain text, base64 encoded: still text"));           // text
    store.push_back("abc");                                                   // short: text
    store.push_back(B64(std::string("\xff\xd8\xff\xe0", 4) + FakePng(i)));    // jpg
    store.push_back(B64(FakePng(i)));                                         // png again
    store.push_back(i % 2 ? B64(FakePng(i)) : B64("GIF89a" + FakePng(i)));    // mixed: bin
    store.push_back(i == 5 ? "" : "caption");                                 // txt
    rows.emplace_back();
    for (size_t k = base; k < store.size(); ++k) rows.back().push_back(store[k]);
  }
  rows.push_back({"short row"});  // ignored: another column count
  std::vector<ColumnDef> g = GuessColumns(rows);
  ASSERT_EQ(g.size(), 11u);
  std::vector<std::string> names;
  for (const ColumnDef& c : g) names.push_back(c.name + (c.b64 ? ":b64" : ""));
  EXPECT_EQ(names, (std::vector<std::string>{"key", "cls", "2.png:b64", "json", "4.txt",
                                             "5.txt", "6.txt", "jpg:b64", "8.png:b64", "bin:b64",
                                             "10.txt"}));
  EXPECT_EQ(GuessColumns({}).size(), 1u);
}

TEST(TsvLooksTest, ClaimsTsvOnly) {
  EXPECT_TRUE(Looks(ProbeOf("k1\t3\tiVBORw0KGgo=\nk2\t4\tiVBORw0KGgo=\n")));
  EXPECT_TRUE(Looks(ProbeOf("k1\t3\r\nk2\t4")));                // CRLF, no final newline
  EXPECT_TRUE(Looks(ProbeOf("#shardset-tsv/1\n")));             // empty shard
  EXPECT_TRUE(Looks(ProbeOf("k\t" + std::string(100000, 'A'))));  // first line longer than the probe
  EXPECT_FALSE(Looks(ProbeOf("")));
  EXPECT_FALSE(Looks(ProbeOf("0\n57\n114\n")));                 // a .lineidx
  EXPECT_FALSE(Looks(ProbeOf(std::string("\x39\0\0\0\0\0\0\0", 8))));  // a .lineidx.8b
  EXPECT_FALSE(Looks(ProbeOf("hello world\nno tabs here\n")));
  EXPECT_FALSE(Looks(ProbeOf("all:\tbuild\n\tcc -o x x.c\n\nclean:\n")));  // a Makefile
  EXPECT_FALSE(Looks(ProbeOf("a\tb\nc\td\x01\n")));              // a control byte
  // One damaged row in twenty is still a tsv (reading it names the row).
  std::string damaged;
  for (int i = 0; i < 20; ++i) damaged += i == 7 ? "k7\n" : fmt::format("k{}\t{}\tx\n", i, i);
  EXPECT_TRUE(Looks(ProbeOf(damaged)));
}

TEST(TsvSidecarTest, NamesFollowTsvFile) {
  // TSVFile: op.splitext(tsv_file)[0] + '.lineidx' and + '.lineidx.8b'.
  EXPECT_EQ(SidecarPaths("d/train.tsv"),
            (std::vector<std::string>{"d/train.lineidx", "d/train.lineidx.8b"}));
  EXPECT_EQ(SidecarPaths("d/train.img.tsv")[0], "d/train.img.lineidx");
  EXPECT_EQ(SidecarPaths("d.x/train")[0], "d.x/train.lineidx");
  EXPECT_EQ(SidecarPaths("d/.tsv")[0], "d/.tsv.lineidx");
  EXPECT_EQ(SidecarPaths("d/..a.tsv")[0], "d/..a.lineidx");
}

// ---- Round trips ----

TEST_F(TsvTest, RoundTripWithEachRowSource) {
  std::vector<Plain> samples = SomeSamples(200);
  samples[7].fields[1].second = "";  // an empty text field
  const std::string tsv = Path("a.tsv");
  const ShardInfo info = Write(tsv, samples);
  const std::string bytes = ReadBytes(tsv);
  EXPECT_EQ(info.format, ShardFormat::kTsv);
  EXPECT_EQ(info.num_samples, 200u);
  EXPECT_EQ(info.file_size, bytes.size());
  EXPECT_EQ(info.xxh3, Xxh3(bytes));
  EXPECT_EQ(info.first_key, "train/00000");
  EXPECT_EQ(info.last_key, "train/00199");
  EXPECT_EQ(bytes.substr(0, bytes.find('\n')), "#shardset-tsv/1\tpng:b64\tcls");
  EXPECT_TRUE(Looks(ProbeOf(bytes)));
  // The line indexes: what TSVFile's tsv_writer writes.
  std::string text, binary;
  for (size_t pos = bytes.find('\n') + 1; pos < bytes.size(); pos = bytes.find('\n', pos) + 1) {
    text += std::to_string(pos) + "\n";
    PutFixed64(&binary, pos);
  }
  EXPECT_EQ(ReadBytes(Path("a.lineidx")), text);
  EXPECT_EQ(ReadBytes(Path("a.lineidx.8b")), binary);

  for (int mode = 0; mode < 3; ++mode) {
    SCOPED_TRACE(mode);
    if (mode == 1) KeepSidecars(tsv, /*binary=*/false, /*text=*/true);
    if (mode == 2) KeepSidecars(tsv, false, false);
    auto r = MustOpen(tsv);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->num_samples(), 200u);
    EXPECT_EQ(ReadAll(*r), samples);
    auto k = r->Find("train/00123");
    ASSERT_TRUE(k.ok());
    EXPECT_EQ(*k, 123u);
    EXPECT_TRUE(r->Find("train/0012").status().IsNotFound());
    EXPECT_EQ(*r->Key(199), "train/00199");
    EXPECT_TRUE(r->Read(200, nullptr).IsNotFound());
    VerifyReport rep;
    ASSERT_TRUE(r->Verify(&rep).ok());
    EXPECT_TRUE(rep.ok()) << rep.problems[0];
    EXPECT_EQ(rep.samples_checked, 200u);
  }
  // shardset index rebuilds both, byte for byte.
  auto n = WriteIndex(tsv, {}, false);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 200u);
  EXPECT_EQ(ReadBytes(Path("a.lineidx")), text);
  EXPECT_EQ(ReadBytes(Path("a.lineidx.8b")), binary);
}

TEST_F(TsvTest, DerivedFlagAndEmptyShard) {
  WriteOptions opt;
  opt.sync = false;
  auto w = Create(Path("d.tsv"), opt);
  ASSERT_TRUE(w.ok());
  InputSample s{"a", {InputField{"png", FakePng(1)}, InputField{"cls", "4", kFieldDerived}}};
  ASSERT_TRUE((*w)->Add(s).ok());
  ASSERT_TRUE((*w)->Close().ok());
  auto r = MustOpen(Path("d.tsv"));
  Sample out;
  ASSERT_TRUE(r->Read(0, &out).ok());
  EXPECT_EQ(out.fields[1].flags, kFieldDerived);
  EXPECT_EQ(out.fields[0].flags, 0);

  const ShardInfo info = Write(Path("e.tsv"), {});
  EXPECT_EQ(info.num_samples, 0u);
  EXPECT_EQ(ReadBytes(Path("e.tsv")), "#shardset-tsv/1\n");
  EXPECT_EQ(ReadBytes(Path("e.lineidx")), "");
  for (bool sidecars : {true, false}) {
    if (!sidecars) KeepSidecars(Path("e.tsv"), false, false);
    auto e = MustOpen(Path("e.tsv"));
    ASSERT_TRUE(e);
    EXPECT_EQ(e->num_samples(), 0u);
  }
}

TEST_F(TsvTest, ForeignFileCrlfLastLineAndEmptyFields) {
  const std::string png = FakePng(3);
  // No header: columns are guessed. CRLF lines, an empty middle field, and a
  // last line without a newline.
  const std::string body = "k0\t\t" + B64(png) + "\r\n" + "k1\tx y\t" + B64(png + "1") + "\r\n" +
                           "k2\tz\t" + B64(png + "22");
  WriteBytes(Path("f.tsv"), body);
  ASSERT_TRUE(Looks(ProbeOf(body)));
  for (int mode = 0; mode < 3; ++mode) {
    SCOPED_TRACE(mode);
    if (mode == 0) {
      ASSERT_TRUE(WriteIndex(Path("f.tsv"), {}, false).ok());
      EXPECT_EQ(ReadBytes(Path("f.lineidx")),
                fmt::format("0\n{}\n{}\n", body.find("k1"), body.find("k2")));
    }
    if (mode == 1) KeepSidecars(Path("f.tsv"), false, true);
    if (mode == 2) KeepSidecars(Path("f.tsv"), false, false);
    auto r = MustOpen(Path("f.tsv"));
    ASSERT_TRUE(r);
    EXPECT_EQ(ReadAll(*r), (std::vector<Plain>{{"k0", {{"txt", ""}, {"png", png}}},
                                               {"k1", {{"txt", "x y"}, {"png", png + "1"}}},
                                               {"k2", {{"txt", "z"}, {"png", png + "22"}}}}));
    EXPECT_EQ(*r->Find("k2"), 2u);
  }
}

TEST_F(TsvTest, ColumnsOptionOverridesHeaderAndGuess) {
  const std::string png = FakePng(5);
  WriteBytes(Path("g.tsv"), "a\t7\t" + B64(png) + "\n");
  ReadOptions ro;
  ro.tsv_columns = "key,label,-";
  auto r = MustOpen(Path("g.tsv"), ro);
  EXPECT_EQ(ReadAll(*r), (std::vector<Plain>{{"a", {{"label", "7"}}}}));
  ro.tsv_columns = "key,label:b64,img:b64";  // "7" is not base64
  r = MustOpen(Path("g.tsv"), ro);
  Sample s;
  Status st = r->Read(0, &s);
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("check --tsv-columns"), std::string::npos) << st.ToString();
  ro.tsv_columns = "key,label";  // too few
  auto bad = Open(Path("g.tsv"), ro);
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("row 0 has 3"), std::string::npos);
  // Over a header, too.
  Write(Path("h.tsv"), {{"a", {{"png", png}, {"cls", "1"}}}});
  ro.tsv_columns = "key,image:b64,label";
  r = MustOpen(Path("h.tsv"), ro);
  EXPECT_EQ(ReadAll(*r), (std::vector<Plain>{{"a", {{"image", png}, {"label", "1"}}}}));
}

// ---- Damage ----

TEST_F(TsvTest, StaleLineIndexIsRefused) {
  const std::string tsv = Path("s.tsv");
  Write(tsv, SomeSamples(50));
  const std::string orig = ReadBytes(tsv);
  const std::string binary = ReadBytes(Path("s.lineidx.8b"));
  // The file grew after indexing: caught at open with either sidecar.
  WriteBytes(tsv, orig + "train/99999\t" + B64(FakePng(9)) + "\t1\n");
  for (bool use_binary : {true, false}) {
    SCOPED_TRACE(use_binary);
    if (!use_binary) KeepSidecars(tsv, false, true);
    auto r = Open(tsv, {});
    ASSERT_TRUE(r.status().IsCorruption()) << r.status().ToString();
    EXPECT_NE(r.status().message().find("rerun shardset index " + tsv), std::string::npos);
    EXPECT_NE(r.status().message().find(use_binary ? "s.lineidx.8b" : "s.lineidx"),
              std::string::npos);
  }
  // An offset in the middle that is not a row start: caught when that row
  // (or the one before it) is read, and by verify.
  WriteBytes(tsv, orig);
  std::string moved = binary;
  const uint64_t off = DecodeFixed64(binary.data() + 8 * 20);
  std::string eight;
  PutFixed64(&eight, off + 5);
  moved.replace(8 * 20, 8, eight);
  WriteBytes(Path("s.lineidx.8b"), moved);
  auto r = MustOpen(tsv);
  Sample s;
  EXPECT_TRUE(r->Read(19, &s).IsCorruption());
  Status st = r->Read(20, &s);
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("row 20"), std::string::npos) << st.ToString();
  EXPECT_TRUE(r->Read(21, &s).ok());
  VerifyReport rep;
  ASSERT_TRUE(r->Verify(&rep).ok());
  ASSERT_EQ(rep.problems.size(), 1u);
  EXPECT_NE(rep.problems[0].find("s.lineidx.8b does not match"), std::string::npos);
  // Offsets past the end, decreasing, or a bad size.
  std::string past = binary;
  PutFixed64(&past, orig.size() + 100);
  WriteBytes(Path("s.lineidx.8b"), past);
  EXPECT_TRUE(Open(tsv, {}).status().IsCorruption());
  WriteBytes(Path("s.lineidx.8b"), binary.substr(0, binary.size() - 3));
  EXPECT_NE(Open(tsv, {}).status().message().find("not a multiple of 8"), std::string::npos);
  fs::remove(Path("s.lineidx.8b"));
  WriteBytes(Path("s.lineidx"), "80\n40\n");
  EXPECT_NE(Open(tsv, {}).status().message().find("not after the previous one"),
            std::string::npos);
  WriteBytes(Path("s.lineidx"), "0\nabc\n");
  EXPECT_NE(Open(tsv, {}).status().message().find("line 2: 'abc' is not a byte offset"),
            std::string::npos);
  // A line index that lists the header line (from a tool that does not know it).
  std::string with_header = "0\n";
  for (size_t pos = orig.find('\n') + 1; pos < orig.size(); pos = orig.find('\n', pos) + 1) {
    with_header += std::to_string(pos) + "\n";
  }
  WriteBytes(Path("s.lineidx"), with_header);
  auto h = Open(tsv, {});
  EXPECT_TRUE(h.status().IsCorruption());
  EXPECT_NE(h.status().message().find("first row starts at byte 0"), std::string::npos)
      << h.status().ToString();
  // shardset index repairs all of it.
  ASSERT_TRUE(WriteIndex(tsv, {}, false).ok());
  EXPECT_EQ(ReadAll(*MustOpen(tsv)), SomeSamples(50));
}

// Readers accept a .lineidx with blanks, CRs or no last newline (TSVFile's
// int(line.strip())); the corruption harness cut the last newline off one and
// verify passed it. Verify wants the exact bytes `shardset index` writes.
// The corruption harness damaged a line index (and zeroed pages across line
// ends): Find of a key in a row that no longer reads said "no row with key",
// as if the key were absent. It is Corruption naming the damage now.
TEST_F(TsvTest, FindInADamagedFileIsCorruptionNotNotFound) {
  const std::string tsv = Path("f.tsv");
  Write(tsv, SomeSamples(50));
  std::string binary = ReadBytes(Path("f.lineidx.8b"));
  std::string eight;
  PutFixed64(&eight, DecodeFixed64(binary.data() + 8 * 20) + 5);
  binary.replace(8 * 20, 8, eight);
  WriteBytes(Path("f.lineidx.8b"), binary);
  auto r = MustOpen(tsv);
  auto found = r->Find("train/00030");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, 30u);
  for (const char* key : {"train/00020", "train/00019", "no-such-key"}) {
    auto f = r->Find(key);
    ASSERT_FALSE(f.ok()) << key;
    EXPECT_TRUE(f.status().IsCorruption()) << f.status().ToString();
    EXPECT_NE(f.status().message().find("the file is damaged"), std::string::npos)
        << f.status().ToString();
    EXPECT_NE(f.status().message().find("row 19"), std::string::npos) << f.status().ToString();
  }
  // An intact file still says NotFound.
  Write(Path("g.tsv"), SomeSamples(5));
  EXPECT_TRUE(MustOpen(Path("g.tsv"))->Find("no-such-key").status().IsNotFound());
}

TEST_F(TsvTest, VerifyWantsTheTextLineIndexAsWritten) {
  const std::string tsv = Path("t.tsv");
  Write(tsv, SomeSamples(20));
  KeepSidecars(tsv, false, true);  // the text index only
  const std::string text = ReadBytes(Path("t.lineidx"));
  ASSERT_EQ(text.back(), '\n');
  std::string crlf;
  for (char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  for (const std::string& variant :
       {text.substr(0, text.size() - 1), " " + text, crlf}) {
    WriteBytes(Path("t.lineidx"), variant);
    auto r = MustOpen(tsv);
    EXPECT_EQ(ReadAll(*r), SomeSamples(20));  // reads as before
    VerifyReport rep;
    ASSERT_TRUE(r->Verify(&rep).ok());
    ASSERT_EQ(rep.problems.size(), 1u);
    EXPECT_NE(rep.problems[0].find("t.lineidx holds the right offsets but not in the form"),
              std::string::npos)
        << rep.problems[0];
  }
  WriteBytes(Path("t.lineidx"), text);
  VerifyReport rep;
  ASSERT_TRUE(MustOpen(tsv)->Verify(&rep).ok());
  EXPECT_TRUE(rep.problems.empty()) << rep.problems[0];
}

TEST_F(TsvTest, InvalidBase64NamesFileRowAndColumn) {
  Write(Path("b.tsv"), SomeSamples(5));
  std::string bytes = ReadBytes(Path("b.tsv"));
  const size_t row3 = bytes.find("train/00003\t") + 12;
  bytes[row3 + 10] = '*';  // same length: the line index stays right
  WriteBytes(Path("b.tsv"), bytes);
  auto r = MustOpen(Path("b.tsv"));
  Sample s;
  Status st = r->Read(3, &s);
  ASSERT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find(Path("b.tsv") + ": row 3 (key 'train/00003'): column 1 ('png')"),
            std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("byte 0x2a at position 10"), std::string::npos);
  VerifyReport rep;
  ASSERT_TRUE(r->Verify(&rep).ok());
  ASSERT_EQ(rep.problems.size(), 1u);
  EXPECT_EQ(rep.samples_checked, 5u);
}

TEST_F(TsvTest, ColumnCountMismatch) {
  const std::string body = "a\t1\tx\nb\t2\nc\t3\tz\td\n";
  WriteBytes(Path("c.tsv"), body);
  auto r = MustOpen(Path("c.tsv"));
  Sample s;
  EXPECT_TRUE(r->Read(0, &s).ok());
  Status st = r->Read(1, &s);
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("row 1 (key 'b'): has 2 columns but the file has 3"),
            std::string::npos)
      << st.ToString();
  VerifyReport rep;
  ASSERT_TRUE(r->Verify(&rep).ok());
  EXPECT_EQ(rep.problems.size(), 2u);
  // A header that disagrees with the first row.
  WriteBytes(Path("d.tsv"), "#shardset-tsv/1\tcls\n" + body);
  auto d = Open(Path("d.tsv"), {});
  EXPECT_TRUE(d.status().IsCorruption());
  EXPECT_NE(d.status().message().find("header line names 2 columns but row 0 has 3"),
            std::string::npos);
}

// ---- Limits ----

TEST_F(TsvTest, LimitsNameTheirFlags) {
  Write(Path("l.tsv"), SomeSamples(10));
  ReadOptions ro;
  ro.max_entries = 9;
  for (int mode = 0; mode < 3; ++mode) {
    SCOPED_TRACE(mode);
    if (mode == 1) KeepSidecars(Path("l.tsv"), false, true);
    if (mode == 2) KeepSidecars(Path("l.tsv"), false, false);
    auto r = Open(Path("l.tsv"), ro);
    EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted);
    EXPECT_NE(r.status().message().find("--max-entries"), std::string::npos);
  }
  EXPECT_EQ(WriteIndex(Path("l.tsv"), ro, false).status().code(),
            Status::Code::kResourceExhausted);
  ro.max_entries = 10;
  ro.max_field_bytes = 120;  // pngs are 100..109 bytes, and one field is larger below
  Write(Path("m.tsv"), {{"a", {{"bin", FakePng(1, 120)}}}, {"b", {{"bin", FakePng(1, 121)}}}});
  auto r = MustOpen(Path("m.tsv"), ro);
  Sample s;
  EXPECT_TRUE(r->Read(0, &s).ok());
  Status st = r->Read(1, &s);
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted);
  EXPECT_NE(st.message().find("--max-field-bytes"), std::string::npos);
  EXPECT_NE(st.message().find("row 1 (key 'b')"), std::string::npos);
}

// A header line of a million distinct columns (7 MB) would be compared
// pairwise before anything else: refused from its cell count first. So is a
// guessed file whose first row has that many cells, and the option.
TEST_F(TsvTest, ColumnCountIsBoundedBeforeColumnsAreParsed) {
  std::string header = "#shardset-tsv/1";
  std::string row = "k";
  for (int i = 0; i < 1000000; ++i) {
    header += fmt::format("\tc{}", i);
    row += "\tx";
  }
  WriteBytes(Path("wide.tsv"), header + "\n" + row + "\n");
  auto r = Open(Path("wide.tsv"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted) << r.status().ToString();
  EXPECT_NE(r.status().message().find(Path("wide.tsv")), std::string::npos);
  EXPECT_NE(r.status().message().find("columns"), std::string::npos);

  WriteBytes(Path("guessed.tsv"), row + "\n" + row + "\n");
  r = Open(Path("guessed.tsv"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted) << r.status().ToString();
  EXPECT_NE(r.status().message().find(Path("guessed.tsv")), std::string::npos);

  // The limit itself: key + 4096 fields reads; one more column does not.
  std::string spec = "key";
  for (uint32_t i = 0; i < index::kMaxFields; ++i) spec += fmt::format(",c{}", i);
  EXPECT_TRUE(ParseColumnSpec(spec).ok());
  EXPECT_EQ(ParseColumnSpec(spec + ",more").status().code(), Status::Code::kInvalidArgument);
  std::string head = "#shardset-tsv/1";
  for (uint32_t i = 0; i < index::kMaxFields; ++i) head += fmt::format("\tc{}", i);
  EXPECT_TRUE(ParseHeader(head).ok());
  EXPECT_EQ(ParseHeader(head + "\tmore").status().code(), Status::Code::kResourceExhausted);
}

// ---- Writer ----

TEST_F(TsvTest, WriterRefusesWhatATsvCannotHold) {
  WriteOptions opt;
  opt.sync = false;
  auto w = Create(Path("w.tsv"), opt);
  ASSERT_TRUE(w.ok());
  auto add = [&](const Plain& p) { return (*w)->Add(ToInput(p)); };
  EXPECT_EQ(add({"a\tb", {{"cls", "1"}}}).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(add({"a\nb", {{"cls", "1"}}}).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(add({"", {{"cls", "1"}}}).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(add({"a", {{"c:s", "1"}}}).code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE(add({"a", {{"cls", "1"}, {"png", FakePng(1)}}}).ok());
  ASSERT_TRUE(add({"b", {{"png", FakePng(2)}, {"cls", "2"}}}).ok());  // order may differ
  Status st = add({"c", {{"cls", "1"}, {"jpg", "x"}}});
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("pack samples with varying fields to native, tar or zip"),
            std::string::npos)
      << st.ToString();
  EXPECT_EQ(add({"c", {{"cls", "1"}}}).code(), Status::Code::kInvalidArgument);
  st = add({"c", {{"cls", "multi\nline"}, {"png", FakePng(3)}}});
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("text column"), std::string::npos);
  // Binary in a text-looking first sample's later samples is fine when the
  // column is base64: its first value was binary.
  ASSERT_TRUE(add({"d", {{"cls", "4"}, {"png", "plain"}}}).ok());
  auto info = (*w)->Close();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->num_samples, 3u);
  EXPECT_EQ(ReadAll(*MustOpen(Path("w.tsv"))),
            (std::vector<Plain>{{"a", {{"cls", "1"}, {"png", FakePng(1)}}},
                                {"b", {{"cls", "2"}, {"png", FakePng(2)}}},
                                {"d", {{"cls", "4"}, {"png", "plain"}}}}));
  // Without sidecars when asked, and never over an existing file.
  Write(Path("n.tsv"), SomeSamples(3), /*index=*/false);
  EXPECT_FALSE(fs::exists(Path("n.lineidx")));
  auto again = Create(Path("n.tsv"), opt);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)->Add(ToInput(SomeSamples(1)[0])).ok());
  EXPECT_EQ((*again)->Close().status().code(), Status::Code::kAlreadyExists);
}

TEST_F(TsvTest, DuplicateKeysFindTheFirstAndReadsAreThreadSafe) {
  std::string body;
  for (int i = 0; i < 500; ++i) body += fmt::format("k{}\t{}\n", i % 250, i);
  WriteBytes(Path("dup.tsv"), body);
  ASSERT_TRUE(WriteIndex(Path("dup.tsv"), {}, false).ok());
  auto r = MustOpen(Path("dup.tsv"));
  EXPECT_EQ(*r->Find("k7"), 7u);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Sample s;
      for (int i = 0; i < 500; ++i) {
        const uint64_t ord = (i * 7 + t) % 500;
        if (!r->Read(ord, &s).ok() || s.fields[0].data != std::to_string(ord)) ++bad;
        if (*r->Find(fmt::format("k{}", ord % 250)) != ord % 250) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace shardset::tsv
