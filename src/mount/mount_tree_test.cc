#include "mount/mount_tree.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "formats/archive_entry.h"
#include "formats/sample_key.h"
#include "shardset/dataset.h"
#include "shardset/link.h"
#include "shardset/pack.h"
#include "shardset/view.h"
#include "testing/test_util.h"

namespace shardset {
namespace {

namespace fs = std::filesystem;
using test::Plain;
using test::ReadBytes;
using test::WriteBytes;

std::vector<Plain> Samples() {
  std::vector<Plain> out;
  for (int i = 0; i < 40; ++i) {
    Plain p;
    p.key = "s" + std::to_string(100 + i);
    p.fields.emplace_back("cls", std::to_string(i % 3));
    p.fields.emplace_back("png", std::string(i * 37 % 1500, static_cast<char>('a' + i % 26)));
    p.fields.emplace_back("txt", i % 4 == 0 ? "" : "t");  // empty files are files too
    out.push_back(std::move(p));
  }
  return out;
}

class MountTreeTest : public test::TempDirTest {
 protected:
  std::unique_ptr<View> Open(const std::string& target) {
    auto v = View::Open(target);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? std::move(*v) : nullptr;
  }

  std::unique_ptr<MountTree> Build(const View& view, LinkLayout layout) {
    MountTree::Options o;
    o.layout = layout;
    auto t = MountTree::Build(view, o, "mnt");
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(*t) : nullptr;
  }

  // Every file of the tree: relative path -> bytes (OpenFile), with each
  // file's size in the tree checked against its bytes.
  static std::map<std::string, std::string> Files(const MountTree& t) {
    std::map<std::string, std::string> out;
    std::vector<std::pair<uint32_t, std::string>> stack{{MountTree::kRoot, ""}};
    while (!stack.empty()) {
      auto [id, prefix] = stack.back();
      stack.pop_back();
      const MountTree::Node& dir = t.node(id);
      for (uint64_t i = 0; i < dir.size; ++i) {
        const uint32_t kid = t.children(id)[i];
        const MountTree::Node& n = t.node(kid);
        const std::string rel = prefix + std::string(t.name(n));
        EXPECT_EQ(t.Lookup("/" + rel), kid) << rel;
        if (n.is_dir) {
          stack.emplace_back(kid, rel + "/");
          continue;
        }
        Sample s;
        auto bytes = t.OpenFile(kid, &s);
        EXPECT_TRUE(bytes.ok()) << rel << ": " << bytes.status().ToString();
        if (!bytes.ok()) continue;
        EXPECT_EQ(bytes->size(), n.size) << rel;
        out[rel] = std::string(*bytes);
      }
    }
    return out;
  }

  // What `shardset link --mode copy` makes of the same view.
  std::map<std::string, std::string> LinkCopy(const View& view, LinkLayout layout,
                                              const std::string& name) {
    LinkOptions o;
    o.mode = LinkMode::kCopy;
    o.layout = layout;
    o.sync = false;
    const std::string out = Path(name);
    auto r = Link(view, out, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::map<std::string, std::string> files;
    if (!r.ok()) return files;
    for (const auto& e : fs::recursive_directory_iterator(out)) {
      if (!e.is_directory()) files[e.path().lexically_relative(out).string()] = ReadBytes(e.path());
    }
    return files;
  }
};

// Stat answers from the index what Read returns, in every format, without
// reading bytes; member times are the archive's own (what tar and unzip
// restore), others the shard file's.
TEST_F(MountTreeTest, StatMatchesReadInEveryFormat) {
  struct Case {
    ShardFormat format;
    int zip_level;
    const char* name;
  };
  for (const Case& c : {Case{ShardFormat::kNative, 0, "a.shard"}, Case{ShardFormat::kTar, 0, "a.tar"},
                        Case{ShardFormat::kZip, 0, "stored.zip"},
                        Case{ShardFormat::kZip, 6, "deflated.zip"},
                        Case{ShardFormat::kTsv, 0, "a.tsv"},
                        Case{ShardFormat::kTarGz, 0, "a.tar.gz"}}) {
    SCOPED_TRACE(c.name);
    WriteOptions wo;
    wo.zip_deflate_level = c.zip_level;
    const std::string path = Path(c.name);
    WritePlain(path, c.format, Samples(), wo);
    auto shard = OpenShard(path);
    ASSERT_TRUE(shard.ok()) << shard.status().ToString();
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    std::map<std::string, int64_t> member_time;
    if (c.format == ShardFormat::kTar || c.format == ShardFormat::kZip) {
      ASSERT_TRUE(ForEachEntry(path, {}, [&](const ArchiveEntry& e, const EntryDataReader&) {
                    member_time[e.name] = e.mtime;
                    return Status::OK();
                  }).ok());
    }
    Sample sample;
    SampleStat stat;
    for (uint64_t i = 0; i < (*shard)->num_samples(); ++i) {
      ASSERT_TRUE((*shard)->Read(i, &sample).ok());
      ASSERT_TRUE((*shard)->Stat(i, &stat).ok());
      EXPECT_EQ(stat.key, sample.key);
      ASSERT_EQ(stat.fields.size(), sample.fields.size()) << sample.key;
      for (size_t f = 0; f < sample.fields.size(); ++f) {
        EXPECT_EQ(stat.fields[f].name, sample.fields[f].name);
        EXPECT_EQ(stat.fields[f].size, sample.fields[f].data.size()) << sample.key;
        EXPECT_EQ(stat.fields[f].flags, sample.fields[f].flags);
        if (member_time.empty()) {
          EXPECT_EQ(stat.fields[f].mtime, st.st_mtim.tv_sec);
        } else {
          const std::string member = JoinKeyField(sample.key, sample.fields[f].name);
          ASSERT_TRUE(member_time.count(member)) << member;
          EXPECT_EQ(stat.fields[f].mtime, member_time[member]) << member;
        }
      }
    }
  }
}

// A tar member's time comes from its own header, pax or not.
TEST_F(MountTreeTest, TarMemberTimesAreTheHeaders) {
  const std::string src = Path("src");
  fs::create_directories(src + "/d");
  WriteBytes(src + "/d/a.png", "AAAA");
  WriteBytes(src + "/d/b.png", std::string(3000, 'b'));
  ASSERT_EQ(test::RunShell("touch -d @1000000000 " + src + "/d/a.png && touch -d @1600000000 " +
                           src + "/d/b.png"),
            0);
  for (const char* fmt : {"gnu", "pax", "ustar"}) {
    SCOPED_TRACE(fmt);
    const std::string tar = Path(std::string(fmt) + ".tar");
    ASSERT_EQ(test::RunShell("tar --format=" + std::string(fmt) + " -cf " + tar + " -C " + src +
                             " d"),
              0);
    auto view = Open(tar);
    ASSERT_NE(view, nullptr);
    auto t = Build(*view, LinkLayout::kOriginal);
    ASSERT_NE(t, nullptr);
    const uint32_t a = t->Lookup("/d/a.png"), b = t->Lookup("/d/b.png");
    ASSERT_NE(a, MountTree::kNoNode);
    ASSERT_NE(b, MountTree::kNoNode);
    EXPECT_EQ(t->node(a).mtime, 1000000000);
    EXPECT_EQ(t->node(b).mtime, 1600000000);
    EXPECT_EQ(t->node(b).size, 3000u);
  }
}

// The mount holds exactly the tree `link --mode copy` writes, in every
// layout, for a view of two sources holding one sample twice.
TEST_F(MountTreeTest, SameTreeAsLinkCopy) {
  std::vector<Plain> a = Samples(), b = Samples();
  for (Plain& p : b) p.fields.emplace_back("jpg", "J" + p.key);
  const std::string da = Path("a.shard"), db = Path("b.tar");
  WritePlain(da, ShardFormat::kNative, a, {});
  WritePlain(db, ShardFormat::kTar, b, {});
  std::vector<ViewSource> sources;
  for (const auto& [name, target] : {std::pair{"first", da}, std::pair{"second", db}}) {
    auto ds = Dataset::Open(target);
    ASSERT_TRUE(ds.ok());
    ViewSource s;
    s.name = name;
    s.targets = {target};
    s.num_samples = (*ds)->num_samples();
    const ManifestShard& ms = (*ds)->manifest().shards[0];
    s.shards.push_back(ViewShard{ms.path, ms.format, ms.num_samples, ms.file_size,
                                 *EdgeHash((*ds)->shard_path(0))});
    sources.push_back(std::move(s));
  }
  const std::string vpath = Path("mix.view");
  {
    auto w = ViewWriter::Create(vpath, sources, "{}", false);
    ASSERT_TRUE(w.ok());
    for (uint64_t i = 0; i < 40; i += 3) ASSERT_TRUE((*w)->Add({0, i}).ok());
    for (uint64_t i = 0; i < 40; i += 2) ASSERT_TRUE((*w)->Add({1, i}).ok());
    ASSERT_TRUE((*w)->Add({1, 4}).ok());  // held twice: gets a ~2 name
    ASSERT_TRUE((*w)->Close().ok());
  }
  auto view = Open(vpath);
  ASSERT_NE(view, nullptr);
  const char* names[] = {"original", "imagefolder"};
  int k = 0;
  for (LinkLayout layout : {LinkLayout::kOriginal, LinkLayout::kImageFolder}) {
    SCOPED_TRACE(names[k]);
    auto t = Build(*view, layout);
    ASSERT_NE(t, nullptr);
    const auto mounted = Files(*t);
    const auto linked = LinkCopy(*view, layout, std::string("link-") + names[k++]);
    EXPECT_EQ(mounted, linked);
    EXPECT_EQ(t->num_files(), mounted.size());
    uint64_t bytes = 0;
    for (const auto& [rel, data] : mounted) bytes += data.size();
    EXPECT_EQ(t->total_bytes(), bytes);
  }
  // yolo: images/ and labels/ of the samples that have an image (all here)
  // and their txt.
  auto t = Build(*view, LinkLayout::kYolo);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Files(*t), LinkCopy(*view, LinkLayout::kYolo, "link-yolo"));
  EXPECT_NE(t->Lookup("/images/second_s104~2.jpg"), MountTree::kNoNode);
  EXPECT_NE(t->Lookup("/labels/second_s104~2.txt"), MountTree::kNoNode);
}

TEST_F(MountTreeTest, LookupStaysInsideTheTree) {
  const std::string path = Path("a.shard");
  std::vector<Plain> s = {{"x/y/z", {{"png", "1"}}}, {"x/w", {{"png", "22"}}}, {"top", {{"png", ""}}}};
  WritePlain(path, ShardFormat::kNative, s, {});
  auto view = Open(path);
  auto t = Build(*view, LinkLayout::kOriginal);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->Lookup("/"), MountTree::kRoot);
  EXPECT_EQ(t->Lookup(""), MountTree::kRoot);
  const uint32_t x = t->Lookup("/x");
  ASSERT_NE(x, MountTree::kNoNode);
  EXPECT_TRUE(t->node(x).is_dir);
  EXPECT_EQ(t->node(x).subdirs, 1u);  // y
  EXPECT_EQ(t->node(x).size, 2u);     // y, w.png
  EXPECT_EQ(t->Lookup("/x/y/z.png"), t->Lookup("x//y/z.png/"));
  EXPECT_EQ(t->node(t->Lookup("/x/w.png")).size, 2u);
  for (const char* missing :
       {"/x/y/z", "/x/..", "/..", "/x/../top.png", "/./top.png", "/top.png/x", "/nope"}) {
    EXPECT_EQ(t->Lookup(missing), MountTree::kNoNode) << missing;
  }
  EXPECT_EQ(t->num_files(), 3u);
  // Children come sorted: the order readdir lists them in.
  const MountTree::Node& root = t->node(MountTree::kRoot);
  ASSERT_EQ(root.size, 2u);
  EXPECT_EQ(t->name(t->node(t->children(MountTree::kRoot)[0])), "top.png");
  EXPECT_EQ(t->name(t->node(t->children(MountTree::kRoot)[1])), "x");
  // readdir lists them in view order: x (made for the first sample) first.
  EXPECT_EQ(t->name(t->node(t->listing(MountTree::kRoot)[0])), "x");
  EXPECT_EQ(t->name(t->node(t->listing(MountTree::kRoot)[1])), "top.png");
  EXPECT_EQ(t->name(t->node(t->listing(x)[0])), "y");
}

// Keys that differ only in where the field begins get "~2"; a file where
// another sample needs a folder is refused, as link refuses it.
TEST_F(MountTreeTest, NamesThatMeet) {
  const std::string path = Path("a.shard");
  WritePlain(path, ShardFormat::kNative, {{"a", {{"b.c", "1"}}}, {"a.b", {{"c", "2"}}}}, {});
  auto view = Open(path);
  auto t = Build(*view, LinkLayout::kOriginal);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->node(t->Lookup("/a.b.c")).pos, 0u);
  EXPECT_EQ(t->node(t->Lookup("/a.b~2.c")).pos, 1u);

  const std::string clash = Path("b.shard");
  WritePlain(clash, ShardFormat::kNative, {{"x", {{"png", "1"}}}, {"x.png/y", {{"txt", "2"}}}},
             {});
  auto view2 = Open(clash);
  MountTree::Options o;
  auto refused = MountTree::Build(*view2, o, "mnt");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("'x.png' is claimed by"), std::string::npos)
      << refused.status().message();
}

// A shard deleted after the mount makes its own files fail (NotFound), one
// truncated too (Corruption, not a SIGBUS of the map); the mount answers
// both with EIO. The others still read.
TEST_F(MountTreeTest, VanishedShardFailsOnlyItsFiles) {
  const std::string src = Path("src");
  fs::create_directories(src);
  for (int i = 0; i < 20; ++i) WriteBytes(src + "/" + std::to_string(100 + i) + ".png", std::string(100, 'p'));
  PackOptions po;
  po.shard_samples = 5;
  po.sync = false;
  ASSERT_TRUE(Pack({src}, Path("ds"), po).ok());
  auto view = Open(Path("ds"));
  auto t = Build(*view, LinkLayout::kOriginal);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(view->dataset(0).num_shards(), 4u);
  fs::remove(view->dataset(0).shard_path(3));
  Sample s;
  auto gone = t->OpenFile(t->Lookup("/119.png"), &s);
  ASSERT_FALSE(gone.ok());
  EXPECT_TRUE(gone.status().IsNotFound()) << gone.status().ToString();
  fs::resize_file(view->dataset(0).shard_path(2), 100);
  auto cut = t->OpenFile(t->Lookup("/110.png"), &s);
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().code(), Status::Code::kCorruption) << cut.status().ToString();
  auto kept = t->OpenFile(t->Lookup("/100.png"), &s);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(*kept, std::string(100, 'p'));
}

}  // namespace
}  // namespace shardset
