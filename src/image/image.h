// Decoding PNG and JPEG samples to 8-bit pixels (libspng, libjpeg-turbo),
// for loaders that want arrays instead of file bytes (docs/python.md
// "Decoding"). Thread-safe: every call is independent.
#ifndef SHARDSET_IMAGE_IMAGE_H_
#define SHARDSET_IMAGE_IMAGE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shardset/status.h"

namespace shardset {

// Height x width x channels bytes, row-major (HWC), 8 bits per channel.
struct Image {
  uint32_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

// The largest image decoded: width * height * channels bytes. A header
// claiming more is refused (ResourceExhausted) before anything is allocated.
inline constexpr uint64_t kMaxImageBytes = uint64_t{1} << 30;

// Decodes a PNG or JPEG (recognised by its magic bytes). Channels: 1 for
// grayscale without alpha, 4 for images with alpha (PNG), else 3 (RGB);
// 16-bit PNGs are scaled to 8 bits. NotSupported for other formats,
// Corruption for damaged data.
Result<Image> DecodeImage(std::string_view data);

struct ImageSize {
  uint32_t width = 0, height = 0;
};

// The pixel size of a PNG (its IHDR chunk) or JPEG (its markers up to the
// frame header) without decoding a pixel: what COCO export writes as
// width/height and YOLO import and export normalise by. NotSupported for
// other formats, Corruption for a damaged header or one claiming no pixels.
Result<ImageSize> ReadImageSize(std::string_view data);

// A small preview of a PNG or JPEG for `shardset serve`'s grid: when the
// image fits in `max_side` x `max_side` pixels, its own bytes (`*jpeg` false);
// otherwise a JPEG at most that size (`*jpeg` true), shrunk by averaging
// pixel boxes, alpha composited over white. Errors as DecodeImage's.
Result<std::string> MakeThumbnail(std::string_view data, uint32_t max_side, bool* jpeg);

}  // namespace shardset

#endif  // SHARDSET_IMAGE_IMAGE_H_
