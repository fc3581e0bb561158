// Annotations in and out of a catalog directory (docs/catalog.md "Import
// and export"): COCO and YOLO files, and new shards with each sample's
// instances embedded (`dir export`).
//
// Imports match the file names they hold to the directory's files by key
// (rules in docs/catalog.md "What is matched") and add everything in one
// transaction: all of it or, on any error, nothing. Exports read the
// directory in one snapshot of the catalog (Catalog::ReadSnapshot), so
// concurrent edits land wholly before or after them, and write every file
// under its final name only when it is complete (temporary name, fsync,
// rename).
#ifndef SHARDSET_ANNOTATION_IO_H_
#define SHARDSET_ANNOTATION_IO_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "shardset/catalog.h"
#include "shardset/shard.h"
#include "shardset/status.h"

namespace shardset {

struct AnnotationImportOptions {
  // Remove every instance of the directory's files first (in the same
  // transaction); otherwise the imported instances are added to theirs, so
  // importing one file twice adds its instances twice.
  bool replace = false;
  // Images (COCO) or label files (YOLO) that match no file of the directory
  // are counted and reported; without this they are an error and nothing is
  // imported.
  bool skip_missing = false;
  // Bounds on hostile input: the COCO file's size, each YOLO label file's.
  uint64_t max_coco_bytes = uint64_t{2} << 30;
  uint64_t max_label_file_bytes = uint64_t{64} << 20;
  ReadOptions read;
};

struct AnnotationImportResult {
  uint64_t images = 0;     // COCO images, YOLO label files
  uint64_t matched = 0;    // of them, matched to a file of the directory
  uint64_t instances = 0;  // instances added
  uint64_t removed = 0;    // instances removed first (replace)
  uint64_t missing = 0;    // images or label files matching no file (skip_missing)
  std::vector<std::string> missing_names;  // the first few of them
};

// COCO instances JSON (images, annotations, categories): a bbox becomes a
// box instance, polygon segmentation a polygon (rings after the first in
// the attribute "extra_polygons"), RLE segmentation a mask instance whose
// reference is the RLE as JSON; the category's name is the label;
// "attributes" and other keys beyond COCO's become attributes, and
// iscrowd = 1 the attribute "iscrowd": 1.
Result<AnnotationImportResult> ImportCoco(Catalog& catalog, std::string_view dir,
                                          const std::string& coco_file,
                                          const AnnotationImportOptions& options = {});
// YOLO: yolo_dir/labels/**/<name>.txt, lines "class cx cy w h" (a box) or
// "class x1 y1 x2 y2 ..." (a polygon, YOLO segmentation), normalised to
// [0, 1] by the sample's image size (read from its header); class names from
// yolo_dir/data.yaml `names:` or yolo_dir/classes.txt.
Result<AnnotationImportResult> ImportYolo(Catalog& catalog, std::string_view dir,
                                          const std::string& yolo_dir,
                                          const AnnotationImportOptions& options = {});

struct AnnotationExportOptions {
  bool sync = true;  // fsync before renaming (crash safety)
  ReadOptions read;
};

struct AnnotationExportResult {
  uint64_t images = 0;      // COCO images, YOLO label files written
  uint64_t instances = 0;   // instances written
  uint64_t categories = 0;  // classes
  uint64_t skipped = 0;     // instances the format cannot hold (see each)
  uint64_t clipped = 0;     // YOLO: boxes clipped to the image
};

// COCO instances JSON: one image per file (id from 1 in directory order,
// file_name key.<image field>, width and height from the image's header),
// one annotation per instance (id = the instance's id, bbox, area,
// segmentation for polygons and COCO-RLE masks, iscrowd, attributes);
// categories are the labels in bytewise order, ids from 1. Masks whose
// reference is not COCO RLE are skipped (counted in `skipped`).
Result<AnnotationExportResult> ExportCoco(Catalog& catalog, std::string_view dir,
                                          const std::string& coco_file,
                                          const AnnotationExportOptions& options = {});
// YOLO detection: yolo_dir/labels/<name>.txt for every file of the
// directory (empty when it has no box), <name> as `shardset link
// CATALOG#NAME --layout yolo` names its image, lines "class cx cy w h";
// polygons become their bounding box, masks are skipped (counted); boxes
// are clipped to the image. yolo_dir/data.yaml lists the names (labels in
// bytewise order). Other files in yolo_dir are left alone.
Result<AnnotationExportResult> ExportYolo(Catalog& catalog, std::string_view dir,
                                          const std::string& yolo_dir,
                                          const AnnotationExportOptions& options = {});

struct DirExportOptions {
  ShardFormat format = ShardFormat::kNative;
  uint64_t shard_size = 256ull << 20;
  uint64_t shard_samples = 0;
  bool sync = true;
  // Replace a dataset or an interrupted export made with other settings.
  bool force = false;
  // The field holding {"instances": [InstanceJson, ...]}.
  std::string field = "json";
  ReadOptions read;
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct DirExportResult {
  uint64_t samples = 0, shards = 0, bytes = 0, instances = 0;
  uint64_t resumed_samples = 0;
  bool already_complete = false;
};

// New shards in `out` (a dataset folder, written like pack: shard by shard,
// crash-safe, an interrupted run resumed) holding every sample of the
// directory in order: its fields (the derived `annotations` field left
// out) plus `options.field` with its current instances. A sample that
// already has a field of that name is an error naming it.
Result<DirExportResult> ExportDirectory(Catalog& catalog, std::string_view dir,
                                        const std::string& out,
                                        const DirExportOptions& options = {});

}  // namespace shardset

#endif  // SHARDSET_ANNOTATION_IO_H_
