// libFuzzer target for annotation imports (docs/catalog.md "Import and
// export"): the input is a COCO file, a YOLO label file or a data.yaml
// (chosen by its first byte) imported into a directory of a valid catalog
// over two PNG samples. Any input must give OK or one error line, never a
// crash, a hang or a catalog that fails its integrity check; an import
// that fails must add nothing. docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "shardset/annotation_io.h"
#include "shardset/catalog.h"
#include "shardset/view.h"
#include "testing/fuzz_util.h"

namespace {

using namespace shardset;

// A 4x3 grayscale PNG.
const std::string_view kPng(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x04\x00\x00"
    "\x00\x03\x08\x00\x00\x00\x00\x91\x9f\xf1\x1a\x00\x00\x00\x10\x49\x44\x41\x54\x78\x9c\x63"
    "\x64\x67\x60\x60\x60\x62\x80\x11\x00\x00\x9e\x00\x0d\x0d\x56\x39\x38\x00\x00\x00\x00\x49"
    "\x45\x4e\x44\xae\x42\x60\x82",
    73);

struct Companion {
  std::unique_ptr<Catalog> catalog;
  std::string coco, yolo, label, yaml;
};
Companion* companion = nullptr;

uint64_t Instances(Catalog& c) {
  auto dirs = c.Directories();
  if (!dirs.ok()) fuzz::Fail("cannot list the catalog's directories");
  return dirs->empty() ? 0 : (*dirs)[0].instances;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  auto* c = new Companion;
  const std::string shard = fuzz::ScratchPath("pets.shard");
  WriteOptions wo;
  wo.sync = false;
  auto w = CreateShardWriter(shard, ShardFormat::kNative, wo);
  if (!w.ok()) fuzz::Fail("cannot write the companion shard");
  for (const char* key : {"dogs/1", "cats/1"}) {
    InputSample s;
    s.key = key;
    s.fields.push_back(InputField{"png", std::string(kPng), 0});
    if (!(*w)->Add(s).ok()) fuzz::Fail("cannot write the companion shard");
  }
  if (!(*w)->Close().ok()) fuzz::Fail("cannot write the companion shard");
  auto cat = Catalog::Open(fuzz::ScratchPath("pets.catalog"), /*create=*/true);
  if (!cat.ok()) fuzz::Fail("cannot make the companion catalog");
  c->catalog = std::move(*cat);
  auto view = View::Open(shard);
  if (!view.ok() || !c->catalog->CreateDirectory("all").ok() ||
      !c->catalog->Add("all", **view).ok()) {
    fuzz::Fail("cannot fill the companion catalog");
  }
  c->coco = fuzz::ScratchPath("in.json");
  c->yolo = fuzz::ScratchPath("yolo");
  std::filesystem::create_directories(c->yolo + "/labels");
  c->label = c->yolo + "/labels/dogs_1.txt";
  c->yaml = c->yolo + "/data.yaml";
  // Seeds: one of each kind, as the exports write them.
  fuzz::Overwrite(fuzz::ScratchPath("seed-coco"),
                  std::string("c") + R"({"images": [{"id": 1, "file_name": "dogs/1.png"}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]},
    {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 3, 0, 3, 2]]},
    {"id": 3, "image_id": 1, "category_id": 1, "segmentation": {"size": [3, 4], "counts": [3, 2, 7]}}],
    "categories": [{"id": 1, "name": "dog"}]})");
  fuzz::Overwrite(fuzz::ScratchPath("seed-yolo"), "y0 0.5 0.5 0.25 0.5\n1 0.1 0.1 0.9 0.1 0.5 0.9\n");
  fuzz::Overwrite(fuzz::ScratchPath("seed-yaml"), "nnames:\n  0: dog\n  1: 'cat'\n");
  fuzz::OfferSeed(fuzz::ScratchPath("seed-coco"), "coco");
  fuzz::OfferSeed(fuzz::ScratchPath("seed-yolo"), "yolo");
  fuzz::OfferSeed(fuzz::ScratchPath("seed-yaml"), "yaml");
  companion = c;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Companion& c = *companion;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  AnnotationImportOptions o;
  o.replace = true;  // keeps the catalog small
  o.skip_missing = data[0] & 1;
  const uint64_t before = Instances(*c.catalog);
  Status s;
  switch (data[0] % 3) {
    case 0:  // 'c' (99): a COCO file
      fuzz::Overwrite(c.coco, body);
      s = ImportCoco(*c.catalog, "all", c.coco, o).status();
      break;
    case 1:  // 'y' (121): a label file, with names [dog, cat]
      fuzz::Overwrite(c.yaml, "names: [dog, cat]\n");
      fuzz::Overwrite(c.label, body);
      s = ImportYolo(*c.catalog, "all", c.yolo, o).status();
      break;
    default:  // 'n' (110): a data.yaml, with one valid label file
      fuzz::Overwrite(c.yaml, body);
      fuzz::Overwrite(c.label, "0 0.5 0.5 0.5 0.5\n");
      s = ImportYolo(*c.catalog, "all", c.yolo, o).status();
      break;
  }
  if (!s.ok()) {
    if (s.message().empty() || s.message().find('\n') != std::string::npos) {
      fuzz::Fail("an import error is not one line");
    }
    if (Instances(*c.catalog) != before) fuzz::Fail("a failed import changed the catalog");
  }
  return 0;
}
