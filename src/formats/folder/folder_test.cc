// Tests of folder shards: a folder of loose files indexed in place
// (docs/formats/folder-index.md). Round trips of small trees, files changed,
// deleted or moved after indexing, hostile and damaged indexes, and (when
// SHARDSET_FOLDER_TREE names a folder) a timing run over a real tree.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/coding.h"
#include "base/file.h"
#include "base/hash.h"
#include "formats/folder/folder_shard.h"
#include "formats/probe.h"
#include "index/index.h"
#include "shardset/shard.h"
#include "testing/test_util.h"

namespace shardset::folder {
namespace {

using namespace shardset::test;  // NOLINT: the shared test helpers

namespace fs = std::filesystem;

class FolderTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    root_ = Path("root");
    fs::create_directories(root_);
  }

  // Writes `bytes` at root/rel, creating folders.
  void Put(const std::string& rel, std::string_view bytes) {
    const fs::path p = fs::path(root_) / rel;
    fs::create_directories(p.parent_path());
    WriteBytes(p.string(), bytes);
  }

  Result<uint64_t> Index(IndexOptions o = {}) {
    o.sync = false;
    return WriteIndex(root_, Path("ds.fidx"), o);
  }

  std::unique_ptr<ShardReader> OpenOk(const ReadOptions& ro = {}) {
    auto r = Open(Path("ds.fidx"), ro);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }

  std::string root_;
};

// A header as docs/formats/folder-index.md "Header" specifies it, written
// independently of the library's encoder.
std::string SpecHeader(uint32_t flags, uint64_t data_size, std::string_view root) {
  std::string h("\x89SHFIDX\n", 8);
  PutFixed32(&h, 1);
  PutFixed32(&h, flags);
  PutFixed64(&h, data_size);
  PutFixed32(&h, static_cast<uint32_t>(root.size()));
  h.append(root);
  PutFixed32(&h, static_cast<uint32_t>(Xxh3(h)));
  return h;
}

TEST_F(FolderTest, RoundTripOfANestedTree) {
  Put("a/0001.png", "png-1");
  Put("a/0001.txt", "text one");
  Put("a/0002.png", "png-2");
  Put("a/b/c/deep.seg.png", "deep");
  Put("README", "no extension");
  Put("README.md", "# readme");
  Put("name.", "trailing dot");
  Put(".hidden", "dot file");
  Put("..txt", "key is '.'");
  Put("empty.bin", "");
  uint64_t calls = 0, last_bytes = 0;
  IndexOptions o;
  o.progress = [&](uint64_t samples, uint64_t bytes) {
    EXPECT_EQ(samples, ++calls);
    last_bytes = bytes;
  };
  auto n = Index(o);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 8u);
  EXPECT_EQ(calls, 8u);
  EXPECT_EQ(last_bytes, 72u);  // the sum of the file sizes
  auto r = OpenOk();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->format(), ShardFormat::kFolder);
  EXPECT_EQ(r->path(), Path("ds.fidx"));
  EXPECT_EQ(r->file_size(), fs::file_size(Path("ds.fidx")));
  EXPECT_TRUE(r->keys_sorted());
  const std::vector<Plain> want = {
      {".", {{"txt", "key is '.'"}}},
      {".hidden", {{"", "dot file"}}},
      {"README", {{"", "no extension"}, {"md", "# readme"}}},
      {"a/0001", {{"png", "png-1"}, {"txt", "text one"}}},
      {"a/0002", {{"png", "png-2"}}},
      {"a/b/c/deep", {{"seg.png", "deep"}}},
      {"empty", {{"bin", ""}}},
      {"name.", {{"", "trailing dot"}}},
  };
  EXPECT_EQ(ReadAll(*r), want);
  for (uint64_t i = 0; i < want.size(); ++i) {
    auto key = r->Key(i);
    ASSERT_TRUE(key.ok());
    EXPECT_EQ(*key, want[i].key);
    auto found = r->Find(want[i].key);
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    EXPECT_EQ(*found, i);
  }
  EXPECT_TRUE(r->Find("a/0003").status().IsNotFound());
  Sample s;
  EXPECT_TRUE(r->Read(want.size(), &s).IsNotFound());
  VerifyReport report;
  ASSERT_TRUE(r->Verify(&report).ok());
  EXPECT_TRUE(report.ok()) << report.problems[0];
  EXPECT_EQ(report.samples_checked, want.size());
}

TEST_F(FolderTest, FieldFilesNameTheOriginalFiles) {
  Put("cat/0001.png", "png");
  Put("cat/0001.txt", "txt");
  Put("..txt", "dots");
  ASSERT_TRUE(Index().ok());
  auto r = OpenOk();
  ASSERT_NE(r, nullptr);
  const std::string real_root = fs::canonical(root_).string();
  auto files = r->FieldFiles(1);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].name, "png");
  EXPECT_EQ((*files)[0].path, real_root + "/cat/0001.png");
  EXPECT_EQ((*files)[0].size, 3u);
  EXPECT_EQ((*files)[0].flags, 0);
  EXPECT_EQ((*files)[1].path, real_root + "/cat/0001.txt");
  for (const FieldFile& f : *files) EXPECT_EQ(ReadBytes(f.path).size(), f.size);
  files = r->FieldFiles(0);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ((*files)[0].path, real_root + "/..txt");
  EXPECT_TRUE(r->FieldFiles(2).status().IsNotFound());
}

TEST_F(FolderTest, LabelFromDirIsDerivedNotStored) {
  Put("training/3/17.png", "seventeen");
  Put("training/3/18.png", "eighteen");
  Put("testing/10/1.png", "one");
  IndexOptions o;
  o.label_from_dir = true;
  ASSERT_TRUE(Index(o).ok());
  auto r = OpenOk();
  ASSERT_NE(r, nullptr);
  const std::vector<Plain> want = {
      {"testing/10/1", {{"png", "one"}, {"cls", "10"}}},
      {"training/3/17", {{"png", "seventeen"}, {"cls", "3"}}},
      {"training/3/18", {{"png", "eighteen"}, {"cls", "3"}}},
  };
  EXPECT_EQ(ReadAll(*r), want);
  Sample s;
  ASSERT_TRUE(r->Read(1, &s).ok());
  EXPECT_EQ(s.fields[0].flags, 0);
  EXPECT_EQ(s.fields[1].flags, kFieldDerived);
  auto files = r->FieldFiles(1);
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[1].name, "cls");
  EXPECT_EQ((*files)[1].path, "");
  EXPECT_EQ((*files)[1].size, 1u);
  EXPECT_EQ((*files)[1].flags, kFieldDerived);
  // The same tree without labels: the labels cost the index nothing.
  const uint64_t labelled = fs::file_size(Path("ds.fidx"));
  ASSERT_TRUE(Index().ok());
  EXPECT_EQ(fs::file_size(Path("ds.fidx")), labelled);
}

TEST_F(FolderTest, LabelFromDirRefusesWhatPackRefuses) {
  IndexOptions o;
  o.label_from_dir = true;
  Put("top.png", "no folder");
  auto n = Index(o);
  EXPECT_EQ(n.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(n.status().message().find("not inside a folder"), std::string::npos);
  fs::remove(fs::path(root_) / "top.png");
  Put("cat/1.png", "x");
  Put("cat/1.cls", "y");
  n = Index(o);
  EXPECT_EQ(n.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(n.status().message().find("already has a cls field"), std::string::npos);
  EXPECT_FALSE(fs::exists(Path("ds.fidx")));
}

TEST_F(FolderTest, EmptyFolder) {
  auto n = Index();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 0u);
  auto r = OpenOk();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->num_samples(), 0u);
  VerifyReport report;
  ASSERT_TRUE(r->Verify(&report).ok());
  EXPECT_TRUE(report.ok());
}

TEST_F(FolderTest, ChangedFilesAreCorruptionDeletedAreNotFound) {
  Put("0.txt", "zero");
  Put("1.txt", "one");
  Put("2.txt", "two");
  Put("3.txt", "three");
  ASSERT_TRUE(Index().ok());
  auto r = OpenOk();
  ASSERT_NE(r, nullptr);
  Put("1.txt", "ONE");       // same size, other bytes
  Put("2.txt", "two!");      // other size
  fs::remove(fs::path(root_) / "3.txt");
  Sample s;
  ASSERT_TRUE(r->Read(0, &s).ok());
  Status st = r->Read(1, &s);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("1.txt"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("sample 1 (key '1')"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("changed since it was indexed"), std::string::npos);
  EXPECT_NE(st.message().find("re-run shardset dataset create"), std::string::npos);
  st = r->Read(2, &s);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("4 bytes, the index records 3"), std::string::npos) << st.message();
  st = r->Read(3, &s);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_NE(st.message().find("3.txt: no such file"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("sample 3 (key '3')"), std::string::npos) << st.message();
  // Without checksums the same-size change goes unseen, the others do not.
  ReadOptions no_checksums;
  no_checksums.verify_checksums = false;
  auto fast = OpenOk(no_checksums);
  ASSERT_NE(fast, nullptr);
  EXPECT_TRUE(fast->Read(1, &s).ok());
  EXPECT_TRUE(fast->Read(2, &s).IsCorruption());
  // Verify reports every problem, one line each.
  VerifyReport report;
  ASSERT_TRUE(r->Verify(&report).ok());
  EXPECT_EQ(report.samples_checked, 4u);
  ASSERT_EQ(report.problems.size(), 3u);
  for (const std::string& p : report.problems) EXPECT_EQ(p.find('\n'), std::string::npos);
}

TEST_F(FolderTest, AFifoInPlaceOfAFileDoesNotHang) {
  Put("e.txt", "");
  ASSERT_TRUE(Index().ok());
  auto r = OpenOk();
  ASSERT_NE(r, nullptr);
  const std::string file = (fs::path(root_) / "e.txt").string();
  fs::remove(file);
  ASSERT_EQ(::mkfifo(file.c_str(), 0600), 0);
  Sample s;
  Status st = r->Read(0, &s);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("no longer a regular file"), std::string::npos) << st.message();
}

TEST_F(FolderTest, MovedFolderIsNotFoundAtOpen) {
  Put("x.txt", "x");
  ASSERT_TRUE(Index().ok());
  fs::rename(root_, Path("elsewhere"));
  auto r = Open(Path("ds.fidx"), {});
  ASSERT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  const std::string& m = r.status().message();
  EXPECT_NE(m.find(Path("ds.fidx")), std::string::npos) << m;
  EXPECT_NE(m.find(fs::weakly_canonical(Path("root")).string()), std::string::npos) << m;
  EXPECT_NE(m.find("the folder was moved or deleted: re-run shardset dataset create"),
            std::string::npos)
      << m;
  // A file where the folder was is the same mistake.
  WriteBytes(Path("root"), "not a folder");
  EXPECT_TRUE(Open(Path("ds.fidx"), {}).status().IsNotFound());
}

TEST_F(FolderTest, SymlinksInsideTheFolderAreFollowed) {
  // Seed 000's sources are symlink trees: files and folders linked from
  // elsewhere.
  fs::create_directories(Path("data/sub"));
  WriteBytes(Path("data/a.png"), "linked file");
  WriteBytes(Path("data/sub/b.png"), "in a linked folder");
  fs::create_symlink(Path("data/a.png"), fs::path(root_) / "a.png");
  fs::create_symlink(Path("data/sub"), fs::path(root_) / "sub");
  fs::create_symlink(Path("data/missing.png"), fs::path(root_) / "broken.png");
  std::vector<std::string> skipped;
  IndexOptions o;
  o.skipped = &skipped;
  ASSERT_TRUE(Index(o).ok());
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("broken symlink"), std::string::npos) << skipped[0];
  auto r = OpenOk();
  ASSERT_NE(r, nullptr);
  const std::vector<Plain> want = {{"a", {{"png", "linked file"}}},
                                   {"sub/b", {{"png", "in a linked folder"}}}};
  EXPECT_EQ(ReadAll(*r), want);
  auto files = r->FieldFiles(0);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ((*files)[0].path, fs::canonical(root_).string() + "/a.png");
}

TEST_F(FolderTest, UnreadableFilesAreSkippedOnlyWhenAsked) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  Put("a.txt", "a");
  Put("b.txt", "b");
  const std::string b = (fs::path(root_) / "b.txt").string();
  ASSERT_EQ(::chmod(b.c_str(), 0), 0);
  auto n = Index();
  EXPECT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("--skip-unreadable"), std::string::npos);
  std::vector<std::string> skipped;
  IndexOptions o;
  o.skip_unreadable = true;
  o.skipped = &skipped;
  n = Index(o);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1u);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("b.txt"), std::string::npos);
}

TEST_F(FolderTest, IndexInsideTheFolderIsRefused) {
  Put("a.txt", "a");
  IndexOptions o;
  o.sync = false;
  auto n = WriteIndex(root_, (fs::path(root_) / "ds.fidx").string(), o);
  EXPECT_EQ(n.status().code(), Status::Code::kInvalidArgument) << n.status().ToString();
  EXPECT_NE(n.status().message().find("inside the folder it indexes"), std::string::npos);
  fs::create_directories(fs::path(root_) / "sub" / "ds");
  n = WriteIndex(root_, (fs::path(root_) / "sub/ds/folder-000000.fidx").string(), o);
  EXPECT_EQ(n.status().code(), Status::Code::kInvalidArgument);
  // A sibling whose name merely starts with the folder's is outside it.
  fs::create_directories(Path("root2"));
  EXPECT_TRUE(WriteIndex(root_, Path("root2/ds.fidx"), o).ok());
}

TEST_F(FolderTest, WhatIsNotAFolderOfLooseFilesIsRefused) {
  EXPECT_TRUE(WriteIndex(Path("nope"), Path("ds.fidx"), {}).status().IsNotFound());
  WriteBytes(Path("file"), "x");
  EXPECT_EQ(WriteIndex(Path("file"), Path("ds.fidx"), {}).status().code(),
            Status::Code::kInvalidArgument);
  Put("manifest.json", "{}");
  auto n = WriteIndex(root_, Path("ds.fidx"), {});
  EXPECT_EQ(n.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(n.status().message().find("dataset"), std::string::npos);
}

TEST_F(FolderTest, MaxFieldBytesIsCheckedBeforeReading) {
  Put("big.bin", std::string(1000, 'x'));
  ASSERT_TRUE(Index().ok());
  ReadOptions ro;
  ro.max_field_bytes = 999;
  auto r = OpenOk(ro);
  ASSERT_NE(r, nullptr);
  Sample s;
  Status st = r->Read(0, &s);
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted) << st.ToString();
  EXPECT_NE(st.message().find("--max-field-bytes"), std::string::npos);
}

TEST_F(FolderTest, DetectedByContent) {
  Put("a.txt", "a");
  ASSERT_TRUE(Index().ok());
  auto probe = ReadProbe(Path("ds.fidx"));
  ASSERT_TRUE(probe.ok());
  EXPECT_TRUE(Looks(*probe));
  auto format = DetectFormat(Path("ds.fidx"));
  ASSERT_TRUE(format.ok()) << format.status().ToString();
  EXPECT_EQ(*format, ShardFormat::kFolder);
  auto r = OpenShard(Path("ds.fidx"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(**r), (std::vector<Plain>{{"a", {{"txt", "a"}}}}));
  // Other formats are not folder indexes.
  for (ShardFormat f : {ShardFormat::kNative, ShardFormat::kTar, ShardFormat::kZip}) {
    const std::string path = Path(fmt::format("s{}", FormatExtension(f)));
    WritePlain(path, f, {{"a", {{"txt", "a"}}}}, {});
    auto p = ReadProbe(path);
    ASSERT_TRUE(p.ok());
    EXPECT_FALSE(Looks(*p)) << path;
    EXPECT_TRUE(Open(path, {}).status().IsCorruption()) << path;
  }
  auto empty = ReadProbe(Path("root/a.txt"));
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(Looks(*empty));
}

TEST_F(FolderTest, HostileKeysCannotReadOutsideTheFolder) {
  WriteBytes(Path("secret.txt"), "secret");
  const std::string real_root = fs::canonical(root_).string();
  for (const std::string key : {"../secret", "a/../../secret", "/etc/passwd", "./x", "a//b"}) {
    index::IndexBuilder b(/*contiguous=*/true);
    const uint32_t id = b.FieldId("txt", 0);
    b.Add(key, {index::FieldLoc{id, 0, 6}}, index::SampleChecksum("secret"));
    std::string bytes = SpecHeader(0, 6, real_root);
    bytes += b.Finish(bytes.size());
    WriteBytes(Path("ds.fidx"), bytes);
    auto r = OpenOk();
    ASSERT_NE(r, nullptr);
    Sample s;
    Status st = r->Read(0, &s);
    EXPECT_TRUE(st.IsCorruption()) << key << ": " << st.ToString();
    EXPECT_NE(st.message().find("not a plain relative path"), std::string::npos) << st.message();
    EXPECT_TRUE(r->FieldFiles(0).status().IsCorruption()) << key;
    EXPECT_TRUE(CheckIndex(bytes, "hostile").IsCorruption()) << key;
    VerifyReport report;
    ASSERT_TRUE(r->Verify(&report).ok());
    EXPECT_EQ(report.problems.size(), 1u);
  }
  // A field name cannot climb out either.
  index::IndexBuilder b(/*contiguous=*/true);
  const uint32_t id = b.FieldId("txt/../../../secret", 0);
  b.Add("a", {index::FieldLoc{id, 0, 6}}, index::SampleChecksum("secret"));
  std::string bytes = SpecHeader(0, 6, real_root);
  bytes += b.Finish(bytes.size());
  WriteBytes(Path("ds.fidx"), bytes);
  auto r = OpenOk();
  ASSERT_NE(r, nullptr);
  Sample s;
  EXPECT_TRUE(r->Read(0, &s).IsCorruption());
}

TEST_F(FolderTest, SpecHeaderMatchesTheWriter) {
  Put("a.txt", "abc");
  Put("b.txt", "de");
  ASSERT_TRUE(Index().ok());
  const std::string bytes = ReadBytes(Path("ds.fidx"));
  const std::string header = SpecHeader(0, 5, fs::canonical(root_).string());
  EXPECT_EQ(bytes.substr(0, header.size()), header);
  IndexOptions o;
  o.label_from_dir = true;
  fs::remove_all(root_);
  Put("c/a.txt", "abc");
  ASSERT_TRUE(Index(o).ok());
  const std::string labelled = SpecHeader(1, 3, fs::canonical(root_).string());
  EXPECT_EQ(ReadBytes(Path("ds.fidx")).substr(0, labelled.size()), labelled);
}

TEST_F(FolderTest, DamagedIndexIsAnErrorNeverACrash) {
  Put("a/0001.png", "png-1");
  Put("a/0001.txt", "text one");
  Put("b/0002.png", "png-2");
  Put("c.bin", "c");
  ASSERT_TRUE(Index().ok());
  const std::string good = ReadBytes(Path("ds.fidx"));
  std::vector<Plain> want;
  {
    auto r = OpenOk();
    ASSERT_NE(r, nullptr);
    want = ReadAll(*r);
  }
  EXPECT_TRUE(CheckIndex(good, "good").ok());
  // Every byte is covered by a checksum (header, blocks, field table,
  // directory and footer): every flip is an error at Open or at some Read.
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x20;
    EXPECT_FALSE(CheckIndex(bad, "bad").ok()) << "flip at " << i;
    WriteBytes(Path("ds.fidx"), bad);
    auto r = Open(Path("ds.fidx"), {});
    if (!r.ok()) continue;
    bool failed = false;
    Sample s;
    for (uint64_t o = 0; o < (*r)->num_samples(); ++o) {
      Status st = (*r)->Read(o, &s);
      if (!st.ok()) {
        failed = true;
      } else if (o < want.size()) {
        EXPECT_EQ(ToPlain(s), want[o]) << "flip at " << i;
      }
    }
    EXPECT_TRUE(failed || (*r)->num_samples() != want.size()) << "undetected flip at " << i;
  }
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_TRUE(CheckIndex(good.substr(0, n), "short").IsCorruption()) << n;
    WriteBytes(Path("ds.fidx"), good.substr(0, n));
    auto r = Open(Path("ds.fidx"), {});
    EXPECT_FALSE(r.ok()) << "truncated to " << n;
    if (!r.ok()) {
      EXPECT_TRUE(r.status().IsCorruption()) << n << ": " << r.status().ToString();
    }
  }
}

TEST_F(FolderTest, ManyThreadsReadOneReader) {
  for (int i = 0; i < 200; ++i) {
    Put(fmt::format("d{}/{:04}.txt", i % 7, i), std::string(i, static_cast<char>('a' + i % 26)));
  }
  ASSERT_TRUE(Index().ok());
  auto r = OpenOk();
  ASSERT_NE(r, nullptr);
  const std::vector<Plain> want = ReadAll(*r);
  ASSERT_EQ(want.size(), 200u);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Sample s;
      for (int k = 0; k < 400; ++k) {
        const uint64_t o = (k * 7 + t * 13) % want.size();
        if (!r->Read(o, &s).ok() || !(ToPlain(s) == want[o])) ++bad;
        auto found = r->Find(want[o].key);
        if (!found.ok() || *found != o) ++bad;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

// Timing on a real tree, e.g. the Fashion-MNIST PNG tree:
//   SHARDSET_FOLDER_TREE=/path/to/fmnist shardset_tests --gtest_filter='Folder*Tree*'
TEST_F(FolderTest, IndexesARealTree) {
  const char* tree = std::getenv("SHARDSET_FOLDER_TREE");
  if (tree == nullptr) GTEST_SKIP() << "set SHARDSET_FOLDER_TREE to a folder to time it";
  IndexOptions o;
  o.label_from_dir = std::getenv("SHARDSET_FOLDER_LABEL") != nullptr;
  o.sync = true;
  const auto t0 = std::chrono::steady_clock::now();
  auto n = WriteIndex(tree, Path("tree.fidx"), o);
  const auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  auto r = Open(Path("tree.fidx"), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Sample s;
  uint64_t bytes = 0;
  for (uint64_t i = 0; i < (*r)->num_samples(); ++i) {
    ASSERT_TRUE((*r)->Read(i, &s).ok());
    for (const Field& f : s.fields) bytes += f.data.size();
  }
  const auto t2 = std::chrono::steady_clock::now();
  const uint64_t size = fs::file_size(Path("tree.fidx"));
  std::printf("indexed %llu samples in %.2f s; index %llu bytes (%.2f bytes/sample); read all "
              "%llu bytes back in %.2f s\n",
              static_cast<unsigned long long>(*n), std::chrono::duration<double>(t1 - t0).count(),
              static_cast<unsigned long long>(size), double(size) / std::max<uint64_t>(1, *n),
              static_cast<unsigned long long>(bytes),
              std::chrono::duration<double>(t2 - t1).count());
}

}  // namespace
}  // namespace shardset::folder
