// serve: a read-only web page over datasets, views and catalogs (docs/serve.md).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli.h"
#include "shardset/serve.h"

namespace shardset::cli {

struct ServeVerbs {
  CLI::App* serve = nullptr;
  std::vector<std::string> targets;
  ServeOptions options;
  bool no_verify = false;
};

namespace {

int RunServe(ServeVerbs& v, const ReadOptions& ro) {
  v.options.read = ro;
  PreferRangedFetch(&v.options.read);
  v.options.verify = !v.no_verify;
  // SIGINT and SIGTERM are taken by a thread that stops the server, so every
  // thread the server starts inherits them blocked.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  auto server = Server::Open(v.targets, v.options);
  if (!server.ok()) return Fail(server.status());
  if (Status s = (*server)->Bind(); !s.ok()) return Fail(s);
  const std::string host =
      v.options.host.find(':') != std::string::npos ? "[" + v.options.host + "]" : v.options.host;
  std::printf("shardset serve: http://%s:%d/ (Ctrl-C stops)\n", host.c_str(), (*server)->port());
  for (const std::string& line : (*server)->pages()) std::printf("  %s\n", line.c_str());
  std::fflush(stdout);
  Server* raw = server->get();
  std::thread waiter([raw, stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    raw->Stop();
  });
  waiter.detach();
  Status s = raw->Run();
  std::fflush(stdout);
  // A background verify cannot be interrupted mid-shard, and a read-only
  // server has nothing to save: leave without waiting for it.
  std::_Exit(s.ok() ? kExitOk : Fail(s));
}

}  // namespace

ServeVerbs* AddServeVerbs(CLI::App* app, ReadArgs* read_args) {
  auto* v = new ServeVerbs();
  v->serve = app->add_subcommand(
      "serve", "Show datasets, views and catalogs on a local web page (read-only)");
  v->serve->add_option("TARGET", v->targets,
                       "Dataset folders, view files, shard files, catalog files (a page per "
                       "directory) or CATALOG#DIR")
      ->required();
  v->serve->add_option("--host", v->options.host,
                       "Address to listen on; 0.0.0.0 shows the data to the whole network")
      ->capture_default_str();
  v->serve->add_option("-p,--port", v->options.port, "Port to listen on (0: any free port)")
      ->capture_default_str();
  v->serve->add_option("--label-field", v->options.label_field, "Field holding the label")
      ->capture_default_str();
  v->serve->add_option("--order-by", v->options.order_by,
                       "The label the order strip measures, as info --order --by takes it")
      ->capture_default_str();
  v->serve->add_option("--thumbnail-size", v->options.thumbnail_size,
                       "Largest side of a grid thumbnail, in pixels")
      ->capture_default_str();
  v->serve->add_option("--threads", v->options.threads, "Threads answering requests (0: 32)")
      ->capture_default_str();
  v->serve->add_flag("--no-verify", v->no_verify,
                     "Do not verify the shards in the background (the page shows no status)");
  AddReadFlags(v->serve, read_args);
  v->serve->footer(
      "Pages: a summary per dataset, view and catalog directory (samples, labels per source,\n"
      "shards and their verify status, the order strip of info --order), a paged thumbnail\n"
      "grid with annotations drawn over the images, and a page per sample with every field.\n"
      "Example: shardset serve fmnist-mix.view --port 8470   (then open http://127.0.0.1:8470/)");
  return v;
}

int RunServeVerb(ServeVerbs* v, CLI::App* sub, const ReadOptions& ro) {
  if (sub == v->serve) return RunServe(*v, ro);
  return -1;
}

}  // namespace shardset::cli
