#include "shardset/link.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "formats/folder/folder_shard.h"
#include "shardset/dataset.h"
#include "shardset/pack.h"
#include "shardset/view.h"
#include "testing/test_util.h"

namespace shardset {
namespace {

namespace fs = std::filesystem;
using test::ReadBytes;
using test::WriteBytes;

// Every entry under `dir` (files, symlinks; not folders), relative path ->
// bytes read through it.
std::map<std::string, std::string> TreeFiles(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_directory()) continue;
    out[e.path().lexically_relative(dir).string()] = ReadBytes(e.path().string());
  }
  return out;
}

std::vector<std::string> Names(const std::map<std::string, std::string>& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

bool NoTempLeft(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(".shardset-tmp.", 0) == 0) return false;
  }
  return true;
}

class LinkTest : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    out_dir_ = Path("out");
    fs::create_directory(out_dir_);
  }

  // A loose-file tree under dir_/<name>.
  std::string MakeTree(const std::string& name, const std::map<std::string, std::string>& files) {
    const std::string root = Path(name);
    for (const auto& [rel, bytes] : files) {
      fs::create_directories(fs::path(root) / fs::path(rel).parent_path());
      WriteBytes((fs::path(root) / rel).string(), bytes);
    }
    return root;
  }

  // The folder index of `root` as a one-shard dataset.
  std::string IndexTree(const std::string& root, bool label_from_dir) {
    const std::string idx = root + ".fidx";
    folder::IndexOptions o;
    o.label_from_dir = label_from_dir;
    o.sync = false;
    auto n = folder::WriteIndex(root, idx, o);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return idx;
  }

  std::string PackTree(const std::string& root, bool label_from_dir) {
    const std::string out = root + "-packed";
    PackOptions o;
    o.label_from_dir = label_from_dir;
    o.sync = false;
    auto r = Pack({root}, out, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return out;
  }

  // A view file over named sources with these entries.
  std::string MakeView(const std::string& name,
                       const std::vector<std::pair<std::string, std::string>>& sources,
                       const std::vector<ViewEntry>& entries) {
    std::vector<ViewSource> srcs;
    for (const auto& [sname, target] : sources) {
      auto ds = Dataset::Open(target);
      EXPECT_TRUE(ds.ok()) << ds.status().ToString();
      ViewSource s;
      s.name = sname;
      s.targets = {target};
      s.num_samples = (*ds)->num_samples();
      for (size_t i = 0; i < (*ds)->num_shards(); ++i) {
        const ManifestShard& ms = (*ds)->manifest().shards[i];
        auto h = EdgeHash((*ds)->shard_path(i));
        EXPECT_TRUE(h.ok()) << h.status().ToString();
        s.shards.push_back(
            ViewShard{ms.path, ms.format, ms.num_samples, ms.file_size, h.ok() ? *h : 0});
      }
      srcs.push_back(std::move(s));
    }
    const std::string path = Path(name);
    auto w = ViewWriter::Create(path, std::move(srcs), "{}", false);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    for (const ViewEntry& e : entries) EXPECT_TRUE((*w)->Add(e).ok());
    EXPECT_TRUE((*w)->Close().ok());
    return path;
  }

  std::unique_ptr<View> OpenView(const std::string& target) {
    auto v = View::Open(target);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? std::move(*v) : nullptr;
  }

  Result<LinkResult> DoLink(const View& v, const std::string& out, LinkMode mode,
                            LinkLayout layout) {
    LinkOptions o;
    o.mode = mode;
    o.layout = layout;
    o.sync = false;
    return Link(v, out, o);
  }

  // Fashion-MNIST-like: training/<label>/<n>.png, bytes unique per file.
  std::string ClassTree() {
    return MakeTree("fm", {{"training/3/1.png", "png-3-1"},
                           {"training/3/2.png", "png-3-2"},
                           {"training/5/7.png", "png-5-7"},
                           {"testing/3/9.png", "png-3-9"}});
  }

  std::string out_dir_;
};

TEST(LinkParse, ModesAndLayouts) {
  EXPECT_EQ(*ParseLinkMode("symlink"), LinkMode::kSymlink);
  EXPECT_EQ(*ParseLinkMode("hardlink"), LinkMode::kHardlink);
  EXPECT_EQ(*ParseLinkMode("copy"), LinkMode::kCopy);
  EXPECT_EQ(ParseLinkMode("ln").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(*ParseLinkLayout("original"), LinkLayout::kOriginal);
  EXPECT_EQ(*ParseLinkLayout("imagefolder"), LinkLayout::kImageFolder);
  EXPECT_EQ(*ParseLinkLayout("yolo"), LinkLayout::kYolo);
  EXPECT_NE(ParseLinkLayout("coco").status().message().find("original, imagefolder or yolo"),
            std::string::npos);
}

TEST_F(LinkTest, OriginalSymlinksPointAtTheSourceFiles) {
  const std::string root = ClassTree();
  auto v = OpenView(IndexTree(root, /*label_from_dir=*/true));
  const std::string out = Path("out/tree");
  auto r = DoLink(*v, out, LinkMode::kSymlink, LinkLayout::kOriginal);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->samples, 4u);
  EXPECT_EQ(r->files, 4u);  // the derived cls has no file
  EXPECT_EQ(r->bytes_copied, 0u);
  auto files = TreeFiles(out);
  EXPECT_EQ(Names(files), (std::vector<std::string>{"testing/3/9.png", "training/3/1.png",
                                                    "training/3/2.png", "training/5/7.png"}));
  for (const auto& [rel, bytes] : files) {
    const fs::path p = fs::path(out) / rel;
    ASSERT_TRUE(fs::is_symlink(p)) << rel;
    const fs::path target = fs::read_symlink(p);
    EXPECT_TRUE(target.is_absolute()) << target;
    EXPECT_EQ(fs::canonical(target), fs::canonical(fs::path(root) / rel));
    EXPECT_EQ(bytes, ReadBytes((fs::path(root) / rel).string()));
  }
  EXPECT_TRUE(NoTempLeft(Path("out")));
}

TEST_F(LinkTest, HardlinksShareTheSourceInode) {
  const std::string root = ClassTree();
  auto v = OpenView(IndexTree(root, true));
  const std::string out = Path("out/hard");
  auto r = DoLink(*v, out, LinkMode::kHardlink, LinkLayout::kOriginal);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  struct stat a, b;
  ASSERT_EQ(::lstat((out + "/training/5/7.png").c_str(), &a), 0);
  ASSERT_EQ(::stat((root + "/training/5/7.png").c_str(), &b), 0);
  EXPECT_TRUE(S_ISREG(a.st_mode));
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
}

TEST_F(LinkTest, CopyFromPackedShardsWritesTheBytes) {
  const std::string root = ClassTree();
  auto v = OpenView(PackTree(root, true));
  const std::string out = Path("out/copy");
  auto r = DoLink(*v, out, LinkMode::kCopy, LinkLayout::kOriginal);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->files, 4u);
  EXPECT_EQ(r->bytes_copied, 28u);
  auto files = TreeFiles(out);
  EXPECT_EQ(files.size(), 4u);
  for (const auto& [rel, bytes] : files) {
    EXPECT_FALSE(fs::is_symlink(fs::path(out) / rel));
    EXPECT_EQ(bytes, ReadBytes((fs::path(root) / rel).string())) << rel;
  }
}

TEST_F(LinkTest, ImageFolderFromDerivedLabels) {
  const std::string root = ClassTree();
  for (LinkMode mode : {LinkMode::kSymlink, LinkMode::kHardlink, LinkMode::kCopy}) {
    SCOPED_TRACE(static_cast<int>(mode));
    auto v = OpenView(mode == LinkMode::kCopy ? PackTree(root, true) : IndexTree(root, true));
    const std::string out = Path("out/if" + std::to_string(static_cast<int>(mode)));
    auto r = DoLink(*v, out, mode, LinkLayout::kImageFolder);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto files = TreeFiles(out);
    EXPECT_EQ(Names(files), (std::vector<std::string>{"3/testing_3_9.png", "3/training_3_1.png",
                                                      "3/training_3_2.png",
                                                      "5/training_5_7.png"}));
    EXPECT_EQ(files["5/training_5_7.png"], "png-5-7");
    fs::remove_all(root + "-packed");
  }
}

TEST_F(LinkTest, ImageFolderFromALabelFileDoesNotWriteIt) {
  const std::string root = MakeTree("c", {{"a.png", "A"}, {"a.cls", "cat\n"},
                                          {"b.png", "B"}, {"b.cls", "dog"},
                                          {"sub/c.png", "C"}, {"sub/c.cls", "cat"}});
  auto v = OpenView(IndexTree(root, false));
  const std::string out = Path("out/cls");
  auto r = DoLink(*v, out, LinkMode::kSymlink, LinkLayout::kImageFolder);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto files = TreeFiles(out);
  EXPECT_EQ(Names(files),
            (std::vector<std::string>{"cat/a.png", "cat/sub_c.png", "dog/b.png"}));
  EXPECT_EQ(files["cat/sub_c.png"], "C");
}

TEST_F(LinkTest, ImageFolderLabelField) {
  const std::string root = MakeTree("c", {{"a.png", "A"}, {"a.kind", "x"}});
  auto v = OpenView(IndexTree(root, false));
  auto missing = DoLink(*v, Path("out/t1"), LinkMode::kSymlink, LinkLayout::kImageFolder);
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_NE(missing.status().message().find("--label-field"), std::string::npos)
      << missing.status().ToString();
  EXPECT_FALSE(fs::exists(Path("out/t1")));
  LinkOptions o;
  o.layout = LinkLayout::kImageFolder;
  o.label_field = "kind";
  o.sync = false;
  auto r = Link(*v, Path("out/t2"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Names(TreeFiles(Path("out/t2"))), (std::vector<std::string>{"x/a.png"}));
}

TEST_F(LinkTest, UnsafeLabelsAreRefusedAndNothingIsLeft) {
  for (const std::string label : {"../x", "a/b", "", "..", "tab\there"}) {
    SCOPED_TRACE(label);
    fs::remove_all(Path("c"));
    fs::remove_all(Path("c.fidx"));
    const std::string root = MakeTree("c", {{"a.png", "A"}, {"a.cls", "ok"},
                                            {"b.png", "B"}, {"b.cls", label}});
    auto v = OpenView(IndexTree(root, false));
    for (LinkMode mode : {LinkMode::kSymlink, LinkMode::kCopy}) {
      auto r = DoLink(*v, Path("out/t"), mode, LinkLayout::kImageFolder);
      ASSERT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
      EXPECT_NE(r.status().message().find("sample 1 (key 'b')"), std::string::npos)
          << r.status().ToString();
      EXPECT_FALSE(fs::exists(Path("out/t")));
      EXPECT_TRUE(NoTempLeft(Path("out")));
    }
  }
}

TEST_F(LinkTest, YoloPairsImagesAndLabels) {
  const std::string root = MakeTree("y", {{"train/a.jpg", "A"}, {"train/a.txt", "0 .5 .5 .1 .1"},
                                          {"train/b.jpg", "B"},  // background: no labels file
                                          {"val/a.png", "VA"}, {"val/a.txt", "1 .5 .5 .2 .2"},
                                          {"val/a.json", "{}"}});
  auto v = OpenView(IndexTree(root, false));
  auto r = DoLink(*v, Path("out/yolo"), LinkMode::kSymlink, LinkLayout::kYolo);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto files = TreeFiles(Path("out/yolo"));
  EXPECT_EQ(Names(files), (std::vector<std::string>{"images/train_a.jpg", "images/train_b.jpg",
                                                    "images/val_a.png", "labels/train_a.txt",
                                                    "labels/val_a.txt"}));
  EXPECT_EQ(files["labels/val_a.txt"], "1 .5 .5 .2 .2");
  EXPECT_EQ(r->files, 5u);
}

TEST_F(LinkTest, YoloSampleWithoutImageIsRefused) {
  const std::string root = MakeTree("y", {{"a.jpg", "A"}, {"classes.txt", "cat\n"}});
  auto v = OpenView(IndexTree(root, false));
  auto r = DoLink(*v, Path("out/yolo"), LinkMode::kSymlink, LinkLayout::kYolo);
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("key 'classes'"), std::string::npos)
      << r.status().ToString();
  EXPECT_FALSE(fs::exists(Path("out/yolo")));
}

TEST_F(LinkTest, DuplicatesGetNumberedNamesOnEveryField) {
  const std::string root = MakeTree("y", {{"a.jpg", "A"}, {"a.txt", "0 1 1 1 1"},
                                          {"b.jpg", "B"}});
  const std::string idx = IndexTree(root, false);
  // a, a, b, a: a sample held three times (mix --replace) gets three names.
  const std::string view = MakeView("dup.view", {{"y", idx}}, {{0, 0}, {0, 0}, {0, 1}, {0, 0}});
  auto v = OpenView(view);
  auto r = DoLink(*v, Path("out/yolo"), LinkMode::kSymlink, LinkLayout::kYolo);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->samples, 4u);
  EXPECT_EQ(Names(TreeFiles(Path("out/yolo"))),
            (std::vector<std::string>{"images/a.jpg", "images/a~2.jpg", "images/a~3.jpg",
                                      "images/b.jpg", "labels/a.txt", "labels/a~2.txt",
                                      "labels/a~3.txt"}));
  auto o = DoLink(*v, Path("out/orig"), LinkMode::kCopy, LinkLayout::kOriginal);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(Names(TreeFiles(Path("out/orig"))),
            (std::vector<std::string>{"a.jpg", "a.txt", "a~2.jpg", "a~2.txt", "a~3.jpg",
                                      "a~3.txt", "b.jpg"}));
}

TEST_F(LinkTest, KeysThatFlattenAlikeStayApart) {
  const std::string root = MakeTree("f", {{"a/b_c.png", "1"}, {"a_b/c.png", "2"}});
  auto v = OpenView(IndexTree(root, false));
  auto r = DoLink(*v, Path("out/yolo"), LinkMode::kSymlink, LinkLayout::kYolo);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto files = TreeFiles(Path("out/yolo"));
  EXPECT_EQ(files["images/a_b_c.png"], "1");
  EXPECT_EQ(files["images/a_b_c~2.png"], "2");
}

TEST_F(LinkTest, SeveralSourcesAreNamedBySource) {
  const std::string root = ClassTree();
  const std::string idx = IndexTree(root, true);
  const std::string view = MakeView("mix.view", {{"camvid", idx}, {"synthia", idx}},
                                    {{0, 2}, {1, 2}, {1, 3}});
  auto v = OpenView(view);
  auto orig = DoLink(*v, Path("out/orig"), LinkMode::kSymlink, LinkLayout::kOriginal);
  ASSERT_TRUE(orig.ok()) << orig.status().ToString();
  EXPECT_EQ(Names(TreeFiles(Path("out/orig"))),
            (std::vector<std::string>{"camvid/training/3/2.png", "synthia/training/3/2.png",
                                      "synthia/training/5/7.png"}));
  auto img = DoLink(*v, Path("out/img"), LinkMode::kSymlink, LinkLayout::kImageFolder);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(Names(TreeFiles(Path("out/img"))),
            (std::vector<std::string>{"3/camvid_training_3_2.png", "3/synthia_training_3_2.png",
                                      "5/synthia_training_5_7.png"}));
}

TEST_F(LinkTest, PackedSourcesRefuseLinks) {
  const std::string root = ClassTree();
  auto v = OpenView(PackTree(root, true));
  for (LinkMode mode : {LinkMode::kSymlink, LinkMode::kHardlink}) {
    auto r = DoLink(*v, Path("out/t"), mode, LinkLayout::kOriginal);
    ASSERT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    const std::string& m = r.status().message();
    EXPECT_NE(m.find("native"), std::string::npos) << m;
    EXPECT_NE(m.find("use --mode copy, or shardset mount"), std::string::npos) << m;
    EXPECT_FALSE(fs::exists(Path("out/t")));
    EXPECT_TRUE(NoTempLeft(Path("out")));
  }
}

TEST_F(LinkTest, PackedSourceWithNoEntriesDoesNotStopLinks) {
  const std::string root = ClassTree();
  const std::string idx = IndexTree(root, true);
  const std::string packed = PackTree(root, true);
  auto v = OpenView(MakeView("m.view", {{"loose", idx}, {"packed", packed}}, {{0, 1}}));
  auto r = DoLink(*v, Path("out/t"), LinkMode::kSymlink, LinkLayout::kOriginal);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Names(TreeFiles(Path("out/t"))),
            (std::vector<std::string>{"loose/training/3/1.png"}));
}

TEST_F(LinkTest, ExistingOutIsRefused) {
  const std::string root = ClassTree();
  auto v = OpenView(IndexTree(root, true));
  fs::create_directory(Path("out/there"));
  WriteBytes(Path("out/there/keep"), "x");
  auto r = DoLink(*v, Path("out/there"), LinkMode::kSymlink, LinkLayout::kOriginal);
  EXPECT_EQ(r.status().code(), Status::Code::kAlreadyExists);
  EXPECT_NE(r.status().message().find("exists; remove it or choose another -o"),
            std::string::npos);
  // An empty folder or a dangling symlink is no less in the way.
  fs::create_directory(Path("out/empty"));
  EXPECT_EQ(DoLink(*v, Path("out/empty/"), LinkMode::kSymlink, LinkLayout::kOriginal)
                .status().code(),
            Status::Code::kAlreadyExists);
  fs::create_symlink(Path("nowhere"), Path("out/dangling"));
  EXPECT_EQ(DoLink(*v, Path("out/dangling"), LinkMode::kSymlink, LinkLayout::kOriginal)
                .status().code(),
            Status::Code::kAlreadyExists);
  EXPECT_EQ(ReadBytes(Path("out/there/keep")), "x");
  auto no_parent = DoLink(*v, Path("out/no/such"), LinkMode::kSymlink, LinkLayout::kOriginal);
  EXPECT_EQ(no_parent.status().code(), Status::Code::kNotFound);
  EXPECT_TRUE(NoTempLeft(Path("out")));
}

TEST_F(LinkTest, AFileThatIsAlsoAFolderIsRefusedCleanly) {
  // Sample "a" has the file a.png; sample "a.png/b" needs a folder a.png.
  const std::string packed = Path("k.shard");
  WritePlain(packed, ShardFormat::kNative, {{"a", {{"png", "1"}}}, {"a.png/b", {{"png", "2"}}}},
             {});
  auto v = OpenView(packed);
  auto r = DoLink(*v, Path("out/t"), LinkMode::kCopy, LinkLayout::kOriginal);
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find("key 'a.png/b'"), std::string::npos)
      << r.status().ToString();
  EXPECT_FALSE(fs::exists(Path("out/t")));
  EXPECT_TRUE(NoTempLeft(Path("out")));
}

TEST_F(LinkTest, KeysOutsideTheTreeAreRefusedOrFlattenedInside) {
  for (const std::string key : {"../evil", "/abs/evil", "a//b", "a/./b"}) {
    SCOPED_TRACE(key);
    const std::string shard = Path("evil.shard");
    WritePlain(shard, ShardFormat::kNative, {{"ok", {{"png", "1"}}}, {key, {{"png", "2"}}}}, {});
    auto v = OpenView(shard);
    auto r = DoLink(*v, Path("out/t"), LinkMode::kCopy, LinkLayout::kOriginal);
    ASSERT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find("sample 1"), std::string::npos);
    EXPECT_FALSE(fs::exists(Path("out/t")));
    EXPECT_FALSE(fs::exists(Path("evil.png")));
    EXPECT_TRUE(NoTempLeft(Path("out")));
    // A flat name is one component whatever the key: it stays inside.
    auto y = DoLink(*v, Path("out/y"), LinkMode::kCopy, LinkLayout::kYolo);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    std::string flat = key;
    std::replace(flat.begin(), flat.end(), '/', '_');
    EXPECT_EQ(ReadBytes(Path("out/y/images/" + flat + ".png")), "2");
    fs::remove_all(Path("out/y"));
    fs::remove(shard);
  }
}

TEST_F(LinkTest, ProgressIsReported) {
  const std::string root = ClassTree();
  auto v = OpenView(IndexTree(root, true));
  LinkOptions o;
  o.sync = true;  // the syncfs path too
  uint64_t last = 0;
  o.progress = [&](uint64_t n) { last = n; };
  auto r = Link(*v, Path("out/p"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(last, 4u);
}

TEST_F(LinkTest, ListWritesOnePathPerSample) {
  const std::string root = MakeTree("y", {{"a.jpg", "A"}, {"a.txt", "t"}, {"b.png", "B"},
                                          {"b.txt", "u"}});
  auto v = OpenView(IndexTree(root, false));
  const std::string list = Path("out/list.txt");
  auto n = WriteList(*v, list, {});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2u);
  const std::string abs = fs::canonical(root).string();
  EXPECT_EQ(ReadBytes(list), abs + "/a.jpg\n" + abs + "/b.png\n");
  ListOptions txt;
  txt.field = "txt";
  ASSERT_TRUE(WriteList(*v, list, txt).ok());  // overwrites
  EXPECT_EQ(ReadBytes(list), abs + "/a.txt\n" + abs + "/b.txt\n");
  ListOptions none;
  none.field = "json";
  auto missing = WriteList(*v, list, none);
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_NE(missing.status().message().find("sample 0 (key 'a')"), std::string::npos)
      << missing.status().ToString();
}

TEST_F(LinkTest, ListNeedsAFieldChoiceWhenNoImage) {
  const std::string root = MakeTree("t", {{"a.txt", "t"}, {"a.json", "{}"}, {"b.txt", "u"}});
  auto v = OpenView(IndexTree(root, false));
  auto r = WriteList(*v, Path("out/l"), {});
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("--field"), std::string::npos);
  EXPECT_FALSE(fs::exists(Path("out/l")));
}

TEST_F(LinkTest, ListRefusesDerivedAndPacked) {
  const std::string root = ClassTree();
  auto loose = OpenView(IndexTree(root, true));
  ListOptions cls;
  cls.field = "cls";
  EXPECT_EQ(WriteList(*loose, Path("out/l"), cls).status().code(),
            Status::Code::kInvalidArgument);
  auto packed = OpenView(PackTree(root, true));
  auto r = WriteList(*packed, Path("out/l"), {});
  EXPECT_EQ(r.status().code(), Status::Code::kNotSupported);
  EXPECT_NE(r.status().message().find("link --mode copy"), std::string::npos)
      << r.status().ToString();
  EXPECT_FALSE(fs::exists(Path("out/l")));
  EXPECT_TRUE(NoTempLeft(Path("out")));
}

}  // namespace
}  // namespace shardset
