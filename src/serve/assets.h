// The files of shardset serve's page (src/serve/assets/), compiled into the
// binary by cmake/embed_assets.cmake so it serves them with nothing beside it.
#ifndef SHARDSET_SERVE_ASSETS_H_
#define SHARDSET_SERVE_ASSETS_H_

#include <string_view>

namespace shardset {

struct Asset {
  std::string_view name;  // "app.js"
  std::string_view data;
  const char* content_type;
};

// The asset called `name`, or nullptr.
const Asset* FindAsset(std::string_view name);

}  // namespace shardset

#endif  // SHARDSET_SERVE_ASSETS_H_
