#include "image/image.h"

#include <spng.h>
#include <turbojpeg.h>

#include <algorithm>
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

Result<std::string> MakeThumbnail(std::string_view data, uint32_t max_side, bool* jpeg) {
  *jpeg = false;
  SHARDSET_ASSIGN_OR_RETURN(ImageSize size, ReadImageSize(data));
  if (max_side == 0) return Status::InvalidArgument("a thumbnail needs a size above 0");
  if (size.width <= max_side && size.height <= max_side) return std::string(data);
  SHARDSET_ASSIGN_OR_RETURN(Image img, DecodeImage(data));
  const uint64_t side = std::max(img.width, img.height);
  const uint32_t w = std::max<uint32_t>(1, uint32_t(uint64_t(img.width) * max_side / side));
  const uint32_t h = std::max<uint32_t>(1, uint32_t(uint64_t(img.height) * max_side / side));
  const uint32_t out_channels = img.channels == 1 ? 1 : 3;
  std::vector<uint8_t> out(size_t(w) * h * out_channels);
  // Each output pixel averages the source box it covers (at least one pixel).
  for (uint32_t y = 0; y < h; ++y) {
    const uint32_t y0 = uint32_t(uint64_t(y) * img.height / h);
    const uint32_t y1 = std::max(y0 + 1, uint32_t(uint64_t(y + 1) * img.height / h));
    for (uint32_t x = 0; x < w; ++x) {
      const uint32_t x0 = uint32_t(uint64_t(x) * img.width / w);
      const uint32_t x1 = std::max(x0 + 1, uint32_t(uint64_t(x + 1) * img.width / w));
      uint64_t sum[3] = {0, 0, 0};
      for (uint32_t sy = y0; sy < y1; ++sy) {
        const uint8_t* row = img.pixels.data() + (size_t(sy) * img.width) * img.channels;
        for (uint32_t sx = x0; sx < x1; ++sx) {
          const uint8_t* p = row + size_t(sx) * img.channels;
          if (img.channels == 1) {
            sum[0] += p[0];
          } else {
            const uint32_t a = img.channels == 4 ? p[3] : 255;
            for (int c = 0; c < 3; ++c) sum[c] += (p[c] * a + 255 * (255 - a)) / 255;
          }
        }
      }
      const uint64_t n = uint64_t(y1 - y0) * (x1 - x0);
      for (uint32_t c = 0; c < out_channels; ++c) {
        out[(size_t(y) * w + x) * out_channels + c] = uint8_t(sum[c] / n);
      }
    }
  }
  std::unique_ptr<void, decltype(&tjDestroy)> enc(tjInitCompress(), tjDestroy);
  if (!enc) return Status::ResourceExhausted("cannot allocate a JPEG encoder");
  unsigned char* buf = nullptr;
  unsigned long buf_size = 0;
  if (tjCompress2(enc.get(), out.data(), int(w), 0, int(h),
                  out_channels == 1 ? TJPF_GRAY : TJPF_RGB, &buf, &buf_size,
                  out_channels == 1 ? TJSAMP_GRAY : TJSAMP_420, 85, 0) != 0) {
    if (buf) tjFree(buf);
    return Status::IOError(fmt::format("JPEG encoding failed: {}", tjGetErrorStr2(enc.get())));
  }
  std::string bytes(reinterpret_cast<const char*>(buf), buf_size);
  tjFree(buf);
  *jpeg = true;
  return bytes;
}

}  // namespace shardset
