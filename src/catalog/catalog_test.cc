#include "shardset/catalog.h"

#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "shardset/view.h"
#include "testing/test_util.h"

namespace shardset {
namespace {

using test::Plain;

class CatalogTest : public test::TempDirTest {
 protected:
  std::string MakeShard(const std::string& name, const std::string& prefix, int n) {
    std::vector<Plain> samples;
    for (int i = 0; i < n; ++i) {
      samples.push_back({prefix + "/" + std::to_string(1000 + i), {{"jpg", "JPEG" + std::to_string(i)}}});
    }
    const std::string path = Path(name);
    WritePlain(path, ShardFormat::kNative, samples, {});
    return path;
  }

  std::unique_ptr<Catalog> OpenCatalog(bool create = true) {
    auto c = Catalog::Open(Path("animals.catalog"), create);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  static Instance Box(std::string label, double x) {
    Instance in;
    in.label = std::move(label);
    in.geometry = {x, 2, 30, 40};
    return in;
  }
};

// Seed 004's story: directories share a file's annotations when mirrored,
// not when copied.
TEST_F(CatalogTest, MirrorSharesAnnotationsCopyDoesNot) {
  const std::string cats = MakeShard("cats.shard", "cat", 5);
  const std::string dogs = MakeShard("dogs.shard", "dog", 4);
  auto cat = OpenCatalog();
  ASSERT_NE(cat, nullptr);
  ASSERT_TRUE(cat->CreateDirectory("default").ok());
  for (const std::string& t : {cats, dogs}) {
    auto v = View::Open(t);
    ASSERT_TRUE(v.ok());
    auto n = cat->Add("default", **v);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
  }
  // Some samples only, in the order given: the same identities.
  ASSERT_TRUE(cat->CreateDirectory("picked").ok());
  const std::vector<uint64_t> picked = {3, 1};
  auto some = cat->Add("picked", **View::Open(dogs), &picked);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(*some, 2u);
  EXPECT_EQ((*cat->Files("picked"))[0].key, "dog/1003");
  EXPECT_EQ((*cat->Files("picked"))[1].id, cat->FindFile("default", "dog/1001")->id);
  ASSERT_TRUE(cat->RemoveDirectory("picked").ok());
  // Adding again adds nothing: one identity per sample.
  auto again = cat->Add("default", **View::Open(dogs));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
  EXPECT_EQ(cat->sources().size(), 2u);

  ASSERT_TRUE(cat->CreateDirectory("dogs").ok());
  auto mirrored = cat->Mirror("default", "dogs", [](const CatalogFile& f) {
    return f.key.rfind("dog/", 0) == 0;
  });
  ASSERT_TRUE(mirrored.ok());
  EXPECT_EQ(*mirrored, 4u);

  auto in_dogs = cat->FindFile("dogs", "dog/1002");
  ASSERT_TRUE(in_dogs.ok()) << in_dogs.status().ToString();
  auto id = cat->AddInstance(in_dogs->id, Box("dog", 10));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto in_default = cat->FindFile("default", "dog/1002");
  ASSERT_TRUE(in_default.ok());
  EXPECT_EQ(in_default->id, in_dogs->id);
  auto seen = cat->Instances(in_default->id);
  ASSERT_TRUE(seen.ok());
  ASSERT_EQ(seen->size(), 1u);
  EXPECT_EQ((*seen)[0].label, "dog");
  EXPECT_EQ((*seen)[0].geometry, (std::vector<double>{10, 2, 30, 40}));

  ASSERT_TRUE(cat->CreateDirectory("dogs2").ok());
  auto copied = cat->Copy("dogs", "dogs2", /*annotations=*/false);
  ASSERT_TRUE(copied.ok());
  EXPECT_EQ(*copied, 4u);
  auto in_dogs2 = cat->FindFile("dogs2", "dog/1002");
  ASSERT_TRUE(in_dogs2.ok());
  EXPECT_NE(in_dogs2->id, in_dogs->id);
  EXPECT_EQ(in_dogs2->copied_from, in_dogs->id);
  EXPECT_TRUE(cat->Instances(in_dogs2->id)->empty());
  ASSERT_TRUE(cat->AddInstance(in_dogs2->id, Box("puppy", 5)).ok());
  EXPECT_EQ(cat->Instances(in_dogs->id)->size(), 1u);  // the original is unchanged
  EXPECT_EQ((*cat->Instances(in_dogs->id))[0].label, "dog");

  // A copy with annotations carries them, independently.
  ASSERT_TRUE(cat->CreateDirectory("dogs3").ok());
  ASSERT_TRUE(cat->Copy("dogs", "dogs3", /*annotations=*/true).ok());
  auto in_dogs3 = cat->FindFile("dogs3", "dog/1002");
  ASSERT_EQ(cat->Instances(in_dogs3->id)->size(), 1u);
  Instance edit = (*cat->Instances(in_dogs3->id))[0];
  edit.label = "wolf";
  ASSERT_TRUE(cat->UpdateInstance(edit).ok());
  EXPECT_EQ((*cat->Instances(in_dogs->id))[0].label, "dog");

  auto dirs = cat->Directories();
  ASSERT_TRUE(dirs.ok());
  ASSERT_EQ(dirs->size(), 4u);
  EXPECT_EQ((*dirs)[0].name, "default");
  EXPECT_EQ((*dirs)[0].files, 9u);
  EXPECT_EQ((*dirs)[0].instances, 1u);
  EXPECT_EQ((*dirs)[1].name, "dogs");
  EXPECT_EQ((*dirs)[2].instances, 1u);  // dogs2: the puppy

  // Order is the order of adding; removing a directory keeps the files and
  // their annotations for the directories that still hold them.
  auto files = cat->Files("default");
  ASSERT_EQ(files->size(), 9u);
  EXPECT_EQ((*files)[0].key, "cat/1000");
  EXPECT_EQ((*files)[5].key, "dog/1000");
  ASSERT_TRUE(cat->RemoveDirectory("dogs").ok());
  EXPECT_EQ(cat->Instances(in_default->id)->size(), 1u);
  EXPECT_TRUE(cat->CheckIntegrity().ok());
}

TEST_F(CatalogTest, ReopenedCatalogKeepsEverything) {
  const std::string dogs = MakeShard("dogs.shard", "dog", 3);
  {
    auto cat = OpenCatalog();
    ASSERT_TRUE(cat->CreateDirectory("d").ok());
    ASSERT_TRUE(cat->Add("d", **View::Open(dogs)).ok());
  }
  auto cat = OpenCatalog(/*create=*/false);
  ASSERT_NE(cat, nullptr);
  ASSERT_EQ(cat->sources().size(), 1u);
  // Targets are recorded relative to the catalog and resolved on open.
  EXPECT_EQ(cat->sources()[0].targets, std::vector<std::string>{dogs});
  EXPECT_EQ(cat->Files("d")->size(), 3u);
}

TEST_F(CatalogTest, ErrorsNameWhatIsWrong) {
  auto missing = Catalog::Open(Path("none.catalog"));
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound());

  auto cat = OpenCatalog();
  EXPECT_EQ(cat->CreateDirectory("a/b").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(cat->CreateDirectory("").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(cat->CreateDirectory("x#y").code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE(cat->CreateDirectory("d").ok());
  EXPECT_EQ(cat->CreateDirectory("d").code(), Status::Code::kAlreadyExists);
  EXPECT_TRUE(cat->RemoveDirectory("nope").IsNotFound());
  EXPECT_TRUE(cat->Files("nope").status().IsNotFound());
  EXPECT_TRUE(cat->AddInstance(12345, Box("x", 1)).status().IsNotFound());
  Instance bad = Box("x", 1);
  bad.geometry = {1, 2, -3, 4};
  EXPECT_EQ(cat->AddInstance(1, bad).status().code(), Status::Code::kInvalidArgument);
  bad = Box("x", 1);
  bad.attributes = "[1]";
  EXPECT_EQ(cat->AddInstance(1, bad).status().code(), Status::Code::kInvalidArgument);
  bad = Box("x", 1);
  bad.kind = Instance::Kind::kPolygon;
  EXPECT_EQ(cat->AddInstance(1, bad).status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(cat->RemoveInstance(999).IsNotFound());
}

// A removed instance's id is never given again: a stale id cannot reach a
// newer instance.
TEST_F(CatalogTest, InstanceIdsAreNeverReused) {
  const std::string dogs = MakeShard("dogs.shard", "dog", 1);
  auto cat = OpenCatalog();
  ASSERT_TRUE(cat->CreateDirectory("d").ok());
  ASSERT_TRUE(cat->Add("d", **View::Open(dogs)).ok());
  const int64_t file = cat->FindFile("d", "dog/1000")->id;
  auto first = cat->AddInstance(file, Box("a", 1));
  auto last = cat->AddInstance(file, Box("b", 2));
  ASSERT_TRUE(first.ok() && last.ok());
  ASSERT_TRUE(cat->RemoveInstance(*last).ok());
  auto next = cat->AddInstance(file, Box("c", 3));
  ASSERT_TRUE(next.ok());
  EXPECT_GT(*next, *last);
  EXPECT_TRUE(cat->RemoveInstance(*last).IsNotFound());
}

TEST_F(CatalogTest, VersionsAndForeignFiles) {
  { auto cat = OpenCatalog(); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(Path("animals.catalog").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto newer = Catalog::Open(Path("animals.catalog"));
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), Status::Code::kNotSupported);
  EXPECT_NE(newer.status().message().find("upgrade shardset"), std::string::npos);

  ASSERT_EQ(sqlite3_open(Path("other.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t(x); PRAGMA user_version = 1", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto other = Catalog::Open(Path("other.db"));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Status::Code::kInvalidArgument);

  test::WriteBytes(Path("junk.catalog"), std::string(8192, 'j'));
  auto junk = Catalog::Open(Path("junk.catalog"));
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.status().code(), Status::Code::kCorruption) << junk.status().ToString();
}

// Writers in several connections at once: every edit lands, none reports
// a locked database.
TEST_F(CatalogTest, ConcurrentWritersLoseNothing) {
  const std::string dogs = MakeShard("dogs.shard", "dog", 8);
  {
    auto cat = OpenCatalog();
    ASSERT_TRUE(cat->CreateDirectory("d").ok());
    ASSERT_TRUE(cat->Add("d", **View::Open(dogs)).ok());
  }
  constexpr int kThreads = 6, kEdits = 60;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto cat = Catalog::Open(Path("animals.catalog"));
      if (!cat.ok()) {
        ++failures;
        return;
      }
      auto files = (*cat)->Files("d");
      for (int i = 0; i < kEdits; ++i) {
        const CatalogFile& f = (*files)[(t + i) % files->size()];
        auto id = (*cat)->AddInstance(f.id, Box("t" + std::to_string(t), i));
        if (!id.ok()) {
          ADD_FAILURE() << id.status().ToString();
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto cat = OpenCatalog(false);
  uint64_t total = 0;
  auto files = cat->Files("d");
  ASSERT_TRUE(files.ok());
  for (const CatalogFile& f : *files) total += cat->Instances(f.id)->size();
  EXPECT_EQ(total, uint64_t{kThreads} * kEdits);
  EXPECT_TRUE(cat->CheckIntegrity().ok());
}

// A directory is a view: every reader takes "CATALOG#NAME", and each sample
// carries its current instances; keys (not ordinals) tie them to the bytes,
// so a re-shuffled dataset keeps its annotations.
TEST_F(CatalogTest, DirectoryIsAView) {
  const std::string dogs = MakeShard("dogs.shard", "dog", 6);
  auto cat = OpenCatalog();
  ASSERT_TRUE(cat->CreateDirectory("all").ok());
  ASSERT_TRUE(cat->Add("all", **View::Open(dogs)).ok());
  ASSERT_TRUE(cat->CreateDirectory("some").ok());
  ASSERT_TRUE(cat->Mirror("all", "some", [](const CatalogFile& f) {
                   return f.key == "dog/1004" || f.key == "dog/1001";
                 }).ok());
  auto file = cat->FindFile("some", "dog/1004");
  Instance box = Box("dog", 3);
  box.attributes = R"({"occluded":true})";
  ASSERT_TRUE(cat->AddInstance(file->id, box).ok());

  auto view = View::Open(Path("animals.catalog") + "#some");
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  ASSERT_EQ((*view)->num_samples(), 2u);
  EXPECT_TRUE((*view)->is_view_file());
  EXPECT_EQ(*(*view)->Key(0), "dog/1001");  // the order the mirror added them in
  EXPECT_EQ(*(*view)->Key(1), "dog/1004");
  EXPECT_EQ(*(*view)->Find("dog/1004"), 1u);
  EXPECT_TRUE((*view)->Find("dog/1000").status().IsNotFound());
  Sample s;
  ASSERT_TRUE((*view)->Read(1, &s).ok());
  ASSERT_NE(s.Find("jpg"), nullptr);
  EXPECT_EQ(s.Find("jpg")->data, "JPEG4");
  const Field* ann = s.Find(kAnnotationsField);
  ASSERT_NE(ann, nullptr);
  EXPECT_TRUE(ann->flags & kFieldDerived);
  EXPECT_EQ(ann->data,
            R"([{"attributes":{"occluded":true},"box":[3.0,2.0,30.0,40.0],"id":1,"kind":"box",)"
            R"("label":"dog"}])");
  ASSERT_TRUE((*view)->Read(0, &s).ok());
  EXPECT_EQ(s.Find(kAnnotationsField)->data, "[]");
  VerifyReport report;
  ASSERT_TRUE((*view)->Verify(&report).ok());
  EXPECT_TRUE(report.ok());

  // The same samples re-written in another order: keys still find them.
  std::vector<Plain> reversed;
  for (int i = 5; i >= 0; --i) {
    reversed.push_back({"dog/" + std::to_string(1000 + i), {{"jpg", "JPEG" + std::to_string(i)}}});
  }
  std::filesystem::remove(dogs);
  WritePlain(dogs, ShardFormat::kNative, reversed, {});
  auto again = View::Open(Path("animals.catalog") + "#some");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_TRUE((*again)->Read(1, &s).ok());
  EXPECT_EQ(s.key, "dog/1004");
  EXPECT_EQ(s.Find("jpg")->data, "JPEG4");
  EXPECT_NE(s.Find(kAnnotationsField)->data.find("occluded"), std::string::npos);

  // A sample gone from the source is named.
  std::filesystem::remove(dogs);
  WritePlain(dogs, ShardFormat::kNative, {reversed[0]}, {});
  auto gone = View::Open(Path("animals.catalog") + "#some");
  ASSERT_FALSE(gone.ok());
  EXPECT_TRUE(gone.status().IsNotFound());
  EXPECT_NE(gone.status().message().find("dog/1001"), std::string::npos)
      << gone.status().message();
  EXPECT_TRUE(View::Open(Path("animals.catalog") + "#nope").status().IsNotFound());
}

}  // namespace
}  // namespace shardset
