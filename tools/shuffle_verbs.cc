// shardset shuffle (docs/shuffle.md).
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "base/strings.h"
#include "cli.h"
#include "shardset/remote.h"
#include "shardset/shuffle.h"
#include "shardset/view.h"
#include "view/labels.h"
#include "view/order_stats.h"

namespace shardset::cli {

struct ShuffleVerbs {
  CLI::App* shuffle = nullptr;
  std::vector<std::string> src;
  std::string out, interleave_by, format, shard_size = "256MiB", memory = "1GiB", temp_dir,
              method = "auto";
  uint64_t seed = 0, shard_samples = 0;
  int zip_deflate = 0, gzip_level = 6;
  bool view = false, force = false, no_sync = false, quiet = false, json_out = false;
};

namespace {

int RunShuffle(ShuffleVerbs& a, const ReadOptions& ro, int argc, char** argv) {
  ShuffleOptions o;
  o.seed = a.seed;
  o.interleave_by = a.interleave_by;
  auto memory = ParseSize(a.memory);
  if (!memory.ok()) return Fail(memory.status().WithPrefix("--memory"));
  o.memory = *memory;
  o.temp_dir = a.temp_dir;
  o.method = a.method == "direct"           ? ShuffleOptions::Method::kDirect
             : a.method == "scatter-gather" ? ShuffleOptions::Method::kScatterGather
                                            : ShuffleOptions::Method::kAuto;
  auto shard_size = ParseSize(a.shard_size);
  if (!shard_size.ok()) return Fail(shard_size.status().WithPrefix("--shard-size"));
  o.shard_size = *shard_size;
  o.shard_samples = a.shard_samples;
  o.zip_deflate_level = a.zip_deflate;
  o.gzip_level = a.gzip_level;
  o.sync = !a.no_sync;
  o.force = a.force;
  if (!o.interleave_by.empty()) {
    if (auto spec = LabelSpec::Parse(o.interleave_by); !spec.ok()) {
      return Fail(spec.status().WithPrefix("--interleave-by"));
    }
  }
  auto src_or = View::Open(a.src, ro);
  if (!src_or.ok()) return Fail(src_or.status());
  const View& src = **src_or;
  if (a.format.empty()) {
    o.format = SourceShardFormat(src);
  } else {
    auto f = ParseFormat(a.format);
    if (!f.ok()) return Fail(f.status().WithPrefix("--format"));
    if (!FormatWritable(*f)) {
      return Fail(Status::InvalidArgument(fmt::format(
          "--format {}: shardset reads this format but does not write it; choose native, tar, "
          "tar.gz, zip or tsv",
          a.format)));
    }
    o.format = *f;
  }
  Progress bar(a.quiet || a.json_out);
  o.progress = [&](const ShuffleProgress& p) {
    bar.Show(fmt::format("{}: {}/{} samples", p.phase, p.done, p.total));
  };
  const std::string mode =
      o.interleave_by.empty() ? "uniformly" : fmt::format("interleaved by {}", o.interleave_by);

  if (a.view) {
    if (IsRemote(a.out)) {
      return Fail(Status::InvalidArgument(fmt::format(
          "{}: views are written to a folder (they name their datasets by local paths); "
          "shuffle --view -o a local file",
          a.out)));
    }
    o.recipe_json = Dump({{"command", CommandLine(argc, argv)}});
    auto r = ShuffleView(src, a.out, o);
    bar.Done();
    if (!r.ok()) return Fail(r.status());
    if (a.json_out) {
      std::puts(Dump({{"view", r->path},
                      {"samples", r->samples},
                      {"seed", o.seed},
                      {"mode", o.interleave_by.empty() ? "uniform" : "interleave"}})
                    .c_str());
    } else {
      std::printf("%s: %llu samples shuffled %s with seed %llu (a view: no bytes copied)\n",
                  r->path.c_str(), static_cast<unsigned long long>(r->samples), mode.c_str(),
                  static_cast<unsigned long long>(o.seed));
    }
    return kExitOk;
  }

  // s3://: shuffled into a staging copy in the cache, then uploaded.
  const std::string out = Staging(a.out, ro);
  auto r = Shuffle(src, out, o);
  bar.Done();
  if (!r.ok()) return Fail(r.status());
  if (Status up = Upload(out, a.out, ro, &bar); !up.ok()) return Fail(up);
  if (a.json_out) {
    std::puts(Dump({{"out", a.out},
                    {"samples", r->samples},
                    {"shards", r->shards},
                    {"bytes_out", r->bytes_out},
                    {"seed", o.seed},
                    {"mode", o.interleave_by.empty() ? "uniform" : "interleave"},
                    {"temp_bytes", r->temp_bytes},
                    {"spilled_groups", r->spilled_groups},
                    {"method", r->direct ? "direct" : "scatter-gather"},
                    {"resumed_samples", r->resumed_samples},
                    {"already_complete", r->already_complete}})
                  .c_str());
  } else if (r->already_complete) {
    std::printf("%s: already complete (%llu samples in %llu shards); nothing to do\n",
                a.out.c_str(), static_cast<unsigned long long>(r->samples),
                static_cast<unsigned long long>(r->shards));
  } else {
    std::string resumed =
        r->resumed_samples ? fmt::format(", resumed after {} samples", r->resumed_samples) : "";
    std::string temp =
        r->direct       ? ", read in the new order"
        : r->temp_bytes ? fmt::format(", {} of temporary files at most", FormatBytes(r->temp_bytes))
                        : ", no temporary files";
    std::printf("%s: %llu samples shuffled %s with seed %llu into %llu shard%s (%s)%s%s\n",
                a.out.c_str(), static_cast<unsigned long long>(r->samples), mode.c_str(),
                static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(r->shards),
                r->shards == 1 ? "" : "s", FormatBytes(r->bytes_out).c_str(), temp.c_str(),
                resumed.c_str());
  }
  return kExitOk;
}

}  // namespace

int RunOrderInfo(const std::vector<std::string>& targets, ReadOptions ro, const std::string& by,
                 uint64_t window, bool json_out, bool quiet) {
  ro.verify_checksums = false;  // labels only; verify checks the bytes
  auto spec = LabelSpec::Parse(by);
  if (!spec.ok()) return Fail(spec.status().WithPrefix("--by"));
  auto v = View::Open(targets, ro);
  if (!v.ok()) return Fail(v.status());
  Progress bar(quiet || json_out);
  LabelColumn labels;
  LabelColumn::Options lo;
  lo.hint = "too many to measure an order by; choose the label with --by";
  lo.progress = [&](uint64_t done, uint64_t total) {
    bar.Show(fmt::format("reading labels: {}/{} samples", done, total));
  };
  Status st = labels.Build(**v, *spec, lo);
  bar.Done();
  if (!st.ok()) return Fail(st);
  OrderStatsOptions oo;
  oo.window = window;
  auto stats = ComputeOrderStats(labels.data(), labels.size(), labels.names(), oo);
  if (!stats.ok()) return Fail(stats.status());
  if (json_out) {
    json j = OrderStatsJson(*stats);
    j["target"] = (*v)->target();
    j["by"] = spec->ToString();
    std::puts(Dump(j).c_str());
  } else {
    std::printf("%s: order of %llu samples by %s\n", (*v)->target().c_str(),
                static_cast<unsigned long long>(labels.size()), spec->ToString().c_str());
    std::fputs(FormatOrderText(*stats).c_str(), stdout);
  }
  return kExitOk;
}

ShuffleVerbs* AddShuffleVerbs(CLI::App* app, ReadArgs* read_args) {
  auto* a = new ShuffleVerbs;  // lives as long as the process
  a->shuffle = app->add_subcommand(
      "shuffle", "Write a dataset's samples in a uniformly random (or label-interleaved) order");
  CLI::App* s = a->shuffle;
  s->add_option("SRC", a->src,
                "Dataset folder, view file, or shards and archives (tar, tar.gz, zip, tsv) read "
                "as one dataset")
      ->required();
  s->add_option("-o,--output", a->out,
                "Dataset folder to write (resumable), a single shard file named with its "
                "extension (out.tar.gz, out.tar, out.zip, out.tsv, out.shard), either of them on "
                "s3:// (written in the cache, then uploaded), or with --view a view file")
      ->required();
  s->add_option("--seed", a->seed, "Seed of the order (same seed, same order everywhere)")
      ->capture_default_str();
  s->add_option("--interleave-by", a->interleave_by,
                "Interleave labels instead: no two neighbours share a label when the counts "
                "allow it, labels spread in proportion to their counts. LABEL is 'label' (the "
                "cls field, else the parent folder), 'dir' (the parent folder), 'path:N' (key "
                "path component N, -1 the file stem) or 'field:NAME'");
  s->add_flag("--view", a->view, "Write the order as a view file instead (no bytes copied)");
  s->add_option("--format", a->format,
                "native, tar, tar.gz, zip or tsv (default: the source's format when shardset "
                "writes it, else native; a file -o names its own)");
  s->add_option("--shard-size", a->shard_size, "Seal a shard before it passes this size")
      ->capture_default_str();
  s->add_option("--shard-samples", a->shard_samples,
                "Also seal after this many samples (0: no limit)");
  s->add_option("--memory", a->memory,
                "Samples held in memory at once; larger data goes through temporary files "
                "(about its own size)")
      ->capture_default_str();
  s->add_option("--method", a->method,
                "direct: read the source in the new order (random reads, no temporary files); "
                "scatter-gather: read it in its own order through temporary files; auto: direct "
                "unless the source is tar.gz or larger than --memory with samples under 64 KiB")
      ->check(CLI::IsMember({"auto", "direct", "scatter-gather"}))
      ->capture_default_str();
  s->add_option("--temp-dir", a->temp_dir,
                "Folder for temporary files (default: inside the output folder, or next to the "
                "output file)");
  s->add_option("--zip-deflate", a->zip_deflate, "zip only: deflate level of the fields (0 stores)")
      ->check(CLI::Range(0, 9));
  s->add_option("--gzip-level", a->gzip_level, "tar.gz only: gzip level (1-9)")
      ->check(CLI::Range(1, 9))
      ->capture_default_str();
  s->add_flag("--force", a->force, "Replace an output made with other arguments");
  s->add_flag("--no-sync", a->no_sync, "Do not fsync what is written");
  s->add_flag("-q,--quiet", a->quiet, "No progress");
  s->add_flag("--json", a->json_out, "Print the result as JSON");
  AddReadFlags(s, read_args);
  s->footer(
      "Rerunning an interrupted shuffle into a dataset folder with the same arguments resumes "
      "after the last sealed shard.\n"
      "Examples:\n"
      "  shardset shuffle training-sorted.tar.gz -o training.tar.gz --seed 1\n"
      "  shardset shuffle fm -o fm-shuffled --seed 1 --format tar --shard-size 64MiB\n"
      "  shardset shuffle fm -o fm-interleaved.view --view --interleave-by label");
  return a;
}

int RunShuffleVerb(ShuffleVerbs* verbs, CLI::App* sub, const ReadOptions& ro, int argc,
                   char** argv) {
  if (sub == verbs->shuffle) return RunShuffle(*verbs, ro, argc, argv);
  return -1;
}

}  // namespace shardset::cli
