// Counts and sizes read from JSON files (manifests, view metas, pack state).
// nlohmann's get<uint64_t>() converts any number: a float beyond 2^64 (or a
// negative one) is undefined behaviour in C++, which a damaged or hostile
// file can trigger (found by manifest_fuzz). These accept only what
// shardset writes, a JSON integer without sign, fraction or exponent, and
// throw nlohmann's type_error otherwise, which the readers already turn into
// a Corruption status naming the file.
#ifndef SHARDSET_BASE_JSON_NUMBER_H_
#define SHARDSET_BASE_JSON_NUMBER_H_

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace shardset {

inline uint64_t JsonU64(const nlohmann::json& j) {
  if (!j.is_number_unsigned()) {
    throw nlohmann::json::type_error::create(
        302, std::string("expected a non-negative integer, not ") + j.type_name(), &j);
  }
  return j.get<uint64_t>();
}

// Member `key` of object `j`, or `fallback` when it has none.
inline uint64_t JsonU64(const nlohmann::json& j, const char* key, uint64_t fallback) {
  auto it = j.find(key);
  return it == j.end() ? fallback : JsonU64(*it);
}

}  // namespace shardset

#endif  // SHARDSET_BASE_JSON_NUMBER_H_
