// Shared by the CLI's verb files: exit codes, error and progress output,
// JSON helpers and the flags of every verb that reads shards.
#ifndef SHARDSET_TOOLS_CLI_H_
#define SHARDSET_TOOLS_CLI_H_

#include <unistd.h>

#include <cstdio>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "shardset/shard.h"
#include "shardset/status.h"

namespace shardset::cli {

using json = nlohmann::json;

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotFound = 3;
inline constexpr int kExitCorrupt = 4;

int ExitCode(const Status& s);
// The verb being run, for error lines ("shardset <verb>: ...").
extern std::string verb_name;
// Prints "shardset <verb>: <message>" to stderr; returns the exit code.
int Fail(const Status& s);

// Progress goes to stderr, only on a terminal, and is erased when done.
class Progress {
 public:
  explicit Progress(bool quiet) : enabled_(!quiet && ::isatty(STDERR_FILENO)) {}
  ~Progress() { Done(); }
  void Show(const std::string& line) {
    if (!enabled_) return;
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void Done() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
};

// JSON must be UTF-8: names that are not are given with invalid bytes
// replaced, plus their exact bytes in hex under "<field>_hex".
void PutName(json* j, std::string_view field, std::string_view name);
inline void PutKey(json* j, std::string_view key) { PutName(j, "key", key); }
std::string Dump(const json& j, int indent = -1);
bool WriteStdout(std::string_view data);

// Limits and options for reading shards and archives, shared by every verb
// that reads them (docs/archives.md "Safety").
struct ReadArgs {
  std::string max_field_bytes = "4GiB";
  uint64_t max_entries = uint64_t{1} << 32;
  uint64_t max_ratio = 200;
  std::string tsv_columns;
  // s3:// and http(s):// targets (docs/remote.md).
  std::string endpoint, cache_dir, cache_bytes, fetch;

  Result<ReadOptions> ToOptions() const;
};

void AddReadFlags(CLI::App* app, ReadArgs* a);
// Verbs that read a few samples here and there (cat, serve) fetch remote
// native shards by range unless --fetch or SHARDSET_FETCH says otherwise.
void PreferRangedFetch(ReadOptions* ro);

// Outputs on s3:// (docs/remote.md "Writing"): a verb writes into Staging(out)
// (a folder in the cache named after OUT, with OUT's base name, so a killed
// run resumes there), then Upload sends it (a dataset folder manifest last,
// or one shard with its sidecars) and deletes it. For a local OUT, Staging
// returns OUT and Upload does nothing.
std::string Staging(const std::string& out, const ReadOptions& ro);
Status Upload(const std::string& staged, const std::string& out, const ReadOptions& ro,
              Progress* bar);

// The command line as a shell would take it back ("shardset mix a=x:0.1 ..."),
// recorded in recipes so a view can be re-made.
std::string CommandLine(int argc, char** argv);

// The verbs that make datasets and views (view_verbs.cc): dataset create,
// split, select, mix, link, list.
struct ViewVerbs;
ViewVerbs* AddViewVerbs(CLI::App* app, ReadArgs* read_args);
// Runs `sub` if it is one of them; -1 otherwise.
int RunViewVerb(ViewVerbs* verbs, CLI::App* sub, const ReadOptions& ro, int argc, char** argv);

// shuffle (shuffle_verbs.cc).
struct ShuffleVerbs;
ShuffleVerbs* AddShuffleVerbs(CLI::App* app, ReadArgs* read_args);
int RunShuffleVerb(ShuffleVerbs* verbs, CLI::App* sub, const ReadOptions& ro, int argc,
                   char** argv);
// mount, umount (mount_verbs.cc).
struct MountVerbs;
MountVerbs* AddMountVerbs(CLI::App* app, ReadArgs* read_args);
int RunMountVerb(MountVerbs* verbs, CLI::App* sub, const ReadOptions& ro);
// sync (remote_verbs.cc).
struct RemoteVerbs;
RemoteVerbs* AddRemoteVerbs(CLI::App* app, ReadArgs* read_args);
int RunRemoteVerb(RemoteVerbs* verbs, CLI::App* sub, const ReadOptions& ro);
// serve (serve_verbs.cc).
struct ServeVerbs;
ServeVerbs* AddServeVerbs(CLI::App* app, ReadArgs* read_args);
int RunServeVerb(ServeVerbs* verbs, CLI::App* sub, const ReadOptions& ro);
// dir, annotate (catalog_verbs.cc).
struct CatalogVerbs;
CatalogVerbs* AddCatalogVerbs(CLI::App* app, ReadArgs* read_args);
int RunCatalogVerb(CatalogVerbs* verbs, CLI::App* sub, const ReadOptions& ro);
// info --order: how good the order of TARGET is, by label (docs/order.md).
int RunOrderInfo(const std::vector<std::string>& targets, ReadOptions ro, const std::string& by,
                 uint64_t window, bool json_out, bool quiet);

}  // namespace shardset::cli

#endif  // SHARDSET_TOOLS_CLI_H_
