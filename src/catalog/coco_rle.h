// COCO's run-length encoded masks: {"size": [height, width], "counts": runs}
// where the runs alternate background and foreground pixels in column-major
// order, starting with background, either as a list of integers or in
// pycocotools' compressed string form (rleToString). A mask instance whose
// reference is such a JSON object is exported as RLE segmentation.
#ifndef SHARDSET_CATALOG_COCO_RLE_H_
#define SHARDSET_CATALOG_COCO_RLE_H_

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "shardset/status.h"

namespace shardset {

struct CocoRle {
  uint64_t height = 0, width = 0;
  std::vector<uint64_t> counts;  // decoded runs
  nlohmann::json counts_json;    // as given: a list or the compressed string

  // {"counts": ..., "size": [height, width]}, counts as given.
  nlohmann::json ToJson() const;
  // Foreground pixels.
  uint64_t Area() const;
  // [x, y, width, height] of the foreground, as pycocotools' toBbox.
  std::vector<double> Bbox() const;
};

// InvalidArgument saying what is wrong: sizes that are not two
// non-negative integers, counts that are not runs, or runs that do not add
// up to height * width.
Result<CocoRle> ParseCocoRle(const nlohmann::json& j);

// pycocotools' rleFrString: the compressed counts string to runs.
Result<std::vector<uint64_t>> DecodeRleString(std::string_view s);

}  // namespace shardset

#endif  // SHARDSET_CATALOG_COCO_RLE_H_
