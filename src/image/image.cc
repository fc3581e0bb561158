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

using PngDecoder = std::unique_ptr<spng_ctx, decltype(&spng_ctx_free)>;

// A decoder over `data` with its header read into *ihdr.
Result<PngDecoder> OpenPng(std::string_view data, spng_ihdr* ihdr) {
  PngDecoder ctx(spng_ctx_new(0), spng_ctx_free);
  if (!ctx) return Status::ResourceExhausted("cannot allocate a PNG decoder");
  // The ancillary chunks' CRCs are checked too: a flipped bit is an error.
  spng_set_crc_action(ctx.get(), SPNG_CRC_ERROR, SPNG_CRC_ERROR);
  spng_set_png_buffer(ctx.get(), data.data(), data.size());
  if (int e = spng_get_ihdr(ctx.get(), ihdr)) {
    return Status::Corruption(fmt::format("not a valid PNG header: {}", spng_strerror(e)));
  }
  return ctx;
}

using JpegDecoder = std::unique_ptr<void, decltype(&tjDestroy)>;
struct JpegHeader {
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
};

// A decoder for `data` with its frame header read into *h (no pixels).
Result<JpegDecoder> OpenJpeg(std::string_view data, JpegHeader* h) {
  JpegDecoder tj(tjInitDecompress(), tjDestroy);
  if (!tj) return Status::ResourceExhausted("cannot allocate a JPEG decoder");
  auto* buf = reinterpret_cast<unsigned char*>(const_cast<char*>(data.data()));
  if (tjDecompressHeader3(tj.get(), buf, data.size(), &h->width, &h->height, &h->subsamp,
                          &h->colorspace) != 0) {
    return Status::Corruption(fmt::format("not a valid JPEG header: {}", tjGetErrorStr2(tj.get())));
  }
  if (h->width <= 0 || h->height <= 0) return Status::Corruption("JPEG with no pixels");
  return tj;
}

bool IsPng(std::string_view data) {
  return data.size() >= 8 && std::memcmp(data.data(), kPngMagic, 8) == 0;
}

bool IsJpeg(std::string_view data) {
  return data.size() >= 3 && static_cast<unsigned char>(data[0]) == 0xFF &&
         static_cast<unsigned char>(data[1]) == 0xD8 && static_cast<unsigned char>(data[2]) == 0xFF;
}

Result<Image> DecodePng(std::string_view data) {
  spng_ihdr ihdr;
  SHARDSET_ASSIGN_OR_RETURN(PngDecoder ctx, OpenPng(data, &ihdr));
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
  JpegHeader header;
  SHARDSET_ASSIGN_OR_RETURN(JpegDecoder tj, OpenJpeg(data, &header));
  auto* buf = reinterpret_cast<unsigned char*>(const_cast<char*>(data.data()));
  const int w = header.width, h = header.height;
  const bool gray = header.colorspace == TJCS_GRAY;
  const uint32_t channels = gray ? 1 : 3;
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
  if (IsPng(data)) return DecodePng(data);
  if (IsJpeg(data)) return DecodeJpeg(data);
  return Status::NotSupported("not a PNG or JPEG image (decode takes those two)");
}

Result<ImageSize> ReadImageSize(std::string_view data) {
  if (IsPng(data)) {
    spng_ihdr ihdr;
    SHARDSET_RETURN_IF_ERROR(OpenPng(data, &ihdr).status());
    return ImageSize{ihdr.width, ihdr.height};
  }
  if (IsJpeg(data)) {
    JpegHeader h;
    SHARDSET_RETURN_IF_ERROR(OpenJpeg(data, &h).status());
    return ImageSize{static_cast<uint32_t>(h.width), static_cast<uint32_t>(h.height)};
  }
  return Status::NotSupported(
      "not a PNG or JPEG image (shardset reads the size of those two from their headers)");
}

}  // namespace shardset
