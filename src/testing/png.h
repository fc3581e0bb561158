// A PNG encoder for tests (libspng): images made here with known pixels.
#ifndef SHARDSET_TESTING_PNG_H_
#define SHARDSET_TESTING_PNG_H_

#include <spng.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace shardset::test {

inline std::string EncodePng(uint32_t w, uint32_t h, uint8_t color_type, uint8_t depth,
                             const std::vector<uint8_t>& raw) {
  spng_ctx* ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  spng_ihdr ihdr{};
  ihdr.width = w;
  ihdr.height = h;
  ihdr.bit_depth = depth;
  ihdr.color_type = color_type;
  spng_set_ihdr(ctx, &ihdr);
  EXPECT_EQ(spng_encode_image(ctx, raw.data(), raw.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE), 0);
  size_t size = 0;
  int err = 0;
  void* png = spng_get_png_buffer(ctx, &size, &err);
  std::string out(static_cast<char*>(png), size);
  std::free(png);
  spng_ctx_free(ctx);
  return out;
}

}  // namespace shardset::test

#endif  // SHARDSET_TESTING_PNG_H_
