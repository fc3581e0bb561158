// sync: a dataset copied between folders, s3:// and http(s):// (docs/remote.md).
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/strings.h"
#include "cli.h"
#include "shardset/remote.h"

namespace shardset::cli {

struct RemoteVerbs {
  CLI::App* sync = nullptr;
  std::string src, dst;
  bool verify = false, no_sync = false, quiet = false, json_out = false;
};

namespace {

int RunSync(const RemoteVerbs& v, const ReadOptions& ro) {
  SyncOptions o;
  o.remote = ro.remote;
  o.verify = v.verify;
  o.sync = !v.no_sync;
  Progress bar(v.quiet);
  uint64_t files = 0, bytes = 0;
  o.progress = [&](const std::string& name, uint64_t size, bool skipped) {
    ++files;
    bytes += size;
    bar.Show(fmt::format("sync: {} files, {} ({} {})", files, FormatBytes(bytes),
                         skipped ? "had" : "copied", name));
  };
  SyncReport r;
  Status s = SyncDataset(v.src, v.dst, o, &r);
  bar.Done();
  if (!s.ok()) return Fail(s);
  if (v.json_out) {
    json j = {{"src", v.src},           {"dst", v.dst},
              {"files_copied", r.files_copied}, {"bytes_copied", r.bytes_copied},
              {"files_skipped", r.files_skipped}, {"bytes_skipped", r.bytes_skipped},
              {"retries", r.retries},   {"verified", v.verify}};
    std::puts(Dump(j).c_str());
  } else {
    std::printf("%s -> %s: %llu files copied (%s), %llu already there (%s)%s%s\n", v.src.c_str(),
                v.dst.c_str(), static_cast<unsigned long long>(r.files_copied),
                FormatBytes(r.bytes_copied).c_str(),
                static_cast<unsigned long long>(r.files_skipped),
                FormatBytes(r.bytes_skipped).c_str(),
                r.retries ? fmt::format(", {} requests retried", r.retries).c_str() : "",
                v.verify ? "; the copy verifies" : "");
  }
  return kExitOk;
}

}  // namespace

RemoteVerbs* AddRemoteVerbs(CLI::App* app, ReadArgs* read_args) {
  auto* v = new RemoteVerbs();
  v->sync = app->add_subcommand(
      "sync", "Copy a dataset to a folder or s3:// once: what DST already has is not copied again");
  v->sync->add_option("SRC", v->src,
                      "A dataset (a folder, s3://BUCKET/PREFIX or http(s)://...), or a folder "
                      "(local or s3://) of datasets, views and catalogs")
      ->required();
  v->sync->add_option("DST", v->dst, "A folder or s3://BUCKET/PREFIX")->required();
  v->sync->add_flag("--verify", v->verify,
                    "Then open the copy and verify every shard and sample");
  v->sync->add_flag("--no-sync", v->no_sync, "Do not fsync files written to a local DST");
  v->sync->add_flag("-q,--quiet", v->quiet, "No progress line");
  v->sync->add_flag("--json", v->json_out, "Print the result as JSON");
  AddReadFlags(v->sync, read_args);
  v->sync->footer(
      "Shards never change under a name, so a shard DST holds with the same size is skipped;\n"
      "the manifest is written last, so DST never shows a dataset with shards missing, and\n"
      "an interrupted sync run again copies only what is left. A folder of datasets copies each\n"
      "dataset, then its views and a snapshot of each catalog (SQLite VACUUM INTO).\n"
      "Example: shardset sync fmnist-train s3://backups/fmnist-train --endpoint "
      "http://127.0.0.1:9000 --verify");
  return v;
}

int RunRemoteVerb(RemoteVerbs* v, CLI::App* sub, const ReadOptions& ro) {
  if (sub == v->sync) return RunSync(*v, ro);
  return -1;
}

}  // namespace shardset::cli
