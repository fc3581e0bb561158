// YOLO class names: the `names:` entry of a data.yaml (Ultralytics), or a
// classes.txt of one name per line (darknet). Only `names:` is read, so a
// full YAML parser is not needed (nor a dependency on one): the entry may
// be a block list ("- cat"), a block map ("0: cat"), or a flow list or map
// ("[cat, dog]", "{0: cat, 1: dog}"), with plain, 'single' or "double"
// quoted names and # comments.
#ifndef SHARDSET_CATALOG_YOLO_NAMES_H_
#define SHARDSET_CATALOG_YOLO_NAMES_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardset/status.h"

namespace shardset {

// The names in `text` (a data.yaml at `path`, for messages); nullopt when it
// has no top-level `names:`. InvalidArgument naming the file and line for
// what it cannot read: a map whose keys are not 0..n-1, empty names, names
// that are not UTF-8.
Result<std::optional<std::vector<std::string>>> ParseYamlNames(std::string_view text,
                                                               const std::string& path);
// data.yaml's names when it has them, else classes.txt's; NotFound when
// `yolo_dir` has neither.
Result<std::vector<std::string>> ReadYoloNames(const std::string& yolo_dir);
// `s` as a double-quoted YAML scalar.
std::string YamlQuote(std::string_view s);

}  // namespace shardset

#endif  // SHARDSET_CATALOG_YOLO_NAMES_H_
