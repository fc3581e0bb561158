// How a file path becomes a sample key and a field name (the WebDataset
// convention; docs/cli.md "Samples and keys"): the key is the path up to the
// first '.' of its basename that is not the basename's first character; the
// field is what follows that dot.
//   "train/0042.png"    -> ("train/0042", "png")
//   "a.b/c.seg.png"     -> ("a.b/c", "seg.png")
//   ".hidden.json"      -> (".hidden", "json")
//   "README"            -> ("README", "")
//   "name."             -> ("name.", "")   a trailing dot names no field, so
//                                          the file round-trips as "name."
#ifndef SHARDSET_FORMATS_SAMPLE_KEY_H_
#define SHARDSET_FORMATS_SAMPLE_KEY_H_

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

namespace shardset {

inline std::pair<std::string_view, std::string_view> SplitKeyField(std::string_view path) {
  size_t base = path.rfind('/');
  base = (base == std::string_view::npos) ? 0 : base + 1;
  size_t dot = path.find('.', base + 1);
  if (dot == std::string_view::npos || dot + 1 == path.size() || base >= path.size()) {
    return {path, {}};
  }
  return {path.substr(0, dot), path.substr(dot + 1)};
}

// The file name a field of a sample came from: the inverse of SplitKeyField.
inline std::string JoinKeyField(std::string_view key, std::string_view field) {
  std::string out(key);
  if (!field.empty()) {
    out.push_back('.');
    out.append(field);
  }
  return out;
}

// True when `path` is relative and has no empty, "." or ".." components: a
// path that every tool writes inside its target folder unchanged.
inline bool IsPlainRelativePath(std::string_view path) {
  for (size_t start = 0;;) {
    const size_t slash = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, slash - start);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos) {
      return false;
    }
    if (slash == path.size()) return true;
    start = slash + 1;
  }
}

// The name of the folder that holds `path` ("training/3/17" -> "3"), or
// empty when `path` has no folder.
inline std::string_view ParentDirName(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {};
  size_t prev = path.rfind('/', slash == 0 ? 0 : slash - 1);
  size_t start = (prev == std::string_view::npos || prev >= slash) ? 0 : prev + 1;
  if (slash == 0) return {};
  return path.substr(start, slash - start);
}

}  // namespace shardset

#endif  // SHARDSET_FORMATS_SAMPLE_KEY_H_
