// The pixel size of an image from its header alone (no pixels decoded):
// what COCO export writes as width/height and YOLO import and export
// normalise by.
#ifndef SHARDSET_CATALOG_IMAGE_SIZE_H_
#define SHARDSET_CATALOG_IMAGE_SIZE_H_

#include <cstdint>
#include <string_view>

#include "shardset/status.h"

namespace shardset {

struct ImageSize {
  uint32_t width = 0, height = 0;
};

// PNG (libspng reads the IHDR chunk) and JPEG
// (libjpeg-turbo reads the markers up to the frame header), recognised by
// their magic bytes. NotSupported for other formats, Corruption for a
// damaged header or one claiming no pixels.
Result<ImageSize> ReadImageSize(std::string_view data);

}  // namespace shardset

#endif  // SHARDSET_CATALOG_IMAGE_SIZE_H_
