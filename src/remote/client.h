// A client for objects behind URLs: s3:// (AWS Signature V4, signed by
// libcurl) and http(s)://. Every request is retried with backoff on what a
// network or a busy server does (refused or reset connections, stalls,
// HTTP 5xx and 429, bodies shorter than asked); 404 and 403 are answered at
// once. Thread-safe: requests on several threads share the client's
// connection pool.
#ifndef SHARDSET_REMOTE_CLIENT_H_
#define SHARDSET_REMOTE_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "shardset/remote.h"
#include "shardset/status.h"

namespace shardset::remote {

// Credentials for s3://: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN, else the profile AWS_PROFILE (default "default") of
// AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials). Empty key: send
// unsigned requests (public buckets).
struct Credentials {
  std::string key, secret, token;
};
Credentials CredentialsFromEnvironment();

// `options` with every empty setting filled from the environment.
RemoteOptions Resolve(const RemoteOptions& options);

// "a/b/c" -> "a/b/c/name" for URLs (no normalisation; `name` has no "..").
std::string JoinUrl(const std::string& url, std::string_view name);
// The last path component of a URL ("" for "s3://bucket").
std::string UrlBaseName(const std::string& url);

// Runs task(0..count-1) on `threads` threads, each taking the next index;
// stops handing out indexes after the first failure, which it returns.
Status ParallelFor(uint64_t count, int threads, const std::function<Status(uint64_t)>& task);

class Client {
 public:
  explicit Client(const RemoteOptions& options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const RemoteOptions& options() const { return options_; }

  // The object's size (HEAD). NotFound for 404.
  Result<uint64_t> Size(const std::string& url);
  // A whole object of at most `max_bytes`.
  Result<std::string> Get(const std::string& url, uint64_t max_bytes);
  // Bytes [offset, offset + length) of the object, exactly; `sink` gets them
  // in order, possibly again from `offset` after a retry (it is told the
  // offset of every piece).
  Status GetRange(const std::string& url, uint64_t offset, uint64_t length,
                  const std::function<Status(uint64_t offset, std::string_view)>& sink);
  // The object (of `size` bytes) into `fd` at its offsets, `options().parallel`
  // ranged GETs of `options().chunk_bytes` at a time.
  Status Download(const std::string& url, uint64_t size, int fd, const std::string& path);
  struct Listed {
    std::string name;  // the key after the listed prefix and its '/'
    uint64_t size = 0;
  };
  // Every object under the s3:// folder `url` ("s3://BUCKET/PREFIX"), by
  // S3 ListObjectsV2 (pages of up to 1,000 keys), sorted by key.
  // NotSupported for http(s):// (HTTP has no listing).
  Result<std::vector<Listed>> List(const std::string& url);
  // Uploads `data` as the object (PUT).
  Status Put(const std::string& url, std::string_view data);
  // Uploads the file at `path` as the object, streamed from disk: one PUT,
  // or for s3:// objects over kMultipartThreshold a multipart upload of
  // `parallel` parts at a time (aborted if it fails, so no parts are left).
  Status PutFile(const std::string& url, const std::string& path);
  static constexpr uint64_t kMultipartThreshold = uint64_t{64} << 20;

  // Requests that failed once and were tried again, since the client was
  // made (for reports and tests).
  uint64_t retried() const;

 private:
  struct Request;
  struct Handle;
  Status PutMultipart(const std::string& url, int fd, uint64_t size, const std::string& path);
  Status Perform(Request& request);
  Status PerformOnce(Request& request, long* http_code, bool* retry);
  std::unique_ptr<Handle> TakeHandle();
  void ReturnHandle(std::unique_ptr<Handle> h);
  // The http(s) URL a request goes to, and whether it is signed.
  Result<std::string> HttpUrl(const std::string& url, bool* s3) const;

  RemoteOptions options_;
  Credentials credentials_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_;
  uint64_t retried_ = 0;
};

}  // namespace shardset::remote

#endif  // SHARDSET_REMOTE_CLIENT_H_
