// DecodeImage against images encoded here by libspng and libjpeg-turbo:
// every channel layout, damage, and headers that claim too much.
#include "image/image.h"

#include <spng.h>
#include <turbojpeg.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "testing/png.h"

namespace shardset {
namespace {

using test::EncodePng;

std::vector<uint8_t> Pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 7 + i / 13);
  return v;
}

TEST(ImageTest, PngLayouts) {
  struct Case {
    uint8_t color_type, depth;
    uint32_t in_channels, out_channels;
  };
  for (const Case& c : {Case{SPNG_COLOR_TYPE_GRAYSCALE, 8, 1, 1},
                        Case{SPNG_COLOR_TYPE_TRUECOLOR, 8, 3, 3},
                        Case{SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 8, 4, 4},
                        Case{SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 8, 2, 4}}) {
    const uint32_t w = 28, h = 17;
    const auto raw = Pattern(w * h * c.in_channels);
    auto img = DecodeImage(EncodePng(w, h, c.color_type, c.depth, raw));
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    EXPECT_EQ(img->height, h);
    EXPECT_EQ(img->width, w);
    EXPECT_EQ(img->channels, c.out_channels);
    ASSERT_EQ(img->pixels.size(), size_t{w} * h * c.out_channels);
    if (c.in_channels == c.out_channels) {
      EXPECT_EQ(img->pixels, raw);
    }
    if (c.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA) {
      for (size_t p = 0; p < size_t{w} * h; ++p) {  // gray g, alpha a -> g, g, g, a
        ASSERT_EQ(img->pixels[4 * p], raw[2 * p]);
        ASSERT_EQ(img->pixels[4 * p + 2], raw[2 * p]);
        ASSERT_EQ(img->pixels[4 * p + 3], raw[2 * p + 1]);
      }
    }
  }
}

TEST(ImageTest, SixteenBitPngBecomesEightBit) {
  const uint32_t w = 5, h = 3;
  // spng takes 16-bit samples in host byte order.
  std::vector<uint16_t> samples(w * h * 3);
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = static_cast<uint16_t>(i * 4000 + 77);
  std::vector<uint8_t> raw(samples.size() * 2);
  std::memcpy(raw.data(), samples.data(), raw.size());
  auto img = DecodeImage(EncodePng(w, h, SPNG_COLOR_TYPE_TRUECOLOR, 16, raw));
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  ASSERT_EQ(img->channels, 3u);
  for (size_t i = 0; i < img->pixels.size(); ++i) {
    EXPECT_NEAR(img->pixels[i], samples[i] / 257.0, 1) << i;
  }
}

TEST(ImageTest, Jpeg) {
  tjhandle tj = tjInitCompress();
  for (int gray : {1, 0}) {
    const int w = 32, h = 24, ch = gray ? 1 : 3;
    // A smooth gradient: what JPEG keeps well.
    std::vector<uint8_t> raw(w * h * ch);
    for (int i = 0; i < w * h * ch; ++i) {
      const int px = i / ch, x = px % w, y = px / w;
      raw[i] = static_cast<uint8_t>(60 + 2 * x + 3 * y + 20 * (i % ch));
    }
    unsigned char* jpeg = nullptr;
    unsigned long size = 0;
    ASSERT_EQ(tjCompress2(tj, raw.data(), w, 0, h, gray ? TJPF_GRAY : TJPF_RGB, &jpeg, &size,
                          gray ? TJSAMP_GRAY : TJSAMP_444, 95, 0),
              0);
    std::string data(reinterpret_cast<char*>(jpeg), size);
    tjFree(jpeg);
    auto img = DecodeImage(data);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    EXPECT_EQ(img->width, uint32_t(w));
    EXPECT_EQ(img->height, uint32_t(h));
    EXPECT_EQ(img->channels, uint32_t(ch));
    double error = 0;
    for (size_t i = 0; i < raw.size(); ++i) {
      ASSERT_NEAR(img->pixels[i], raw[i], 8) << i;
      error += std::abs(int(img->pixels[i]) - int(raw[i]));
    }
    EXPECT_LT(error / raw.size(), 1.5);
    // Cut short: an error, not a half image.
    EXPECT_EQ(DecodeImage(data.substr(0, data.size() / 2)).status().code(),
              Status::Code::kCorruption);
  }
  tjDestroy(tj);
}

TEST(ImageTest, DamageAndBounds) {
  const auto raw = Pattern(28 * 28);
  std::string png = EncodePng(28, 28, SPNG_COLOR_TYPE_GRAYSCALE, 8, raw);
  std::string flipped = png;
  flipped[png.size() / 2] ^= 0x10;
  EXPECT_EQ(DecodeImage(flipped).status().code(), Status::Code::kCorruption);
  EXPECT_EQ(DecodeImage(png.substr(0, png.size() - 20)).status().code(),
            Status::Code::kCorruption);
  EXPECT_EQ(DecodeImage("GIF89a....").status().code(), Status::Code::kNotSupported);
  EXPECT_EQ(DecodeImage("").status().code(), Status::Code::kNotSupported);
  // An IHDR claiming 100,000 x 100,000 RGB pixels: refused before allocating.
  std::vector<uint8_t> tiny(3);
  std::string big = EncodePng(1, 1, SPNG_COLOR_TYPE_TRUECOLOR, 8, tiny);
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) big[at + i] = static_cast<char>(v >> (24 - 8 * i));
  };
  put32(16, 100000);
  put32(20, 100000);
  // The IHDR CRC (bytes 29..32) is now wrong too; spng may report either.
  const Status s = DecodeImage(big).status();
  EXPECT_TRUE(s.code() == Status::Code::kResourceExhausted ||
              s.code() == Status::Code::kCorruption)
      << s.ToString();
}

// Thumbnails (shardset serve): small images pass through untouched; large
// ones become a JPEG within the bound, keeping the aspect ratio and the
// colours of the regions they average, with alpha over white.
TEST(ImageTest, Thumbnails) {
  bool jpeg = true;
  const auto raw = Pattern(28 * 28);
  const std::string small = EncodePng(28, 28, SPNG_COLOR_TYPE_GRAYSCALE, 8, raw);
  auto same = MakeThumbnail(small, 128, &jpeg);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_FALSE(jpeg);
  EXPECT_EQ(*same, small);

  // 400 x 200 RGB: left half red, right half blue.
  std::vector<uint8_t> rgb(400 * 200 * 3);
  for (size_t y = 0; y < 200; ++y) {
    for (size_t x = 0; x < 400; ++x) {
      uint8_t* p = &rgb[(y * 400 + x) * 3];
      p[0] = x < 200 ? 255 : 0;
      p[2] = x < 200 ? 0 : 255;
    }
  }
  auto thumb = MakeThumbnail(EncodePng(400, 200, SPNG_COLOR_TYPE_TRUECOLOR, 8, rgb), 100, &jpeg);
  ASSERT_TRUE(thumb.ok()) << thumb.status().ToString();
  EXPECT_TRUE(jpeg);
  auto img = DecodeImage(*thumb);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->width, 100u);
  EXPECT_EQ(img->height, 50u);
  const uint8_t* left = &img->pixels[(25 * 100 + 10) * 3];
  const uint8_t* right = &img->pixels[(25 * 100 + 90) * 3];
  EXPECT_GT(left[0], 230);
  EXPECT_LT(left[2], 30);
  EXPECT_LT(right[0], 30);
  EXPECT_GT(right[2], 230);

  // Fully transparent RGBA: white.
  std::vector<uint8_t> rgba(300 * 300 * 4, 0);
  thumb = MakeThumbnail(EncodePng(300, 300, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 8, rgba), 64, &jpeg);
  ASSERT_TRUE(thumb.ok());
  img = DecodeImage(*thumb);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->channels, 3u);
  EXPECT_GT(img->pixels[(32 * 64 + 32) * 3], 245);

  EXPECT_EQ(MakeThumbnail("not an image", 64, &jpeg).status().code(),
            Status::Code::kNotSupported);
}

}  // namespace
}  // namespace shardset
