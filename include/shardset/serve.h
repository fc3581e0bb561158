// shardset serve: a read-only web page over datasets, views and catalog
// directories (docs/serve.md), served straight from the shards by the same
// binary. Every URL names a page by number and a sample by position or key;
// no URL names a file, so nothing outside the targets is reachable.
#ifndef SHARDSET_SERVE_H_
#define SHARDSET_SERVE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shardset/shard.h"
#include "shardset/status.h"

namespace shardset {

struct ServeOptions {
  // Loopback by default: the page shows every byte of the targets.
  std::string host = "127.0.0.1";
  int port = 8470;  // 0: any free port (port() tells which)
  // The field holding the label (info --label-field), and the label the
  // order strip measures (info --order --by).
  std::string label_field = "cls";
  std::string order_by = "label";
  // Thumbnails fit in this many pixels a side (smaller images are sent as
  // they are).
  uint32_t thumbnail_size = 128;
  // Verify every shard in the background once the server starts; the page
  // shows each shard's result.
  bool verify = true;
  // Threads answering requests (0: 32).
  int threads = 0;
  ReadOptions read;
};

class Server {
 public:
  // Opens every target: a dataset folder, a view file, shard files, a
  // catalog directory "CATALOG#NAME" (one page each), or a catalog file (a
  // page per directory). Errors name the target.
  static Result<std::unique_ptr<Server>> Open(const std::vector<std::string>& targets,
                                              const ServeOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the address; IOError naming it when taken or not allowed.
  Status Bind();
  // The port bound (after Bind).
  int port() const;
  // The pages, as "name\ttarget" lines, in page order (for the CLI's banner).
  std::vector<std::string> pages() const;
  // Answers requests until Stop() (callable from any thread).
  Status Run();
  void Stop();

 private:
  struct Rep;
  explicit Server(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace shardset

#endif  // SHARDSET_SERVE_H_
