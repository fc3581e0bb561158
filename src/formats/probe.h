// What format detection looks at: a file's size and its first and last bytes.
// Every format's Looks() is a pure function of a Probe, so detection reads a
// file once, whatever the number of formats.
#ifndef SHARDSET_FORMATS_PROBE_H_
#define SHARDSET_FORMATS_PROBE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "shardset/status.h"

namespace shardset {

struct Probe {
  // The first kHeadBytes of the file (all of it when smaller).
  static constexpr size_t kHeadBytes = 64 * 1024;
  // The last kTailBytes (a zip's end record with the longest comment fits).
  static constexpr size_t kTailBytes = 65536 + 22 + 20 + 56;

  std::string path;
  uint64_t size = 0;
  std::string head;
  std::string tail;  // overlaps `head` in files smaller than both
};

// Reads the probe of `path`. NotFound when it does not exist.
Result<Probe> ReadProbe(const std::string& path);

}  // namespace shardset

#endif  // SHARDSET_FORMATS_PROBE_H_
