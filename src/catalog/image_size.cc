#include "catalog/image_size.h"

#include <spng.h>
#include <turbojpeg.h>

#include <cstring>
#include <memory>

#include <fmt/format.h>

namespace shardset {

Result<ImageSize> ReadImageSize(std::string_view data) {
  static constexpr unsigned char kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (data.size() >= 8 && std::memcmp(data.data(), kPng, 8) == 0) {
    std::unique_ptr<spng_ctx, decltype(&spng_ctx_free)> ctx(spng_ctx_new(0), spng_ctx_free);
    if (!ctx) return Status::ResourceExhausted("cannot allocate a PNG decoder");
    spng_set_crc_action(ctx.get(), SPNG_CRC_ERROR, SPNG_CRC_ERROR);
    spng_set_png_buffer(ctx.get(), data.data(), data.size());
    spng_ihdr ihdr;
    if (int e = spng_get_ihdr(ctx.get(), &ihdr)) {
      return Status::Corruption(fmt::format("not a valid PNG header: {}", spng_strerror(e)));
    }
    return ImageSize{ihdr.width, ihdr.height};
  }
  const auto* u = reinterpret_cast<const unsigned char*>(data.data());
  if (data.size() >= 3 && u[0] == 0xFF && u[1] == 0xD8 && u[2] == 0xFF) {
    std::unique_ptr<void, decltype(&tjDestroy)> tj(tjInitDecompress(), tjDestroy);
    if (!tj) return Status::ResourceExhausted("cannot allocate a JPEG decoder");
    int w = 0, h = 0, subsamp = 0, colorspace = 0;
    if (tjDecompressHeader3(tj.get(), const_cast<unsigned char*>(u), data.size(), &w, &h,
                            &subsamp, &colorspace) != 0) {
      return Status::Corruption(
          fmt::format("not a valid JPEG header: {}", tjGetErrorStr2(tj.get())));
    }
    if (w <= 0 || h <= 0) return Status::Corruption("a JPEG with no pixels");
    return ImageSize{static_cast<uint32_t>(w), static_cast<uint32_t>(h)};
  }
  return Status::NotSupported(
      "not a PNG or JPEG image (shardset reads the size of those two from their headers)");
}

}  // namespace shardset
