// Datasets and shards on other machines: `s3://bucket/key` (any
// S3-compatible server, AWS Signature V4) and `http(s)://host/path` (any
// server that answers ranged GETs), read through libcurl into a local,
// size-bounded cache (docs/remote.md).
#ifndef SHARDSET_REMOTE_H_
#define SHARDSET_REMOTE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "shardset/status.h"

namespace shardset {

struct RemoteOptions {
  // S3 server, e.g. "http://127.0.0.1:9000" (MinIO, Ceph, versitygw, R2);
  // requests are then path-style (ENDPOINT/BUCKET/KEY). Empty: the
  // environment's AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS itself
  // (https://BUCKET.s3.REGION.amazonaws.com/KEY).
  std::string endpoint;
  // Empty: AWS_REGION, AWS_DEFAULT_REGION, else "us-east-1".
  std::string region;
  // Where fetched shards are kept. Empty: SHARDSET_CACHE_DIR, else
  // $XDG_CACHE_HOME/shardset, else ~/.cache/shardset.
  std::string cache_dir;
  // The cache's bound in bytes; least recently used shards are deleted past
  // it. 0: SHARDSET_CACHE_BYTES, else 10 GiB.
  uint64_t cache_bytes = 0;
  // Attempts per request before giving up (connection errors, timeouts,
  // resets, HTTP 5xx and 429, short or corrupted bodies), with exponential
  // backoff from 100 ms to 5 s; 0: SHARDSET_RETRIES, else 10 (about 25 s of
  // waiting in all).
  int retries = 0;
  // How shards are read (docs/remote.md "Whole shards or ranges"):
  // "whole" fetches each shard whole into the cache on first use, checked
  // against the manifest's XXH3 (best for reading everything); "ranged"
  // fetches a native shard's index at open and each sample's bytes as it is
  // read, with read-ahead for sequential reads (best for random access to
  // big shards; other formats are still fetched whole). Empty:
  // SHARDSET_FETCH, else "whole".
  std::string fetch;
  // Ranged GETs in flight for one shard, and the size of each.
  int parallel = 4;
  uint64_t chunk_bytes = uint64_t{8} << 20;
};

// True for "s3://..." and "http(s)://...".
bool IsRemote(std::string_view target);

struct SyncOptions {
  RemoteOptions remote;
  // After copying, open the copy and verify every shard and sample.
  bool verify = false;
  // fsync what is written to a local folder.
  bool sync = true;
  // Called after each file: (its name, bytes copied, skipped because the
  // destination already had it).
  std::function<void(const std::string& name, uint64_t bytes, bool skipped)> progress;
};

struct SyncReport {
  uint64_t files_copied = 0, files_skipped = 0;
  uint64_t bytes_copied = 0, bytes_skipped = 0;
  uint64_t retries = 0;  // requests that failed once and were tried again
};

// Copies the dataset `src` (a folder, s3:// or http(s)://) to `dst` (a
// folder or s3://) as an incremental backup (docs/remote.md "sync"):
// shards are immutable, so one the destination already holds with the same
// size is not copied again; the manifest is written last, so a reader of
// `dst` never sees a dataset with shards missing, and an interrupted sync
// run again copies only what is left.
Status SyncDataset(const std::string& src, const std::string& dst, const SyncOptions& options,
                   SyncReport* report);

}  // namespace shardset

#endif  // SHARDSET_REMOTE_H_
