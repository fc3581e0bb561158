// COCO and YOLO import/export and dir export against directories of real
// PNG and JPEG samples (encoded here by libspng and libjpeg-turbo): round
// trips, the matching rules, and malformed or hostile inputs refused with
// one clear line and nothing imported.
#include "shardset/annotation_io.h"

#include <spng.h>
#include <turbojpeg.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "catalog/coco_rle.h"
#include "image/image.h"
#include "catalog/yolo_names.h"
#include "shardset/dataset.h"
#include "shardset/view.h"
#include "testing/png.h"
#include "testing/test_util.h"

namespace shardset {
namespace {

using json = nlohmann::json;
using test::Plain;

std::string Png(uint32_t w, uint32_t h) {
  return test::EncodePng(w, h, SPNG_COLOR_TYPE_GRAYSCALE, 8, std::vector<uint8_t>(size_t{w} * h, 128));
}

std::string Jpeg(int w, int h) {
  tjhandle tj = tjInitCompress();
  std::vector<uint8_t> raw(size_t(w) * h * 3, 90);
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  EXPECT_EQ(tjCompress2(tj, raw.data(), w, 0, h, TJPF_RGB, &jpeg, &size, TJSAMP_444, 90, 0), 0);
  std::string out(reinterpret_cast<char*>(jpeg), size);
  tjFree(jpeg);
  tjDestroy(tj);
  return out;
}

Instance Box(std::string label, std::vector<double> g, std::string attrs = "{}") {
  Instance in;
  in.label = std::move(label);
  in.geometry = std::move(g);
  in.attributes = std::move(attrs);
  return in;
}

Instance Polygon(std::string label, std::vector<double> g, std::string attrs = "{}") {
  Instance in = Box(std::move(label), std::move(g), std::move(attrs));
  in.kind = Instance::Kind::kPolygon;
  return in;
}

Instance Mask(std::string label, std::string ref) {
  Instance in;
  in.label = std::move(label);
  in.kind = Instance::Kind::kMask;
  in.mask = std::move(ref);
  return in;
}

// Instances without their ids and files, for comparing two directories.
struct Shape {
  std::string key, label, kind, mask;
  std::vector<double> geometry;
  json attributes;
  bool operator==(const Shape&) const = default;
};

void PrintTo(const Shape& s, std::ostream* os) {
  *os << s.key << " " << s.label << " " << s.kind << " " << json(s.geometry).dump() << " "
      << s.mask << " " << s.attributes.dump();
}

class AnnotationTest : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    // dogs/0..3 as PNGs of different sizes, dogs/4 a JPEG, cats/0 and
    // cats/1 PNGs; a "0" in two folders makes basename matching ambiguous.
    std::vector<Plain> samples;
    for (int i = 0; i < 4; ++i) {
      samples.push_back({"dogs/" + std::to_string(i), {{"png", Png(40 + i, 30 + i)}, {"cls", "dogs"}}});
    }
    samples.push_back({"dogs/4", {{"jpg", Jpeg(64, 48)}, {"cls", "dogs"}}});
    samples.push_back({"cats/0", {{"png", Png(20, 10)}, {"cls", "cats"}}});
    samples.push_back({"cats/1", {{"png", Png(20, 10)}, {"cls", "cats"}}});
    WritePlain(Path("pets.shard"), ShardFormat::kNative, samples, {});
    auto c = Catalog::Open(Path("pets.catalog"), true);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cat_ = std::move(*c);
    ASSERT_TRUE(cat_->CreateDirectory("all").ok());
    ASSERT_TRUE(cat_->Add("all", **View::Open(Path("pets.shard"))).ok());
  }

  void AddTo(const std::string& dir, const std::string& key, Instance in) {
    auto f = cat_->FindFile(dir, key);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    auto id = cat_->AddInstance(f->id, in);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
  }

  std::vector<Shape> Shapes(const std::string& dir) {
    std::vector<Shape> out;
    auto files = cat_->Files(dir);
    EXPECT_TRUE(files.ok()) << files.status().ToString();
    if (!files.ok()) return out;
    for (const CatalogFile& f : *files) {
      auto list = cat_->Instances(f.id);
      for (const Instance& in : *list) {
        out.push_back(Shape{f.key, in.label, std::string(InstanceKindName(in.kind)), in.mask,
                            in.geometry, json::parse(in.attributes)});
      }
    }
    return out;
  }

  uint64_t Count(const std::string& dir) {
    uint64_t n = 0;
    auto dirs = cat_->Directories();
    for (const DirectoryInfo& d : *dirs) {
      if (d.name == dir) n = d.instances;
    }
    return n;
  }

  // A fresh directory over the same samples, without annotations.
  void FreshCopy(const std::string& dst) {
    ASSERT_TRUE(cat_->CreateDirectory(dst).ok());
    ASSERT_TRUE(cat_->Copy("all", dst, /*annotations=*/false).ok());
  }

  std::unique_ptr<Catalog> cat_;
};

using CocoTest = AnnotationTest;
using YoloTest = AnnotationTest;
using CatalogDirExportTest = AnnotationTest;

TEST(CocoRleTest, DecodesPycocotoolsStrings) {
  // pycocotools.mask.encode of a 7x5 mask: rows 1-3 of columns 2-4, and
  // row 6 of column 0; area 10, toBbox [0, 1, 5, 6].
  auto rle = ParseCocoRle(json{{"size", {7, 5}}, {"counts", "6182L000O"}});
  ASSERT_TRUE(rle.ok()) << rle.status().ToString();
  EXPECT_EQ(rle->Area(), 10u);
  EXPECT_EQ(rle->Bbox(), (std::vector<double>{0, 1, 5, 6}));
  EXPECT_EQ(rle->ToJson()["counts"], "6182L000O");
  // The same mask as runs.
  auto runs = ParseCocoRle(json{{"size", {7, 5}}, {"counts", {6, 1, 8, 3, 4, 3, 4, 3, 3}}});
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  EXPECT_EQ(runs->counts, rle->counts);
  // Hostile: runs beyond the size, bad characters, cut strings, huge sizes.
  EXPECT_FALSE(ParseCocoRle(json{{"size", {2, 2}}, {"counts", {1, 9}}}).ok());
  EXPECT_FALSE(ParseCocoRle(json{{"size", {2, 2}}, {"counts", {1, 1}}}).ok());
  EXPECT_FALSE(ParseCocoRle(json{{"size", {7, 5}}, {"counts", "6182L000"}}).ok());
  EXPECT_FALSE(ParseCocoRle(json{{"size", {7, 5}}, {"counts", "\x01\x02"}}).ok());
  EXPECT_FALSE(ParseCocoRle(json{{"size", {7, 5}}, {"counts", "oooooooooooooooooooo1"}}).ok());
  EXPECT_FALSE(ParseCocoRle(json{{"size", {-1, 5}}, {"counts", {0}}}).ok());
  EXPECT_FALSE(ParseCocoRle(json{{"size", {1e300, 5}}, {"counts", {0}}}).ok());
  EXPECT_FALSE(ParseCocoRle(json{{"size", {7, 5}}}).ok());
  auto zeros = DecodeRleString("0000");
  ASSERT_TRUE(zeros.ok());
  EXPECT_EQ(*zeros, (std::vector<uint64_t>{0, 0, 0, 0}));
}

TEST(CocoImageSizeTest, FromHeadersAlone) {
  auto png = ReadImageSize(Png(33, 17));
  ASSERT_TRUE(png.ok()) << png.status().ToString();
  EXPECT_EQ(png->width, 33u);
  EXPECT_EQ(png->height, 17u);
  auto jpg = ReadImageSize(Jpeg(21, 9));
  ASSERT_TRUE(jpg.ok()) << jpg.status().ToString();
  EXPECT_EQ(jpg->width, 21u);
  EXPECT_EQ(jpg->height, 9u);
  EXPECT_EQ(ReadImageSize("GIF89a....").status().code(), Status::Code::kNotSupported);
  EXPECT_EQ(ReadImageSize(Png(4, 4).substr(0, 20)).status().code(), Status::Code::kCorruption);
  std::string bad = Png(4, 4);
  for (int i = 16; i < 20; ++i) bad[i] = 0;  // a width of 0
  EXPECT_EQ(ReadImageSize(bad).status().code(), Status::Code::kCorruption);
  EXPECT_EQ(ReadImageSize(Jpeg(4, 4).substr(0, 10)).status().code(), Status::Code::kCorruption);
}

// Export, then import into a fresh directory over the same samples: the
// same instances (a mask that is not COCO RLE is left out and counted).
TEST_F(CocoTest, ExportThenImportGivesTheSameInstances) {
  AddTo("all", "dogs/1", Box("dog", {2, 3, 10, 12.5}, R"({"pose":"sit","score":0.5})"));
  AddTo("all", "dogs/1", Polygon("dog", {1, 1, 20, 1, 20, 15}, R"({"iscrowd":1})"));
  AddTo("all", "dogs/2", Polygon("dog", {0, 0, 4, 0, 4, 4},
                                 R"({"extra_polygons":[[10,10,12,10,12,12]]})"));
  AddTo("all", "dogs/4", Mask("ball", R"({"counts":"6182L000O","size":[7,5]})"));
  AddTo("all", "cats/0", Mask("cat", R"({"counts":[6,1,8,3,4,3,4,3,3],"size":[7,5]})"));
  AddTo("all", "cats/1", Mask("cat", "mask_png"));  // a field: not COCO's
  const std::vector<Shape> before = Shapes("all");

  auto r = ExportCoco(*cat_, "all", Path("all.json"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images, 7u);
  EXPECT_EQ(r->instances, 5u);
  EXPECT_EQ(r->categories, 3u);  // ball, cat, dog
  EXPECT_EQ(r->skipped, 1u);

  const json coco = json::parse(test::ReadBytes(Path("all.json")));
  ASSERT_EQ(coco["images"].size(), 7u);
  EXPECT_EQ(coco["images"][1], (json{{"id", 2}, {"file_name", "dogs/1.png"}, {"width", 41},
                                     {"height", 31}}));
  EXPECT_EQ(coco["images"][4]["file_name"], "dogs/4.jpg");
  EXPECT_EQ(coco["images"][4]["width"], 64);
  EXPECT_EQ(coco["images"][4]["height"], 48);
  EXPECT_EQ(coco["categories"], (json::parse(R"([{"id":1,"name":"ball","supercategory":""},
      {"id":2,"name":"cat","supercategory":""},{"id":3,"name":"dog","supercategory":""}])")));
  const json& a = coco["annotations"];
  ASSERT_EQ(a.size(), 5u);
  EXPECT_EQ(a[0]["bbox"], (json{2.0, 3.0, 10.0, 12.5}));
  EXPECT_EQ(a[0]["area"], 125.0);
  EXPECT_EQ(a[0]["image_id"], 2);
  EXPECT_EQ(a[0]["category_id"], 3);
  EXPECT_EQ(a[0]["iscrowd"], 0);
  EXPECT_EQ(a[0]["attributes"], (json{{"pose", "sit"}, {"score", 0.5}}));
  EXPECT_EQ(a[1]["iscrowd"], 1);
  EXPECT_FALSE(a[1].contains("attributes"));
  EXPECT_EQ(a[1]["bbox"], (json{1.0, 1.0, 19.0, 14.0}));
  EXPECT_EQ(a[1]["area"], 133.0);
  EXPECT_EQ(a[2]["segmentation"].size(), 2u);  // both rings
  EXPECT_EQ(a[2]["area"], 10.0);  // triangles of 8 and 2
  EXPECT_EQ(a[2]["bbox"], (json{0.0, 0.0, 12.0, 12.0}));
  EXPECT_EQ(a[3]["segmentation"], (json{{"counts", "6182L000O"}, {"size", {7, 5}}}));
  EXPECT_EQ(a[3]["area"], 10);
  EXPECT_EQ(a[3]["bbox"], (json{0.0, 1.0, 5.0, 6.0}));

  FreshCopy("again");
  auto in = ImportCoco(*cat_, "again", Path("all.json"));
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_EQ(in->images, 7u);
  EXPECT_EQ(in->matched, 7u);
  EXPECT_EQ(in->instances, 5u);
  std::vector<Shape> expected = before;
  expected.pop_back();  // the mask_png mask
  EXPECT_EQ(Shapes("again"), expected);
  EXPECT_EQ(Count("all"), 6u);  // the copies' instances are their own
}

TEST_F(CocoTest, FileNamesMatchByKeyFieldKeyOrUniqueBasename) {
  test::WriteBytes(Path("names.json"), R"({
    "images": [{"id": 1, "file_name": "dogs/1.png"}, {"id": 2, "file_name": "dogs/2"},
               {"id": 3, "file_name": "/data/train/3.jpg"}, {"id": 4, "file_name": "0.png"},
               {"id": 5, "file_name": "nowhere/zz.png"}],
    "annotations": [
      {"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 1, 2, 2]},
      {"id": 2, "image_id": 2, "category_id": 7, "bbox": [1, 1, 2, 2]},
      {"id": 3, "image_id": 3, "category_id": 7, "bbox": [1, 1, 2, 2]},
      {"id": 4, "image_id": 4, "category_id": 7, "bbox": [1, 1, 2, 2]},
      {"id": 5, "image_id": 5, "category_id": 7, "bbox": [1, 1, 2, 2]}],
    "categories": [{"id": 7, "name": "dog"}]})");
  // Two images match nothing (zz; "0", which two keys end in): nothing is
  // imported, and the error names them.
  auto strict = ImportCoco(*cat_, "all", Path("names.json"));
  ASSERT_FALSE(strict.ok());
  EXPECT_TRUE(strict.status().IsNotFound());
  EXPECT_NE(strict.status().message().find("2 images match no file"), std::string::npos)
      << strict.status().message();
  EXPECT_NE(strict.status().message().find("0.png (several keys end so)"), std::string::npos);
  EXPECT_NE(strict.status().message().find("nowhere/zz.png"), std::string::npos);
  EXPECT_EQ(Count("all"), 0u);

  AnnotationImportOptions o;
  o.skip_missing = true;
  auto r = ImportCoco(*cat_, "all", Path("names.json"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->matched, 3u);
  EXPECT_EQ(r->missing, 2u);
  EXPECT_EQ(r->instances, 3u);
  std::vector<std::string> keys;
  for (const Shape& s : Shapes("all")) keys.push_back(s.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"dogs/1", "dogs/2", "dogs/3"}));

  // Importing again adds again; replace clears the directory's first.
  ASSERT_TRUE(ImportCoco(*cat_, "all", Path("names.json"), o).ok());
  EXPECT_EQ(Count("all"), 6u);
  o.replace = true;
  auto replaced = ImportCoco(*cat_, "all", Path("names.json"), o);
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->removed, 6u);
  EXPECT_EQ(Count("all"), 3u);
}

TEST_F(CocoTest, MalformedFilesAreClearErrorsAndImportNothing) {
  const std::string images = R"("images": [{"id": 1, "file_name": "dogs/1.png"}])";
  const std::string cats = R"("categories": [{"id": 1, "name": "dog"}])";
  auto with = [&](const std::string& ann) {
    return "{" + images + ", " + cats + R"(, "annotations": [)" + ann + "]}";
  };
  struct Case {
    std::string text, expect;
  };
  const std::vector<Case> cases = {
      {"not json", "not valid JSON"},
      // A number past a double's range (found by annotation_fuzz: it ended
      // the process with an uncaught out_of_range).
      {with(R"({"id": 1e3333333333331})"), "not valid JSON"},
      {"[1, 2]", "a JSON object"},
      {"{" + cats + "}", "'images' must be a JSON array"},
      {R"({"images": {}, )" + cats + "}", "'images' must be a JSON array"},
      {"{" + images + "}", "'categories' must be a JSON array"},
      {R"({"images": [{"file_name": "a"}], )" + cats + "}", "images[0]: 'id' must be an integer"},
      {R"({"images": [{"id": 1, "file_name": 5}], )" + cats + "}", "'file_name' must be a string"},
      {R"({"images": [7], )" + cats + "}", "images[0]: must be a JSON object"},
      {R"({"images": [{"id": 1.5, "file_name": "a"}], )" + cats + "}", "'id' must be an integer"},
      {R"({"images": [{"id": 99999999999999999999, "file_name": "a"}], )" + cats + "}",
       "'id' must be an integer"},
      {"{" + images + R"(, "categories": [{"id": 1}]})", "'name' must be a non-empty string"},
      {"{" + images + R"(, "categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]})",
       "a category id given twice"},
      {with(R"({"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]})"),
       "annotations[0] (id 3): 'bbox' must be [x, y, width, height]"},
      {with(R"({"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 2, -3, 4]})"),
       "width and height not negative"},
      {with(R"({"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 2, "3", 4]})"),
       "'bbox' must be an array of finite numbers"},
      {with(R"({"id": 3, "image_id": 1, "category_id": 1})"), "has neither 'bbox' nor"},
      {with(R"({"id": 3, "image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4]})"),
       "image_id 2 is not in 'images'"},
      {with(R"({"id": 3, "image_id": 1, "category_id": 5, "bbox": [1, 2, 3, 4]})"),
       "category_id 5 is not in 'categories'"},
      {with(R"({"id": 3, "image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3, 4]]})"),
       "polygon 0 has 4 numbers"},
      {with(R"({"id": 3, "image_id": 1, "category_id": 1, "segmentation": "x"})"),
       "'segmentation' must be a list of polygons or an RLE object"},
      {with(R"({"id": 3, "image_id": 1, "category_id": 1,
                "segmentation": {"size": [2, 2], "counts": [1, 2]}})"),
       "RLE 'counts' add up to 3 pixels"},
      {with(R"({"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 2})"),
       "'iscrowd' must be 0 or 1"},
      {with(R"({"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4],
                "attributes": [1]})"),
       "'attributes' must be an object"},
      {std::string(100000, '[') + std::string(100000, ']'), "nested deeper than"},
  };
  for (const Case& c : cases) {
    test::WriteBytes(Path("bad.json"), c.text);
    auto r = ImportCoco(*cat_, "all", Path("bad.json"));
    ASSERT_FALSE(r.ok()) << c.text.substr(0, 200);
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << "expected '" << c.expect << "' in: " << r.status().message();
    EXPECT_NE(r.status().message().find(Path("bad.json")), std::string::npos);
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos);  // one line
  }
  EXPECT_EQ(Count("all"), 0u);

  // Bounded: a file larger than the limit is refused before parsing.
  test::WriteBytes(Path("big.json"), with(""));
  AnnotationImportOptions o;
  o.max_coco_bytes = 16;
  auto big = ImportCoco(*cat_, "all", Path("big.json"), o);
  EXPECT_EQ(big.status().code(), Status::Code::kResourceExhausted) << big.status().ToString();
  EXPECT_TRUE(ImportCoco(*cat_, "all", Path("none.json")).status().IsNotFound());
  EXPECT_TRUE(ImportCoco(*cat_, "nope", Path("big.json")).status().IsNotFound());
}

TEST_F(CocoTest, SamplesWithoutImagesAreNamed) {
  WritePlain(Path("text.shard"), ShardFormat::kNative, {{"notes/1", {{"txt", "hello"}}}}, {});
  ASSERT_TRUE(cat_->CreateDirectory("notes").ok());
  ASSERT_TRUE(cat_->Add("notes", **View::Open(Path("text.shard"))).ok());
  auto r = ExportCoco(*cat_, "notes", Path("notes.json"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("notes/1"), std::string::npos) << r.status().message();
  EXPECT_FALSE(std::filesystem::exists(Path("notes.json")));
  auto y = ExportYolo(*cat_, "notes", Path("notes-yolo"));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("no image field"), std::string::npos);
}

TEST(YoloNamesTest, DataYamlForms) {
  using Names = std::vector<std::string>;
  struct Case {
    std::string yaml;
    Names names;
  };
  const std::vector<Case> cases = {
      {"path: x\nnames:\n  0: cat\n  1: dog  # a comment\nnc: 2\n", {"cat", "dog"}},
      {"names:\n- cat\n- 'hot dog'\n- \"a \\\"b\\\"\"\ntrain: a\n", {"cat", "hot dog", "a \"b\""}},
      {"names: [cat, dog, 'it''s']\n", {"cat", "dog", "it's"}},
      {"names: {0: cat, 1: dog}\n", {"cat", "dog"}},
      {"names: [\n  cat,\n  dog\n]\n", {"cat", "dog"}},
      {"# c\nnames:\n  1: dog\n  0: cat\n", {"cat", "dog"}},
      {"names: [\"\\u00e9t\\u00e9\"]\n", {"\xc3\xa9t\xc3\xa9"}},
  };
  for (const Case& c : cases) {
    auto r = ParseYamlNames(c.yaml, "data.yaml");
    ASSERT_TRUE(r.ok()) << c.yaml << r.status().ToString();
    ASSERT_TRUE(r->has_value()) << c.yaml;
    EXPECT_EQ(**r, c.names) << c.yaml;
  }
  auto none = ParseYamlNames("nc: 2\ntrain: x\n", "data.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  for (const char* bad : {"names:\n  0: a\n  2: b\n", "names: [a, b\n", "names:\n- a\n  1: b\n",
                          "names: {x: a}\n", "names: [a, '']\n", "names: ['a\n",
                          "names: {0: a, 0: b}\n", "names: []\n", "names: [\"\\q\"]\n",
                          // A backslash before a line break (found by
                          // annotation_fuzz: the error held the raw break).
                          "names:\n \"a\\\n b\"\n"}) {
    auto r = ParseYamlNames(bad, "data.yaml");
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("data.yaml"), std::string::npos);
      EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
    }
  }
  // The writer's quoting reads back.
  const std::string odd = "a \"b\" \\ c\td";
  auto back = ParseYamlNames("names:\n  0: " + YamlQuote(odd) + "\n", "data.yaml");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ((**back)[0], "a \"b\" \\ c\x09" "d");
}

// Export, then import into a fresh directory: boxes come back to the
// thousandth of a pixel; a polygon comes back as its bounding box.
TEST_F(YoloTest, ExportThenImportGivesTheSameBoxes) {
  AddTo("all", "dogs/1", Box("dog", {2, 3, 10, 12}));
  AddTo("all", "dogs/1", Box("ball", {30, 20, 11, 11}));
  AddTo("all", "dogs/4", Box("dog", {0.5, 1.25, 63.5, 46.75}));
  AddTo("all", "cats/0", Polygon("cat", {1, 1, 9, 2, 5, 8}));
  AddTo("all", "cats/1", Mask("cat", "mask_png"));
  AddTo("all", "cats/1", Box("cat", {15, 5, 10, 10}));  // reaches past the 20 px width
  auto r = ExportYolo(*cat_, "all", Path("yolo"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images, 7u);
  EXPECT_EQ(r->instances, 5u);
  EXPECT_EQ(r->skipped, 1u);
  EXPECT_EQ(r->clipped, 1u);
  EXPECT_EQ(r->categories, 3u);
  // One label file per sample, named as link --layout yolo names images.
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(Path("yolo/labels"))) {
    files.push_back(e.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"cats_0.txt", "cats_1.txt", "dogs_0.txt",
                                             "dogs_1.txt", "dogs_2.txt", "dogs_3.txt",
                                             "dogs_4.txt"}));
  EXPECT_EQ(test::ReadBytes(Path("yolo/labels/dogs_0.txt")), "");
  // dogs/1 is 41x31: (2 + 5) / 41, (3 + 6) / 31, 10 / 41, 12 / 31.
  EXPECT_EQ(test::ReadBytes(Path("yolo/labels/dogs_1.txt")),
            "2 0.170732 0.290323 0.243902 0.387097\n0 0.865854 0.822581 0.268293 0.354839\n");
  EXPECT_EQ(test::ReadBytes(Path("yolo/labels/cats_1.txt")), "1 0.875 0.75 0.25 0.5\n");
  const std::string yaml = test::ReadBytes(Path("yolo/data.yaml"));
  EXPECT_NE(yaml.find("nc: 3\nnames:\n  0: \"ball\"\n  1: \"cat\"\n  2: \"dog\"\n"),
            std::string::npos)
      << yaml;
  for (const auto& e : std::filesystem::directory_iterator(Path("yolo"))) {
    EXPECT_EQ(e.path().filename().string().find(".shardset-tmp"), std::string::npos);
  }

  FreshCopy("again");
  auto in = ImportYolo(*cat_, "again", Path("yolo"));
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_EQ(in->images, 7u);
  EXPECT_EQ(in->matched, 7u);
  EXPECT_EQ(in->instances, 5u);
  const std::vector<Shape> back = Shapes("again");
  ASSERT_EQ(back.size(), 5u);
  EXPECT_EQ(back[0], (Shape{"dogs/1", "dog", "box", "", {2, 3, 10, 12}, json::object()}));
  EXPECT_EQ(back[1], (Shape{"dogs/1", "ball", "box", "", {30, 20, 11, 11}, json::object()}));
  EXPECT_EQ(back[2], (Shape{"dogs/4", "dog", "box", "", {0.5, 1.25, 63.5, 46.75}, json::object()}));
  EXPECT_EQ(back[3], (Shape{"cats/0", "cat", "box", "", {1, 1, 8, 7}, json::object()}));
  EXPECT_EQ(back[4], (Shape{"cats/1", "cat", "box", "", {15, 5, 5, 5}, json::object()}));
}

TEST_F(YoloTest, LabelFilesMatchByNameKeyOrUniqueBasename) {
  std::filesystem::create_directories(Path("y/labels/train/deep"));
  std::filesystem::create_directories(Path("y/labels/dogs"));
  test::WriteBytes(Path("y/classes.txt"), "dog\ncat\n\n");
  test::WriteBytes(Path("y/labels/dogs_1.txt"), "0 0.5 0.5 0.5 0.5\n");         // the yolo name
  test::WriteBytes(Path("y/labels/train/dogs_2.txt"), "1 0.5 0.5 0.2 0.2\n");   // its basename
  test::WriteBytes(Path("y/labels/dogs/3.txt"), "\n0 0.5 0.5 1 1\n\n");         // the key
  test::WriteBytes(Path("y/labels/train/deep/4.txt"), "0 0.1 0.1 0.2 0.2 0.3 0.1\n");  // basename
  test::WriteBytes(Path("y/labels/0.txt"), "0 0.5 0.5 1 1\n");  // cats/0 or dogs/0?
  test::WriteBytes(Path("y/labels/notes.md"), "not a label file");
  auto strict = ImportYolo(*cat_, "all", Path("y"));
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.status().message().find("1 label files match no file"), std::string::npos)
      << strict.status().message();
  EXPECT_NE(strict.status().message().find("labels/0.txt (several keys end so)"),
            std::string::npos);
  AnnotationImportOptions o;
  o.skip_missing = true;
  auto r = ImportYolo(*cat_, "all", Path("y"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images, 5u);
  EXPECT_EQ(r->matched, 4u);
  const std::vector<Shape> got = Shapes("all");
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], (Shape{"dogs/1", "dog", "box", "", {10.25, 7.75, 20.5, 15.5}, json::object()}));
  EXPECT_EQ(got[1].key, "dogs/2");
  EXPECT_EQ(got[1].label, "cat");
  EXPECT_EQ(got[2], (Shape{"dogs/3", "dog", "box", "", {0, 0, 43, 33}, json::object()}));
  // A YOLO segmentation line is a polygon (dogs/4 is 64x48).
  EXPECT_EQ(got[3], (Shape{"dogs/4", "dog", "polygon", "", {6.4, 4.8, 12.8, 9.6, 19.2, 4.8},
                           json::object()}));
}

TEST_F(YoloTest, HostileLabelFilesAreClearErrorsAndImportNothing) {
  std::filesystem::create_directories(Path("y/labels"));
  test::WriteBytes(Path("y/data.yaml"), "names: [dog, cat]\n");
  struct Case {
    std::string line, expect;
  };
  const std::vector<Case> cases = {
      {"2 0.5 0.5 0.1 0.1", ":1: class 2 is not among the 2 class names"},
      {"-1 0.5 0.5 0.1 0.1", "the class must be a whole number"},
      {"dog 0.5 0.5 0.1 0.1", "the class must be a whole number"},
      {"99999999999999999999999 0.5 0.5 0.1 0.1", "the class must be a whole number"},
      {"0 0.5 0.5 0.1", "3 numbers after the class"},
      {"0 0.5 0.5 0.1 0.1 0.3", "5 numbers after the class"},
      {"0 0.5 nan 0.1 0.1", "'nan' is not a number"},
      {"0 0.5 0.5x 0.1 0.1", "'0.5x' is not a number"},
      {"0 0.5 0.5 1e300 0.1", "outside [0, 1]"},
      {"0 12 20 5 5", "outside [0, 1]"},
  };
  for (const Case& c : cases) {
    test::WriteBytes(Path("y/labels/dogs_1.txt"), c.line + "\n");
    auto r = ImportYolo(*cat_, "all", Path("y"));
    ASSERT_FALSE(r.ok()) << c.line;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << "expected '" << c.expect << "' in: " << r.status().message();
    EXPECT_NE(r.status().message().find("dogs_1.txt:"), std::string::npos);
  }
  EXPECT_EQ(Count("all"), 0u);
  test::WriteBytes(Path("y/labels/dogs_1.txt"), std::string(2000, '\n'));
  AnnotationImportOptions o;
  o.max_label_file_bytes = 1000;
  EXPECT_EQ(ImportYolo(*cat_, "all", Path("y"), o).status().code(),
            Status::Code::kResourceExhausted);
  std::filesystem::remove(Path("y/data.yaml"));
  auto no_names = ImportYolo(*cat_, "all", Path("y"));
  EXPECT_TRUE(no_names.status().IsNotFound());
  EXPECT_NE(no_names.status().message().find("classes.txt"), std::string::npos);
  EXPECT_TRUE(ImportYolo(*cat_, "all", Path("nowhere")).status().IsNotFound());
}

TEST_F(CatalogDirExportTest, ShardsCarryFieldsAndAnnotations) {
  AddTo("all", "dogs/1", Box("dog", {2, 3, 10, 12}, R"({"pose":"sit"})"));
  AddTo("all", "dogs/1", Polygon("dog", {1, 1, 20, 1, 20, 15}));
  ASSERT_TRUE(cat_->CreateDirectory("dogs").ok());
  ASSERT_TRUE(cat_->Mirror("all", "dogs", [](const CatalogFile& f) {
                   return f.key.starts_with("dogs/");
                 }).ok());
  DirExportOptions o;
  o.sync = false;
  o.shard_samples = 2;
  auto r = ExportDirectory(*cat_, "dogs", Path("out"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->samples, 5u);
  EXPECT_EQ(r->shards, 3u);
  EXPECT_EQ(r->instances, 2u);
  auto ds = Dataset::Open(Path("out"));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  ASSERT_EQ((*ds)->num_samples(), 5u);
  auto source = Dataset::Open(Path("pets.shard"));
  Sample s, orig;
  for (uint64_t i = 0; i < 5; ++i) {
    ASSERT_TRUE((*ds)->Read(i, &s).ok());
    EXPECT_EQ(s.key, "dogs/" + std::to_string(i));
    EXPECT_EQ(s.Find(kAnnotationsField), nullptr);
    ASSERT_TRUE((*source)->Read(*(*source)->Find(s.key), &orig).ok());
    for (const Field& f : orig.fields) {
      ASSERT_NE(s.Find(f.name), nullptr);
      EXPECT_EQ(s.Find(f.name)->data, f.data);
    }
    const json j = json::parse(s.Find("json")->data);
    EXPECT_EQ(j["instances"].size(), i == 1 ? 2u : 0u);
  }
  ASSERT_TRUE((*ds)->Read(1, &s).ok());
  EXPECT_EQ(json::parse(s.Find("json")->data)["instances"][0],
            json::parse(R"({"attributes":{"pose":"sit"},"box":[2.0,3.0,10.0,12.0],"id":1,)"
                        R"("kind":"box","label":"dog"})"));
  VerifyReport report;
  ASSERT_TRUE((*ds)->Verify(&report).ok());
  EXPECT_TRUE(report.ok());

  // The same export again: already there. Another field name: refused
  // without --force.
  auto again = ExportDirectory(*cat_, "dogs", Path("out"), o);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->already_complete);
  o.field = "ann";
  EXPECT_FALSE(ExportDirectory(*cat_, "dogs", Path("out"), o).ok());
  o.force = true;
  ASSERT_TRUE(ExportDirectory(*cat_, "dogs", Path("out"), o).ok());

  // A sample that already has the field is named.
  o.field = "cls";
  o.force = false;
  auto taken = ExportDirectory(*cat_, "dogs", Path("out2"), o);
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.status().message().find("already has a field 'cls'"), std::string::npos)
      << taken.status().message();
  EXPECT_FALSE(std::filesystem::exists(Path("out2/manifest.json")));
}

}  // namespace
}  // namespace shardset
