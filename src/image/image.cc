#include "image/image.h"

#include <spng.h>
#include <turbojpeg.h>

#include <cstring>
#include <memory>

#include <fmt/format.h>

namespace shardset {
namespace {

constexpr unsigned char kPngMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

Status TooLarge(uint64_t w, uint64_t h, uint64_t c) {
  return Status::ResourceExhausted(
      fmt::format("image of {}x{}x{} is larger than the {} bytes a decode may use", w, h, c,
                  kMaxImageBytes));
}

Result<Image> DecodePng(std::string_view data) {
  std::unique_ptr<spng_ctx, decltype(&spng_ctx_free)> ctx(spng_ctx_new(0), spng_ctx_free);
  if (!ctx) return Status::ResourceExhausted("cannot allocate a PNG decoder");
  // The ancillary chunks' CRCs are checked too: a flipped bit is an error.
  spng_set_crc_action(ctx.get(), SPNG_CRC_ERROR, SPNG_CRC_ERROR);
  spng_set_png_buffer(ctx.get(), data.data(), data.size());
  spng_ihdr ihdr;
  if (int e = spng_get_ihdr(ctx.get(), &ihdr)) {
    return Status::Corruption(fmt::format("not a valid PNG header: {}", spng_strerror(e)));
  }
  int fmt = SPNG_FMT_RGB8;
  uint32_t channels = 3;
  spng_trns trns;
  const bool has_trns = spng_get_trns(ctx.get(), &trns) == 0;
  if (ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE && ihdr.bit_depth <= 8 && !has_trns) {
    fmt = SPNG_FMT_G8;
    channels = 1;
  } else if (ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA ||
             ihdr.color_type == SPNG_COLOR_TYPE_TRUECOLOR_ALPHA || has_trns) {
    fmt = SPNG_FMT_RGBA8;
    channels = 4;
  }
  if (uint64_t{ihdr.width} * ihdr.height * channels > kMaxImageBytes) {
    return TooLarge(ihdr.width, ihdr.height, channels);
  }
  size_t size = 0;
  if (int e = spng_decoded_image_size(ctx.get(), fmt, &size)) {
    return Status::Corruption(fmt::format("PNG: {}", spng_strerror(e)));
  }
  Image img;
  img.height = ihdr.height;
  img.width = ihdr.width;
  img.channels = channels;
  img.pixels.resize(size);
  if (int e = spng_decode_image(ctx.get(), img.pixels.data(), size, fmt, SPNG_DECODE_TRNS)) {
    return Status::Corruption(fmt::format("PNG: {}", spng_strerror(e)));
  }
  return img;
}

Result<Image> DecodeJpeg(std::string_view data) {
  std::unique_ptr<void, decltype(&tjDestroy)> tj(tjInitDecompress(), tjDestroy);
  if (!tj) return Status::ResourceExhausted("cannot allocate a JPEG decoder");
  auto* buf = reinterpret_cast<unsigned char*>(const_cast<char*>(data.data()));
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.get(), buf, data.size(), &w, &h, &subsamp, &colorspace) != 0) {
    return Status::Corruption(fmt::format("not a valid JPEG header: {}", tjGetErrorStr2(tj.get())));
  }
  const bool gray = colorspace == TJCS_GRAY;
  const uint32_t channels = gray ? 1 : 3;
  if (w <= 0 || h <= 0) return Status::Corruption("JPEG with no pixels");
  if (uint64_t(w) * uint64_t(h) * channels > kMaxImageBytes) return TooLarge(w, h, channels);
  Image img;
  img.height = h;
  img.width = w;
  img.channels = channels;
  img.pixels.resize(uint64_t(w) * h * channels);
  if (tjDecompress2(tj.get(), buf, data.size(), img.pixels.data(), w, 0, h,
                    gray ? TJPF_GRAY : TJPF_RGB, TJFLAG_ACCURATEDCT) != 0) {
    // Warnings (a truncated but displayable file) are errors too: a sample
    // is either whole or reported.
    return Status::Corruption(fmt::format("JPEG: {}", tjGetErrorStr2(tj.get())));
  }
  return img;
}

}  // namespace

Result<Image> DecodeImage(std::string_view data) {
  if (data.size() >= 8 && std::memcmp(data.data(), kPngMagic, 8) == 0) return DecodePng(data);
  if (data.size() >= 3 && static_cast<unsigned char>(data[0]) == 0xFF &&
      static_cast<unsigned char>(data[1]) == 0xD8 && static_cast<unsigned char>(data[2]) == 0xFF) {
    return DecodeJpeg(data);
  }
  return Status::NotSupported("not a PNG or JPEG image (decode takes those two)");
}

}  // namespace shardset
