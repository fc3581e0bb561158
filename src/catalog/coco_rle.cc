#include "catalog/coco_rle.h"

#include <algorithm>

#include <fmt/format.h>

namespace shardset {

using json = nlohmann::json;

namespace {

// A JSON integer that is not negative (parsed ones are unsigned; built
// ones may be signed).
bool NonNegative(const json& j) {
  return j.is_number_unsigned() || (j.is_number_integer() && j.get<int64_t>() >= 0);
}

}  // namespace

Result<std::vector<uint64_t>> DecodeRleString(std::string_view s) {
  // Each run is a little-endian series of 5-bit groups in characters from
  // '0' (48); 0x20 marks "more follows", 0x10 in the last group the sign.
  // From the third run on, runs are stored as the difference to the run
  // two before.
  std::vector<uint64_t> out;
  size_t p = 0;
  while (p < s.size()) {
    int64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      if (p >= s.size()) return Status::InvalidArgument("RLE counts string ends inside a run");
      const int c = static_cast<unsigned char>(s[p]) - 48;
      if (c < 0 || c > 63) {
        return Status::InvalidArgument("RLE counts string has a character outside '0'..'o'");
      }
      if (k >= 12) return Status::InvalidArgument("RLE counts string has a run too long");
      x |= static_cast<int64_t>(c & 0x1f) << (5 * k);
      more = (c & 0x20) != 0;
      ++p;
      ++k;
      if (!more && (c & 0x10)) x |= static_cast<int64_t>(~uint64_t{0} << (5 * k));
    }
    if (out.size() > 2) x += static_cast<int64_t>(out[out.size() - 2]);
    if (x < 0) return Status::InvalidArgument("RLE counts string decodes to a negative run");
    out.push_back(static_cast<uint64_t>(x));
  }
  return out;
}

Result<CocoRle> ParseCocoRle(const json& j) {
  CocoRle r;
  auto size = j.find("size");
  auto counts = j.find("counts");
  if (size == j.end() || counts == j.end()) {
    return Status::InvalidArgument("an RLE segmentation has 'size' [height, width] and 'counts'");
  }
  if (!size->is_array() || size->size() != 2 || !NonNegative((*size)[0]) ||
      !NonNegative((*size)[1]) || (*size)[0].get<uint64_t>() > (uint64_t{1} << 31) ||
      (*size)[1].get<uint64_t>() > (uint64_t{1} << 31)) {
    return Status::InvalidArgument("RLE 'size' must be [height, width], two integers up to 2^31");
  }
  r.height = (*size)[0].get<uint64_t>();
  r.width = (*size)[1].get<uint64_t>();
  if (counts->is_string()) {
    SHARDSET_ASSIGN_OR_RETURN(r.counts, DecodeRleString(counts->get<std::string>()));
  } else if (counts->is_array()) {
    r.counts.reserve(counts->size());
    for (const json& c : *counts) {
      if (!NonNegative(c)) {
        return Status::InvalidArgument("RLE 'counts' must be non-negative integers");
      }
      r.counts.push_back(c.get<uint64_t>());
    }
  } else {
    return Status::InvalidArgument("RLE 'counts' must be a list of runs or a compressed string");
  }
  const uint64_t total = r.height * r.width;
  uint64_t sum = 0;
  for (uint64_t c : r.counts) {
    if (c > total - std::min(sum, total)) {
      return Status::InvalidArgument(fmt::format(
          "RLE 'counts' add up to more than height x width = {} pixels", total));
    }
    sum += c;
  }
  if (sum != total) {
    return Status::InvalidArgument(fmt::format(
        "RLE 'counts' add up to {} pixels, but 'size' says {} x {} = {}", sum, r.height,
        r.width, total));
  }
  r.counts_json = *counts;
  return r;
}

json CocoRle::ToJson() const {
  return json{{"counts", counts_json}, {"size", {height, width}}};
}

uint64_t CocoRle::Area() const {
  uint64_t a = 0;
  for (size_t i = 1; i < counts.size(); i += 2) a += counts[i];
  return a;
}

std::vector<double> CocoRle::Bbox() const {
  if (height == 0) return {0, 0, 0, 0};
  uint64_t at = 0;
  uint64_t x0 = UINT64_MAX, y0 = UINT64_MAX, x1 = 0, y1 = 0;
  bool any = false;
  for (size_t i = 0; i < counts.size(); ++i) {
    const uint64_t start = at;
    at += counts[i];
    if (i % 2 == 0 || counts[i] == 0) continue;
    const uint64_t end = at - 1;  // last pixel of the run
    const uint64_t xa = start / height, xb = end / height;
    uint64_t ya = start % height, yb = end % height;
    if (xa != xb) {  // the run wraps a column: every row is touched
      ya = 0;
      yb = height - 1;
    }
    any = true;
    x0 = std::min(x0, xa);
    x1 = std::max(x1, xb);
    y0 = std::min(y0, std::min(ya, yb));
    y1 = std::max(y1, std::max(ya, yb));
  }
  if (!any) return {0, 0, 0, 0};
  return {static_cast<double>(x0), static_cast<double>(y0), static_cast<double>(x1 - x0 + 1),
          static_cast<double>(y1 - y0 + 1)};
}

}  // namespace shardset
