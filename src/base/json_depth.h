// A bound on the nesting of JSON read from files (manifests, view metas,
// pack state files): nlohmann's parser is iterative, but copying, comparing
// and dumping a value recurse once per level, so a file of a few hundred KB
// of "[[[[..." would overflow the stack. Files shardset writes nest a few
// levels; kMaxJsonDepth leaves ample room for hand-written recipes.
#ifndef SHARDSET_BASE_JSON_DEPTH_H_
#define SHARDSET_BASE_JSON_DEPTH_H_

#include <cstddef>
#include <string_view>

namespace shardset {

inline constexpr size_t kMaxJsonDepth = 64;

// False when arrays and objects in `text` nest deeper than `max_depth`
// (brackets inside strings do not count). Malformed text is left to the
// parser: this only counts.
inline bool JsonDepthWithin(std::string_view text, size_t max_depth = kMaxJsonDepth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped byte
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

}  // namespace shardset

#endif  // SHARDSET_BASE_JSON_DEPTH_H_
