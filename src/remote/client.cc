#include "remote/client.h"

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <strings.h>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "base/file.h"
#include "base/strings.h"

namespace shardset {

bool IsRemote(std::string_view target) {
  return target.starts_with("s3://") || target.starts_with("http://") ||
         target.starts_with("https://");
}

namespace remote {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

// The text between <tag> and </tag> in an S3 error body, if any.
std::string XmlField(std::string_view body, std::string_view tag) {
  const std::string open = fmt::format("<{}>", tag), close = fmt::format("</{}>", tag);
  size_t a = body.find(open);
  if (a == std::string_view::npos) return "";
  a += open.size();
  size_t b = body.find(close, a);
  if (b == std::string_view::npos) return "";
  return std::string(body.substr(a, std::min<size_t>(b - a, 300)));
}


void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

Status ParallelFor(uint64_t count, int threads, const std::function<Status(uint64_t)>& task) {
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first;
  auto work = [&] {
    for (uint64_t i; !failed && (i = next++) < count;) {
      Status s = task(i);
      if (!s.ok()) {
        std::lock_guard lock(mu);
        if (first.ok()) first = std::move(s);
        failed = true;
      }
    }
  };
  const int n = static_cast<int>(std::min<uint64_t>(std::max(threads, 1), count));
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return first;
}

Credentials CredentialsFromEnvironment() {
  Credentials c;
  c.key = Env("AWS_ACCESS_KEY_ID");
  c.secret = Env("AWS_SECRET_ACCESS_KEY");
  c.token = Env("AWS_SESSION_TOKEN");
  if (!c.key.empty()) return c;
  std::string file = Env("AWS_SHARED_CREDENTIALS_FILE");
  if (file.empty() && !Env("HOME").empty()) file = Env("HOME") + "/.aws/credentials";
  std::string profile = Env("AWS_PROFILE");
  if (profile.empty()) profile = "default";
  std::ifstream in(file);
  std::string line;
  bool in_profile = false;
  while (std::getline(in, line)) {
    const std::string t = Trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      in_profile = Trim(std::string_view(t).substr(1, t.size() - 2)) == profile;
      continue;
    }
    const size_t eq = t.find('=');
    if (!in_profile || eq == std::string::npos) continue;
    const std::string k = Trim(std::string_view(t).substr(0, eq));
    const std::string v = Trim(std::string_view(t).substr(eq + 1));
    if (k == "aws_access_key_id") c.key = v;
    if (k == "aws_secret_access_key") c.secret = v;
    if (k == "aws_session_token") c.token = v;
  }
  return c;
}

RemoteOptions Resolve(const RemoteOptions& options) {
  RemoteOptions o = options;
  if (o.endpoint.empty()) o.endpoint = Env("AWS_ENDPOINT_URL_S3");
  if (o.endpoint.empty()) o.endpoint = Env("AWS_ENDPOINT_URL");
  while (o.endpoint.ends_with('/')) o.endpoint.pop_back();
  if (o.region.empty()) o.region = Env("AWS_REGION");
  if (o.region.empty()) o.region = Env("AWS_DEFAULT_REGION");
  if (o.region.empty()) o.region = "us-east-1";
  if (o.cache_dir.empty()) o.cache_dir = Env("SHARDSET_CACHE_DIR");
  if (o.cache_dir.empty() && !Env("XDG_CACHE_HOME").empty()) {
    o.cache_dir = Env("XDG_CACHE_HOME") + "/shardset";
  }
  if (o.cache_dir.empty()) o.cache_dir = Env("HOME") + "/.cache/shardset";
  if (o.cache_bytes == 0) {
    auto v = ParseSize(Env("SHARDSET_CACHE_BYTES"));
    o.cache_bytes = v.ok() && *v > 0 ? *v : uint64_t{10} << 30;
  }
  if (o.fetch.empty()) o.fetch = Env("SHARDSET_FETCH");
  if (o.fetch != "ranged") o.fetch = "whole";
  if (o.retries <= 0) o.retries = std::atoi(Env("SHARDSET_RETRIES").c_str());
  if (o.retries <= 0) o.retries = 10;
  o.parallel = std::clamp(o.parallel, 1, 64);
  o.chunk_bytes = std::max<uint64_t>(o.chunk_bytes, 64 << 10);
  return o;
}

std::string JoinUrl(const std::string& url, std::string_view name) {
  if (url.ends_with('/')) return url + std::string(name);
  return fmt::format("{}/{}", url, name);
}

std::string UrlBaseName(const std::string& url) {
  std::string_view u(url);
  const size_t scheme = u.find("://");
  if (scheme != std::string_view::npos) u.remove_prefix(scheme + 3);
  while (u.ends_with('/')) u.remove_suffix(1);
  const size_t slash = u.rfind('/');
  return slash == std::string_view::npos ? "" : std::string(u.substr(slash + 1));
}

struct Client::Handle {
  CURL* curl = curl_easy_init();
  ~Handle() { curl_easy_cleanup(curl); }
};

struct Client::Request {
  enum Method { kGet, kHead, kPut, kPost, kDelete } method = kGet;
  std::string url;
  std::string query;  // appended to the http(s) URL as is ("uploads", "partNumber=1&...")
  // kGet: a range when length > 0 (else the whole object, at most max_bytes).
  uint64_t offset = 0, length = 0, max_bytes = 0;
  std::function<Status(uint64_t, std::string_view)> sink;
  // kPut: the body, from memory or (upload_fd >= 0) from a file.
  std::string_view upload;
  int upload_fd = -1;
  uint64_t upload_offset = 0, upload_size = 0;
  std::string etag;  // kPut: the answer's ETag header
  // Filled in: bytes delivered to sink so far (kept across attempts, so a
  // retried range resumes where the last attempt stopped), the object size
  // (kHead), an error body's first bytes.
  uint64_t delivered = 0;
  uint64_t size = 0;
  std::string error_body;
  size_t upload_pos = 0;
  Status sink_status;
  long http_code = 0;
};

Client::Client(const RemoteOptions& options) : options_(Resolve(options)) {
  GlobalInit();
  credentials_ = CredentialsFromEnvironment();
}

Client::~Client() = default;

uint64_t Client::retried() const {
  std::lock_guard lock(mu_);
  return retried_;
}

std::unique_ptr<Client::Handle> Client::TakeHandle() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto h = std::move(idle_.back());
      idle_.pop_back();
      return h;
    }
  }
  return std::make_unique<Handle>();
}

void Client::ReturnHandle(std::unique_ptr<Handle> h) {
  std::lock_guard lock(mu_);
  if (idle_.size() < 64) idle_.push_back(std::move(h));
}

Result<std::string> Client::HttpUrl(const std::string& url, bool* s3) const {
  *s3 = false;
  if (url.starts_with("http://") || url.starts_with("https://")) return url;
  if (!url.starts_with("s3://")) {
    return Status::InvalidArgument(fmt::format("{}: not an s3:// or http(s):// URL", url));
  }
  *s3 = true;
  std::string_view rest = std::string_view(url).substr(5);
  const size_t slash = rest.find('/');
  const std::string bucket(rest.substr(0, slash));
  const std::string key(slash == std::string_view::npos ? "" : rest.substr(slash + 1));
  if (bucket.empty()) {
    return Status::InvalidArgument(fmt::format("{}: no bucket (s3://BUCKET/KEY)", url));
  }
  // Every byte of the key but '/' percent-encoded as SigV4 expects.
  std::string path;
  for (unsigned char c : key) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      path += static_cast<char>(c);
    } else {
      path += fmt::format("%{:02X}", c);
    }
  }
  if (!options_.endpoint.empty()) return fmt::format("{}/{}/{}", options_.endpoint, bucket, path);
  return fmt::format("https://{}.s3.{}.amazonaws.com/{}", bucket, options_.region, path);
}

Status Client::PerformOnce(Request& r, long* http_code, bool* retry) {
  *retry = false;
  bool s3 = false;
  SHARDSET_ASSIGN_OR_RETURN(std::string http_url, HttpUrl(r.url, &s3));
  if (!r.query.empty()) http_url += "?" + r.query;
  auto handle = TakeHandle();
  CURL* c = handle->curl;
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, http_url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  // A transfer that moves less than 1 KiB/s for 20 s is stalled: retried.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 20L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, s3 ? 0L : 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "shardset/0.1");
  curl_slist* headers = nullptr;
  if (s3 && !credentials_.key.empty()) {
    const std::string sigv4 = fmt::format("aws:amz:{}:s3", options_.region);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl_easy_setopt(c, CURLOPT_USERNAME, credentials_.key.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, credentials_.secret.c_str());
    // Bodies are checked by our own checksums, not by the signature.
    headers = curl_slist_append(headers, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (!credentials_.token.empty()) {
      headers = curl_slist_append(
          headers, fmt::format("x-amz-security-token: {}", credentials_.token).c_str());
    }
  }
  std::string range;
  const uint64_t start = r.offset + r.delivered;
  if (r.method == Request::kGet && r.length > 0) {
    range = fmt::format("{}-{}", start, r.offset + r.length - 1);
    curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  } else if (r.method == Request::kGet && r.delivered > 0) {
    range = fmt::format("{}-", start);
    curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  }
  if (r.method == Request::kHead) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (r.method == Request::kPut) {
    r.upload_pos = 0;
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.upload_size));
    curl_easy_setopt(c, CURLOPT_READDATA, &r);
    curl_easy_setopt(
        c, CURLOPT_READFUNCTION, +[](char* buf, size_t size, size_t n, void* p) -> size_t {
          auto* req = static_cast<Request*>(p);
          const size_t k = std::min<uint64_t>(size * n, req->upload_size - req->upload_pos);
          if (req->upload_fd < 0) {
            std::memcpy(buf, req->upload.data() + req->upload_pos, k);
            req->upload_pos += k;
            return k;
          }
          ssize_t got;
          do {
            got = ::pread(req->upload_fd, buf, k,
                          static_cast<off_t>(req->upload_offset + req->upload_pos));
          } while (got < 0 && errno == EINTR);
          if (got < 0) return CURL_READFUNC_ABORT;
          req->upload_pos += static_cast<uint64_t>(got);
          return static_cast<size_t>(got);
        });
  }
  if (r.method == Request::kPost) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r.upload.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.upload.size()));
  }
  if (r.method == Request::kDelete) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
  if (r.method == Request::kPut) {
    r.etag.clear();
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(
        c, CURLOPT_HEADERFUNCTION, +[](char* data, size_t size, size_t n, void* p) -> size_t {
          std::string_view line(data, size * n);
          if (line.size() > 5 && strncasecmp(line.data(), "etag:", 5) == 0) {
            line.remove_prefix(5);
            while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
              line.remove_prefix(1);
            }
            while (!line.empty() && (line.back() == '\r' || line.back() == '\n' ||
                                     line.back() == ' ')) {
              line.remove_suffix(1);
            }
            static_cast<Request*>(p)->etag = std::string(line);
          }
          return size * n;
        });
  }
  if (headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  r.error_body.clear();
  r.http_code = 0;
  struct Ctx {
    Request* r;
    CURL* c;
    uint64_t start;
  } ctx{&r, c, start};
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(
      c, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t n, void* p) -> size_t {
        auto* x = static_cast<Ctx*>(p);
        Request& req = *x->r;
        const size_t bytes = size * n;
        if (req.http_code == 0) curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &req.http_code);
        if (req.http_code >= 300) {
          if (req.error_body.size() < 4096) req.error_body.append(data, std::min<size_t>(bytes, 4096));
          return bytes;
        }
        // A server that ignores Range answers 200 with the whole object:
        // only a request from its first byte can use that.
        if (req.http_code == 200 && x->start != 0) {
          req.sink_status = Status::IOError("the server ignored the Range header (HTTP 200)");
          return 0;
        }
        std::string_view piece(data, bytes);
        if (req.length > 0) {
          const uint64_t left = req.length - req.delivered;
          if (piece.size() > left) piece = piece.substr(0, left);
        } else if (req.max_bytes > 0 && req.delivered + piece.size() > req.max_bytes) {
          req.sink_status = Status::ResourceExhausted(fmt::format(
              "{}: larger than {} bytes; not read", req.url, req.max_bytes));
          return 0;
        }
        if (!piece.empty()) {
          Status s = req.sink(req.offset + req.delivered, piece);
          if (!s.ok()) {
            req.sink_status = std::move(s);
            return 0;
          }
          req.delivered += piece.size();
        }
        return bytes;
      });
  const CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, http_code);
  curl_off_t length = -1;
  curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  if (headers) curl_slist_free_all(headers);
  ReturnHandle(std::move(handle));
  if (!r.sink_status.ok()) return r.sink_status;
  if (rc != CURLE_OK) {
    switch (rc) {
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_URL_MALFORMAT:
        return Status::InvalidArgument(
            fmt::format("{}: {}", r.url, curl_easy_strerror(rc)));
      default:
        // Refused, reset, stalled, cut short, name lookup: worth another try.
        *retry = true;
        return Status::IOError(fmt::format("{}: {}", r.url, curl_easy_strerror(rc)));
    }
  }
  const long code = *http_code;
  if (code == 404) {
    return Status::NotFound(fmt::format("{}: no such object (HTTP 404)", r.url));
  }
  if (code == 401 || code == 403) {
    const std::string why = XmlField(r.error_body, "Code");
    return Status::IOError(fmt::format(
        "{}: access denied (HTTP {}{}); {}", r.url, code, why.empty() ? "" : ", " + why,
        !s3 ? "the server refused it"
        : credentials_.key.empty()
            ? "no credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
              "or write ~/.aws/credentials"
            : "check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or "
              "~/.aws/credentials) and the endpoint"));
  }
  if (code >= 300) {
    *retry = code >= 500 || code == 429 || code == 408;
    const std::string why = XmlField(r.error_body, "Message");
    return Status::IOError(fmt::format("{}: HTTP {}{}", r.url, code, why.empty() ? "" : ": " + why));
  }
  if (r.method == Request::kHead) {
    if (length < 0) {
      return Status::NotSupported(fmt::format("{}: the server gave no Content-Length", r.url));
    }
    r.size = static_cast<uint64_t>(length);
    return Status::OK();
  }
  if (r.method == Request::kGet && r.length > 0 && r.delivered < r.length) {
    *retry = true;
    return Status::IOError(fmt::format("{}: the answer stopped after {} of {} bytes", r.url,
                                       r.delivered, r.length));
  }
  return Status::OK();
}

Status Client::Perform(Request& r) {
  std::mt19937_64 rng(std::random_device{}());
  Status last;
  for (int attempt = 0; attempt < options_.retries; ++attempt) {
    if (attempt > 0) {
      const double base = std::min(5.0, 0.1 * double(1 << std::min(attempt - 1, 6)));
      const double jitter = std::uniform_real_distribution<double>(0.75, 1.25)(rng);
      std::this_thread::sleep_for(std::chrono::duration<double>(base * jitter));
      std::lock_guard lock(mu_);
      ++retried_;
    }
    long code = 0;
    bool retry = false;
    r.sink_status = Status::OK();
    last = PerformOnce(r, &code, &retry);
    if (last.ok() || !retry) return last;
  }
  // Only IOErrors are retried.
  return Status::IOError(
      fmt::format("{} (gave up after {} attempts; raise SHARDSET_RETRIES to wait longer)",
                  last.message(), options_.retries));
}

Result<uint64_t> Client::Size(const std::string& url) {
  Request r;
  r.method = Request::kHead;
  r.url = url;
  SHARDSET_RETURN_IF_ERROR(Perform(r));
  return r.size;
}

Result<std::string> Client::Get(const std::string& url, uint64_t max_bytes) {
  std::string out;
  Request r;
  r.url = url;
  r.max_bytes = max_bytes;
  r.sink = [&](uint64_t offset, std::string_view piece) {
    out.resize(offset);
    out.append(piece);
    return Status::OK();
  };
  SHARDSET_RETURN_IF_ERROR(Perform(r));
  return out;
}

namespace {

// Percent-encodes a query value as SigV4's canonical form wants it: every
// byte but the unreserved ones, '/' included.
std::string QueryEncode(std::string_view v) {
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// The text of the first child element of `node` named `name` ("" if none).
std::string ChildText(xmlNode* node, const char* name) {
  for (xmlNode* c = node->children; c; c = c->next) {
    if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST name) == 0) {
      xmlChar* t = xmlNodeGetContent(c);
      std::string out = t ? reinterpret_cast<const char*>(t) : "";
      xmlFree(t);
      return out;
    }
  }
  return "";
}

}  // namespace

Result<std::vector<Client::Listed>> Client::List(const std::string& url) {
  if (!url.starts_with("s3://")) {
    return Status::NotSupported(fmt::format(
        "{}: only s3:// folders can be listed (HTTP has no listing); give a dataset instead",
        url));
  }
  std::string_view rest = std::string_view(url).substr(5);
  while (rest.ends_with('/')) rest.remove_suffix(1);
  const size_t slash = rest.find('/');
  const std::string bucket(rest.substr(0, slash));
  const std::string prefix =
      slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1)) + "/";
  std::vector<Listed> out;
  std::string token;
  for (int page = 0;; ++page) {
    // Parameters in sorted order, values encoded: the canonical query the
    // signature covers.
    std::string query = token.empty() ? "" : "continuation-token=" + QueryEncode(token) + "&";
    query += "list-type=2&prefix=" + QueryEncode(prefix);
    std::string body;
    Request r;
    r.url = "s3://" + bucket;
    r.query = query;
    r.max_bytes = 64 << 20;
    r.sink = [&](uint64_t offset, std::string_view piece) {
      body.resize(offset);
      body.append(piece);
      return Status::OK();
    };
    SHARDSET_RETURN_IF_ERROR(Perform(r));
    std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)> doc(
        xmlReadMemory(body.data(), static_cast<int>(body.size()), nullptr, nullptr,
                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING),
        xmlFreeDoc);
    xmlNode* root = doc ? xmlDocGetRootElement(doc.get()) : nullptr;
    if (!root || xmlStrcmp(root->name, BAD_CAST "ListBucketResult") != 0) {
      return Status::Corruption(fmt::format(
          "{}: the server's listing (page {}) is not an S3 ListBucketResult", url, page));
    }
    for (xmlNode* c = root->children; c; c = c->next) {
      if (c->type != XML_ELEMENT_NODE || xmlStrcmp(c->name, BAD_CAST "Contents") != 0) continue;
      const std::string key = ChildText(c, "Key");
      if (!key.starts_with(prefix) || key.size() == prefix.size()) continue;
      Listed l;
      l.name = key.substr(prefix.size());
      l.size = std::strtoull(ChildText(c, "Size").c_str(), nullptr, 10);
      out.push_back(std::move(l));
    }
    token = ChildText(root, "NextContinuationToken");
    if (ChildText(root, "IsTruncated") != "true" || token.empty()) break;
  }
  std::sort(out.begin(), out.end(),
            [](const Listed& a, const Listed& b) { return a.name < b.name; });
  return out;
}

Status Client::GetRange(const std::string& url, uint64_t offset, uint64_t length,
                        const std::function<Status(uint64_t, std::string_view)>& sink) {
  if (length == 0) return Status::OK();
  Request r;
  r.url = url;
  r.offset = offset;
  r.length = length;
  r.sink = sink;
  return Perform(r);
}

Status Client::Download(const std::string& url, uint64_t size, int fd, const std::string& path) {
  const uint64_t chunk = options_.chunk_bytes;
  return ParallelFor((size + chunk - 1) / chunk, options_.parallel, [&](uint64_t i) {
    const uint64_t off = i * chunk;
    return GetRange(url, off, std::min(chunk, size - off), [&](uint64_t at, std::string_view piece) {
      while (!piece.empty()) {
        ssize_t n = ::pwrite(fd, piece.data(), piece.size(), at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return Status::FromErrno(path, errno);
        piece.remove_prefix(n);
        at += n;
      }
      return Status::OK();
    });
  });
}

Status Client::Put(const std::string& url, std::string_view data) {
  Request r;
  r.method = Request::kPut;
  r.url = url;
  r.upload = data;
  r.upload_size = data.size();
  r.sink = [](uint64_t, std::string_view) { return Status::OK(); };
  return Perform(r);
}

Status Client::PutFile(const std::string& url, const std::string& path) {
  FdCloser fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno(path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(path, errno);
  if (url.starts_with("s3://") && static_cast<uint64_t>(st.st_size) > kMultipartThreshold) {
    return PutMultipart(url, fd.get(), static_cast<uint64_t>(st.st_size), path);
  }
  Request r;
  r.method = Request::kPut;
  r.url = url;
  r.upload_fd = fd.get();
  r.upload_size = static_cast<uint64_t>(st.st_size);
  r.sink = [](uint64_t, std::string_view) { return Status::OK(); };
  return Perform(r);
}

Status Client::PutMultipart(const std::string& url, int fd, uint64_t size,
                            const std::string& path) {
  auto body_sink = [](std::string* out) {
    return [out](uint64_t offset, std::string_view piece) {
      out->resize(offset);
      out->append(piece);
      return Status::OK();
    };
  };
  std::string answer;
  Request init;
  init.method = Request::kPost;
  init.url = url;
  init.query = "uploads=";  // with its "=": what curl signs must be the canonical form
  init.sink = body_sink(&answer);
  SHARDSET_RETURN_IF_ERROR(Perform(init));
  const std::string upload_id = XmlField(answer, "UploadId");
  if (upload_id.empty()) {
    return Status::IOError(fmt::format("{}: the server started no multipart upload", url));
  }
  char* escaped = curl_easy_escape(nullptr, upload_id.c_str(), static_cast<int>(upload_id.size()));
  const std::string id_query = fmt::format("uploadId={}", escaped);
  curl_free(escaped);
  // S3 allows 10,000 parts of at least 5 MiB.
  const uint64_t part_bytes = std::max<uint64_t>(options_.chunk_bytes * 2, (size + 9999) / 10000);
  const uint64_t parts = (size + part_bytes - 1) / part_bytes;
  std::vector<std::string> etags(parts);
  Status first = ParallelFor(parts, options_.parallel, [&](uint64_t i) {
    Request put;
    put.method = Request::kPut;
    put.url = url;
    put.query = fmt::format("partNumber={}&{}", i + 1, id_query);
    put.upload_fd = fd;
    put.upload_offset = i * part_bytes;
    put.upload_size = std::min(part_bytes, size - put.upload_offset);
    put.sink = [](uint64_t, std::string_view) { return Status::OK(); };
    SHARDSET_RETURN_IF_ERROR(Perform(put).WithPrefix(path));
    if (put.etag.empty()) {
      return Status::IOError(fmt::format("{}: part {} was answered without an ETag", url, i + 1));
    }
    etags[i] = put.etag;
    return Status::OK();
  });
  std::string xml = "<CompleteMultipartUpload>";
  for (uint64_t i = 0; i < parts; ++i) {
    xml += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", i + 1, etags[i]);
  }
  xml += "</CompleteMultipartUpload>";
  Status done = first;
  if (done.ok()) {
    Request complete;
    complete.method = Request::kPost;
    complete.url = url;
    complete.query = id_query;
    complete.upload = xml;
    answer.clear();
    complete.sink = body_sink(&answer);
    done = Perform(complete);
    // S3 may answer 200 and still report an error in the body.
    if (done.ok() && answer.find("<Error>") != std::string::npos) {
      done = Status::IOError(fmt::format("{}: completing the upload failed: {}", url,
                                         XmlField(answer, "Message")));
    }
  }
  if (!done.ok()) {
    Request abort;
    abort.method = Request::kDelete;
    abort.url = url;
    abort.query = id_query;
    abort.sink = [](uint64_t, std::string_view) { return Status::OK(); };
    (void)Perform(abort);  // the parts would otherwise be kept (and billed)
  }
  return done;
}

}  // namespace remote
}  // namespace shardset
