// The local cache of remote objects (docs/remote.md "The cache"): whole
// shards and their sidecar indexes, fetched once and then read like local
// files, least recently used ones deleted past a size bound.
//
// Layout: CACHE_DIR/objects/<16 hex digits: XXH3 of the folder URL>/<name>,
// so a shard keeps its name beside its sidecars (tar's "<name>.idx") and
// objects of different folders never collide. An object appears under its
// name only whole and checked (fetched to a temporary name, checked against
// the manifest's size and XXH3, renamed), so a reader never sees part of
// one. Several processes may share a cache: one fetches an object while the
// others wait on its lock file (flock), then all use the same file.
// Eviction unlinks files; a process that has one mapped keeps reading it.
#ifndef SHARDSET_REMOTE_CACHE_H_
#define SHARDSET_REMOTE_CACHE_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "remote/client.h"
#include "shardset/status.h"

namespace shardset::remote {

// Makes `path` and its parents.
Status MakeDirs(const std::string& path);

// Holds an flock on a file (made when missing) for its lifetime: how
// processes sharing a cache take turns on an object.
class FileLock {
 public:
  // `wait` false: AlreadyExists when another holder has it.
  static Result<FileLock> Take(const std::string& path, bool wait);
  FileLock(FileLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

// A ranged object (remote/ranged.h) keeps its bytes in PATH + kPartSuffix,
// sparse, and which blocks of them are there in PATH + kBlocksSuffix.
inline constexpr std::string_view kPartSuffix = ".part";
inline constexpr std::string_view kBlocksSuffix = ".blocks";

struct Expected {
  uint64_t size = 0;  // 0: ask the server (HEAD)
  uint64_t xxh3 = 0;  // 0: unknown, not checked
};

// Downloads `url` (of expected.size bytes) to a temporary file beside
// `path`, checks it against expected.xxh3 (fetching it again, up to the
// client's retries, when what arrived differs), fsyncs it if `sync`, and
// renames it to `path`. Temporary files of killed processes are removed.
Status DownloadChecked(Client& client, const std::string& url, const Expected& expected,
                       const std::string& path, bool sync);

class Cache {
 public:
  explicit Cache(Client* client) : client_(client) {}

  // The local path of `url`'s object, fetched now unless the cache holds it
  // with the expected size. A download whose XXH3 differs from `expected`
  // (a corrupted answer) is fetched again, up to the client's retries.
  Result<std::string> Fetch(const std::string& url, const Expected& expected);
  // As Fetch, but NotFound is not an error: returns "" (optional sidecars).
  Result<std::string> FetchIfExists(const std::string& url);

  // Where `url` is kept (whether or not it is there).
  std::string PathOf(const std::string& url) const;

  // Deletes least recently used objects until the cache holds at most the
  // bound, sparing `keep`. Returns the bytes deleted.
  Result<uint64_t> Evict(const std::string& keep);

  // Objects fetched from the network by this process (not cache hits).
  uint64_t fetched() const { return fetched_.load(); }

 private:
  Client* client_;
  std::atomic<uint64_t> fetched_{0};
};

}  // namespace shardset::remote

#endif  // SHARDSET_REMOTE_CACHE_H_
