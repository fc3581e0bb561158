// shardset: the command-line front end. Each verb is a thin layer over a
// library call; this file owns argument parsing, output formatting and the
// mapping from Status codes to exit codes (docs/cli.md "Exit codes").
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <thread>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/hash.h"
#include "cli.h"
#include "base/strings.h"
#include "formats/archive_entry.h"
#include "remote/client.h"
#include "shardset/dataset.h"
#include "shardset/pack.h"
#include "shardset/remote.h"
#include "shardset/shard.h"
#include "shardset/view.h"
#include "view/summary.h"

namespace shardset {
namespace {

using namespace cli;

// ---------------------------------------------------------------- pack
struct PackArgs {
  std::vector<std::string> sources;
  std::string out;
  std::string format = "native";
  std::string shard_size = "256MiB";
  uint64_t shard_samples = 0;
  bool label_from_dir = false;
  int jobs = 0;  // 0: one per core
  bool skip_unreadable = false;
  bool no_sync = false;
  bool force = false;
  bool quiet = false;
  bool json_out = false;
  int zip_deflate = 0;
  int gzip_level = 6;
  std::string part;  // "I/N"
};

int RunPack(const PackArgs& a, const ReadOptions& ro) {
  PackOptions o;
  auto format = ParseFormat(a.format);
  if (!format.ok()) return Fail(format.status());
  o.format = *format;
  auto size = ParseSize(a.shard_size);
  if (!size.ok()) return Fail(size.status());
  o.shard_size = *size;
  o.shard_samples = a.shard_samples;
  o.label_from_dir = a.label_from_dir;
  o.jobs = a.jobs > 0 ? a.jobs : std::max(1u, std::thread::hardware_concurrency());
  o.skip_unreadable = a.skip_unreadable;
  o.sync = !a.no_sync;
  o.read = ro;
  o.zip_deflate_level = a.zip_deflate;
  o.gzip_level = a.gzip_level;
  o.force = a.force;
  if (!a.part.empty()) {
    unsigned long long i = 0, n = 0;
    char tail = 0;
    if (std::sscanf(a.part.c_str(), "%llu/%llu%c", &i, &n, &tail) != 2 || n == 0 || i >= n) {
      return Fail(Status::InvalidArgument(fmt::format(
          "--part {}: give I/N with 0 <= I < N, e.g. --part 0/4 for the first of 4 parts",
          a.part)));
    }
    o.part = i;
    o.parts = n;
  }
  Progress bar(a.quiet);
  o.progress = [&](const PackProgress& p) {
    bar.Show(fmt::format("packing: {} samples, {} read, {} shards sealed", p.samples,
                         FormatBytes(p.bytes_in), p.shards));
  };
  o.warn = [&](const std::string& w) {
    bar.Done();
    std::fprintf(stderr, "shardset pack: warning: %s\n", w.c_str());
  };
  // s3://: packed into a staging folder in the cache, then uploaded.
  const std::string out = Staging(a.out, ro);
  auto r = Pack(a.sources, out, o);
  bar.Done();
  if (!r.ok()) return Fail(r.status());
  // What was written: OUT, or its part folder.
  const std::string part_name = o.parts > 1 ? PartFolderName(o.part, o.parts) : "";
  const std::string shown =
      part_name.empty() ? a.out
                        : (IsRemote(a.out) ? a.out + "/" + part_name : JoinPath(a.out, part_name));
  Status up = part_name.empty() ? Upload(out, a.out, ro, &bar)
                                : Upload(JoinPath(out, part_name), shown, ro, &bar);
  if (!up.ok()) return Fail(up);
  if (a.json_out) {
    json j = {{"out", shown},
              {"samples", r->samples},
              {"shards", r->shards},
              {"bytes_in", r->bytes_in},
              {"bytes_out", r->bytes_out},
              {"skipped", r->skipped},
              {"resumed_samples", r->resumed_samples},
              {"already_complete", r->already_complete}};
    std::puts(Dump(j).c_str());
  } else if (r->already_complete) {
    std::printf("%s: already complete (%llu samples in %llu shards); nothing to do\n",
                shown.c_str(), static_cast<unsigned long long>(r->samples),
                static_cast<unsigned long long>(r->shards));
  } else {
    std::string resumed =
        r->resumed_samples ? fmt::format(" (resumed after {} samples)", r->resumed_samples) : "";
    std::string skipped = r->skipped ? fmt::format(", {} files skipped", r->skipped) : "";
    std::printf("%s: %llu samples in %llu %s shards, %s of files -> %s (%+.2f%%)%s%s\n",
                shown.c_str(), static_cast<unsigned long long>(r->samples),
                static_cast<unsigned long long>(r->shards), a.format.c_str(),
                FormatBytes(r->bytes_in).c_str(), FormatBytes(r->bytes_out).c_str(),
                r->bytes_in ? 100.0 * (double(r->bytes_out) - double(r->bytes_in)) /
                                  double(r->bytes_in)
                            : 0.0,
                resumed.c_str(), skipped.c_str());
  }
  return kExitOk;
}

// Shards behind a dataset or view (summed over a view's sources).
size_t NumShards(const View& v) {
  size_t n = 0;
  for (size_t s = 0; s < v.num_sources(); ++s) n += v.dataset(s).num_shards();
  return n;
}

// ---------------------------------------------------------------- ls
int RunLs(const std::vector<std::string>& targets, ReadOptions ro, bool json_out) {
  ro.verify_checksums = false;  // ls touches no field bytes
  auto ds = View::Open(targets, ro);
  if (!ds.ok()) return Fail(ds.status());
  Sample s;
  std::string line;
  for (uint64_t i = 0; i < (*ds)->num_samples(); ++i) {
    Status st = (*ds)->Read(i, &s);
    if (!st.ok()) return Fail(st);
    line.clear();
    if (json_out) {
      json j;
      j["ordinal"] = i;
      PutKey(&j, s.key);
      json fields = json::object();
      for (const Field& f : s.fields) fields[std::string(f.name)] = f.data.size();
      j["fields"] = std::move(fields);
      line = Dump(j);
    } else {
      line = EscapeForDisplay(s.key);
      line.push_back('\t');
      for (size_t k = 0; k < s.fields.size(); ++k) {
        if (k) line.push_back(' ');
        line += fmt::format("{}:{}", EscapeForDisplay(s.fields[k].name), s.fields[k].data.size());
      }
    }
    line.push_back('\n');
    if (!WriteStdout(line)) return kExitFailure;  // stdout closed (e.g. | head)
  }
  return kExitOk;
}

// One line per archive entry: type, size, name (-> link target).
int RunLsEntries(const std::vector<std::string>& targets, const ReadOptions& ro, bool json_out) {
  for (const std::string& target : targets) {
    Status st = ForEachEntry(target, ro, [&](const ArchiveEntry& e, const EntryDataReader&) {
      std::string line;
      if (json_out) {
        json j = {{"type", std::string(EntryTypeName(e.type))},
                  {"typeflag", std::string(1, e.typeflag)},
                  {"size", e.size},
                  {"mode", fmt::format("{:o}", e.mode & 07777)},
                  {"mtime", e.mtime}};
        PutName(&j, "name", e.name);
        if (!e.linkname.empty()) j["linkname"] = e.linkname;
        if (targets.size() > 1) j["archive"] = target;
        line = Dump(j);
      } else {
        line = fmt::format("{:<8} {:>12} {}", EntryTypeName(e.type), e.size,
                           EscapeForDisplay(e.name));
        if (!e.linkname.empty()) line += " -> " + EscapeForDisplay(e.linkname);
      }
      line.push_back('\n');
      if (!WriteStdout(line)) return Status::IOError("cannot write to stdout");
      return Status::OK();
    });
    if (!st.ok()) return Fail(st);
  }
  return kExitOk;
}

// ---------------------------------------------------------------- info
void PrintFields(const std::map<std::string, FieldSummary>& fields) {
  std::printf("fields:\n");
  for (const auto& [name, fs] : fields) {
    std::printf("  %-10s %8llu samples  %10s%s\n", EscapeForDisplay(name).c_str(),
                static_cast<unsigned long long>(fs.samples), FormatBytes(fs.bytes).c_str(),
                fs.derived ? "  (derived)" : "");
  }
}

void PrintLabels(const std::map<std::string, uint64_t>& labels, const std::string& label_field) {
  if (labels.empty()) {
    std::printf("labels:   none (no '%s' field; pack with --label-from-dir)\n",
                label_field.c_str());
    return;
  }
  std::printf("labels:   %zu distinct values of '%s'\n", labels.size(), label_field.c_str());
  uint64_t most = 0;
  for (const auto& [l, n] : labels) most = std::max(most, n);
  for (const auto& [l, n] : labels) {
    int bar = most ? static_cast<int>(40.0 * double(n) / double(most)) : 0;
    std::printf("  %-10s %8llu  %s\n", EscapeForDisplay(l).c_str(),
                static_cast<unsigned long long>(n), std::string(bar, '#').c_str());
  }
}

int RunInfo(const std::vector<std::string>& targets, ReadOptions ro,
            const std::string& label_field, bool json_out, bool quiet) {
  ro.verify_checksums = false;  // a summary; verify checks the bytes
  auto view_or = View::Open(targets, ro);
  if (!view_or.ok()) return Fail(view_or.status());
  const View& v = **view_or;
  Progress bar(quiet || json_out);
  auto summary_or = Summarize(v, label_field, [&](uint64_t i) {
    bar.Show(fmt::format("reading: {}/{} samples", i, v.num_samples()));
  });
  bar.Done();
  if (!summary_or.ok()) return Fail(summary_or.status());
  const ViewSummary& summary = *summary_or;
  if (json_out) {
    std::puts(Dump(SummaryJson(v, summary, label_field), 2).c_str());
    return kExitOk;
  }
  if (v.is_view_file()) {
    json recipe = json::parse(v.recipe_json(), nullptr, false);
    std::printf("view:     %s\n", v.target().c_str());
    if (v.file_size() == 0) {  // a catalog directory: its entries live in the catalog
      std::printf("samples:  %llu (a catalog directory, docs/catalog.md)\n",
                  static_cast<unsigned long long>(v.num_samples()));
    } else {
      std::printf("samples:  %llu (view file %s, %.2f bytes per sample)\n",
                  static_cast<unsigned long long>(v.num_samples()),
                  FormatBytes(v.file_size()).c_str(),
                  v.num_samples() ? double(v.file_size()) / double(v.num_samples()) : 0.0);
    }
    std::printf("size:     %s of fields, read in place from %zu source%s\n",
                FormatBytes(summary.field_bytes).c_str(), v.num_sources(),
                v.num_sources() == 1 ? "" : "s");
    std::printf("sources:\n");
    for (size_t i = 0; i < v.num_sources(); ++i) {
      const ViewSource& src = v.source(i);
      std::printf("  %-12s %8llu of %llu samples (%5.1f%%)  %s\n",
                  EscapeForDisplay(src.name).c_str(),
                  static_cast<unsigned long long>(src.selected),
                  static_cast<unsigned long long>(src.num_samples),
                  src.num_samples ? 100.0 * double(src.selected) / double(src.num_samples) : 0.0,
                  fmt::format("{}", fmt::join(src.targets, " ")).c_str());
    }
    PrintFields(summary.fields);
    PrintLabels(summary.labels, label_field);
    if (!summary.labels.empty() && v.num_sources() > 1) {
      std::printf("labels per source:\n");
      for (size_t i = 0; i < v.num_sources(); ++i) {
        std::string line;
        for (const auto& [l, n] : summary.source_labels[i]) line += fmt::format(" {}:{}", l, n);
        std::printf("  %-12s%s\n", EscapeForDisplay(v.source(i).name).c_str(), line.c_str());
      }
    }
    std::printf("recipe:   %s\n", Dump(recipe).c_str());
    return kExitOk;
  }
  const Dataset& ds = v.dataset(0);
  uint64_t file_bytes = 0;
  const auto& shard_list = ds.manifest().shards;
  for (const ManifestShard& ms : shard_list) file_bytes += ms.file_size;
  const uint64_t source_bytes = summary.source_bytes;
  const double overhead =
      source_bytes ? 100.0 * (double(file_bytes) - double(source_bytes)) / double(source_bytes)
                   : 0.0;
  std::set<std::string> formats;
  for (const ManifestShard& ms : shard_list) formats.insert(std::string(FormatName(ms.format)));
  std::printf("target:   %s\n", ds.target().c_str());
  std::printf("samples:  %llu\n", static_cast<unsigned long long>(ds.num_samples()));
  std::printf("shards:   %zu (%s)\n", ds.num_shards(),
              formats.empty() ? "-" : fmt::format("{}", fmt::join(formats, ", ")).c_str());
  if (formats.size() == 1 && *formats.begin() == FormatName(ShardFormat::kFolder)) {
    // Folder shards hold only an index; the files stay where they are.
    std::printf("size:     %s of index; %s of files read in place\n",
                FormatBytes(file_bytes).c_str(), FormatBytes(source_bytes).c_str());
  } else {
    std::printf("size:     %s on disk for %s of source files (overhead %+.2f%%)\n",
                FormatBytes(file_bytes).c_str(), FormatBytes(source_bytes).c_str(), overhead);
  }
  PrintFields(summary.fields);
  PrintLabels(summary.labels, label_field);
  return kExitOk;
}

// ---------------------------------------------------------------- cat
int RunCat(const std::vector<std::string>& targets, const ReadOptions& ro,
           const std::vector<std::string>& keys, const std::vector<uint64_t>& ordinals,
           const std::string& field) {
  if (keys.empty() == ordinals.empty()) {
    return Fail(Status::InvalidArgument("give one or more KEYs, or --ordinal N (not both)"));
  }
  auto ds = View::Open(targets, ro);
  if (!ds.ok()) return Fail(ds.status());
  Sample s;
  auto emit = [&](uint64_t ordinal) -> Status {
    SHARDSET_RETURN_IF_ERROR((*ds)->Read(ordinal, &s));
    const Field* f = nullptr;
    if (!field.empty()) {
      f = s.Find(field);
      if (!f) {
        return Status::NotFound(fmt::format("{}: sample {} (key '{}') has no field '{}'",
                                            (*ds)->target(),
                                            ordinal, EscapeForDisplay(s.key), field));
      }
    } else {
      // Without --field, the one field that came from a file (derived fields
      // such as the cls label do not count).
      std::string list;
      size_t real = 0;
      for (const Field& x : s.fields) {
        list += (list.empty() ? "" : ", ") + EscapeForDisplay(x.name);
        if (!(x.flags & kFieldDerived)) {
          f = &x;
          ++real;
        }
      }
      if (real != 1) {
        return Status::InvalidArgument(
            fmt::format("sample '{}' has fields {}; choose one with --field",
                        EscapeForDisplay(s.key), list.empty() ? "(none)" : list));
      }
    }
    if (!WriteStdout(f->data)) return Status::IOError("cannot write to stdout");
    return Status::OK();
  };
  for (const std::string& key : keys) {
    auto ord = (*ds)->Find(key);
    if (!ord.ok()) return Fail(ord.status());
    Status st = emit(*ord);
    if (!st.ok()) return Fail(st);
  }
  for (uint64_t ord : ordinals) {
    Status st = emit(ord);
    if (!st.ok()) return Fail(st);
  }
  return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
}

// ---------------------------------------------------------------- extract
int RunExtract(const std::vector<std::string>& targets, const ReadOptions& ro,
               const std::string& out, bool derived, bool quiet) {
  auto ds = View::Open(targets, ro);
  if (!ds.ok()) return Fail(ds.status());
  Progress bar(quiet);
  ExtractOptions o;
  o.derived = derived;
  o.progress = [&](uint64_t samples, uint64_t files) {
    if (samples % 1024 == 0) bar.Show(fmt::format("extracting: {} files", files));
  };
  auto r = Extract(**ds, out, o);
  bar.Done();
  if (!r.ok()) return Fail(r.status());
  if (!quiet) {
    std::fprintf(stderr, "%s: %llu files, %s\n", out.c_str(),
                 static_cast<unsigned long long>(r->files), FormatBytes(r->bytes).c_str());
  }
  return kExitOk;
}

// ---------------------------------------------------------------- index
int RunIndex(const std::vector<std::string>& files, const ReadOptions& ro) {
  for (const std::string& f : files) {
    // By content only: a stale or damaged sidecar must not stop its rebuild.
    auto format = DetectFormat(f);
    if (!format.ok()) return Fail(format.status());
    const std::vector<std::string> sidecars = SidecarPaths(f, *format);
    if (sidecars.empty()) {
      std::printf("%s: %s shard, its index is built in; nothing to do\n", f.c_str(),
                  std::string(FormatName(*format)).c_str());
      continue;
    }
    auto n = WriteShardIndex(f, ro, /*sync=*/true);
    if (!n.ok()) return Fail(n.status());
    std::printf("%s: indexed %llu samples -> %s\n", f.c_str(),
                static_cast<unsigned long long>(*n), fmt::format("{}", fmt::join(sidecars, ", ")).c_str());
  }
  return kExitOk;
}

// ---------------------------------------------------------------- verify
int RunVerify(const std::vector<std::string>& targets, const ReadOptions& ro, bool json_out,
              bool quiet) {
  auto ds = View::Open(targets, ro);
  if (!ds.ok()) {
    // A shard too damaged to open is itself a verify failure.
    if (json_out) {
      json j = {{"target", targets[0]}, {"ok", false}, {"problems", {ds.status().message()}}};
      std::puts(Dump(j, 2).c_str());
    }
    return Fail(ds.status());
  }
  Progress bar(quiet || json_out);
  VerifyReport report;
  Status st = (*ds)->Verify(&report, [&](const DatasetVerifyProgress& p) {
    bar.Show(fmt::format("verifying: {}/{} shards, {}", p.shards_done, p.shards_total,
                         FormatBytes(p.bytes_done)));
  });
  bar.Done();
  if (!st.ok()) return Fail(st);
  if (json_out) {
    json j = {{"target", (*ds)->target()},
              {"ok", report.ok()},
              {"samples", report.samples_checked},
              {"bytes", report.bytes_checked},
              {"shards", NumShards(**ds)},
              {"problems", report.problems}};
    std::puts(Dump(j, 2).c_str());
  } else {
    for (const std::string& p : report.problems) {
      std::fprintf(stderr, "shardset verify: %s\n", p.c_str());
    }
    std::printf("%s: %s: %llu samples, %zu shards, %s checked; %zu problem%s\n",
                (*ds)->target().c_str(),
                report.ok() ? "OK" : "FAILED",
                static_cast<unsigned long long>(report.samples_checked), NumShards(**ds),
                FormatBytes(report.bytes_checked).c_str(), report.problems.size(),
                report.problems.size() == 1 ? "" : "s");
  }
  if (report.ok()) return kExitOk;
  return report.problems.size() == report.missing_shards ? kExitNotFound : kExitCorrupt;
}

}  // namespace
}  // namespace shardset

int main(int argc, char** argv) {
  using namespace shardset;
  using namespace shardset::cli;
  CLI::App app{
      "shardset: pack many small files into a few indexed shards, and read them back by key "
      "or ordinal at disk speed.\nTARGET is a dataset folder, a view file, or one or more shards "
      "or archives (native, tar, tar.gz, zip, tsv: recognised by content) read as one "
      "dataset.\n"
      "Exit codes: 0 ok, 1 failure, 2 bad usage, 3 not found, 4 corruption found."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "shardset 0.1.0");

  ReadArgs read_args;
  PackArgs pack;
  auto* p = app.add_subcommand("pack", "Pack folders of files (or tar files) into a dataset of shards");
  p->add_option("SRC", pack.sources,
                "Folders, datasets, shards or archives (tar, tar.gz, zip, tsv) to pack, in this "
                "order")
      ->required();
  p->add_option("-o,--output", pack.out,
                "Dataset folder to write (created if missing), or s3://BUCKET/PREFIX (packed in the "
                "cache, then uploaded, manifest last)")
      ->required();
  p->add_option("--format", pack.format,
                "Shard format: native, tar, tar.gz (with a .idx sidecar for random access; see "
                "--gzip-level), zip (stored; see --zip-deflate) or tsv (base64 columns + "
                ".lineidx)")
      ->check(CLI::IsMember({"native", "tar", "tar.gz", "zip", "tsv"}))
      ->capture_default_str();
  p->add_option("--gzip-level", pack.gzip_level,
                "With --format tar.gz: gzip level of each shard (1-9)")
      ->check(CLI::Range(1, 9))
      ->capture_default_str();
  p->add_option("--zip-deflate", pack.zip_deflate,
                "With --format zip: deflate fields at this zlib level (1-9; 0 stores them)")
      ->check(CLI::Range(0, 9))
      ->capture_default_str();
  p->add_option("--shard-size", pack.shard_size,
                "Seal a shard before it grows past this size (e.g. 256MiB, 1GiB)")
      ->capture_default_str();
  p->add_option("--shard-samples", pack.shard_samples,
                "Also seal a shard after this many samples (0: no limit)")
      ->capture_default_str();
  p->add_flag("--label-from-dir", pack.label_from_dir,
              "Add a 'cls' field holding each file's parent folder name (training/0/17.png -> 0)");
  p->add_option("-j,--jobs", pack.jobs, "Threads reading source files (0: one per core)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  p->add_flag("--skip-unreadable", pack.skip_unreadable,
              "Skip files that cannot be read, with a warning and a line in the manifest");
  p->add_flag("--no-sync", pack.no_sync,
              "Do not fsync shards (faster; a crash may then lose sealed shards)");
  p->add_option("--part", pack.part,
                "Pack only part I of N (e.g. 0/4), into OUT/part-I-of-N, for N machines or an "
                "array job; then `shardset dataset merge OUT` joins the parts")
      ->group("Parts");
  p->add_flag("--force", pack.force,
              "Replace a dataset (or interrupted pack) in OUT made with other arguments");
  p->add_flag("-q,--quiet", pack.quiet, "No progress bar");
  p->add_flag("--json", pack.json_out, "Print the result as JSON");
  AddReadFlags(p, &read_args);
  p->footer(
      "Files sharing a stem form one sample (0042.png + 0042.cls -> key 0042, fields png, cls).\n"
      "Rerunning an interrupted pack with the same arguments resumes after the last sealed "
      "shard.\nExample: shardset pack fashion-mnist/training -o fmnist-train --label-from-dir");

  std::vector<std::string> targets, keys, index_files;
  std::string out, field, cat_target, label_field = "cls";
  std::vector<uint64_t> ordinals;
  bool json_out = false, derived = false, quiet = false, entries = false;
  constexpr const char* kTargets =
      "Dataset folder, view file, catalog directory (CATALOG#NAME), or one or more shards or "
      "archives (native, tar, tar.gz, zip, tsv, folder index) read as one dataset in this order";

  auto* ls = app.add_subcommand("ls", "List samples: key, then each field with its size");
  ls->add_option("TARGET", targets, kTargets)->required();
  ls->add_flag("--json", json_out, "One JSON object per line: ordinal, key, fields");
  ls->add_flag("--entries", entries,
               "List an archive's entries as stored (files, folders, links), not its samples");
  AddReadFlags(ls, &read_args);

  auto* info = app.add_subcommand("info", "Summarise: samples, shards, bytes, fields, labels");
  info->add_option("TARGET", targets, kTargets)->required();
  info->add_option("--label-field", label_field, "Field holding the label")
      ->capture_default_str();
  bool order = false;
  std::string order_by = "label";
  uint64_t order_window = 1000;
  info->add_flag("--order", order,
                 "Instead: how good the sample order is (same-label neighbours, runs, labels per "
                 "window, each next to a uniform random order's, and a verdict)");
  info->add_option("--by", order_by,
                   "--order's labels: 'label' (the cls field, else the parent folder), 'dir', "
                   "'path:N' (key path component N, -1 the file stem) or 'field:NAME'")
      ->capture_default_str();
  info->add_option("--window", order_window, "--order: samples per window")->capture_default_str();
  info->add_flag("--json", json_out, "Print as JSON");
  info->add_flag("-q,--quiet", quiet, "No progress bar");
  AddReadFlags(info, &read_args);
  info->footer("Example: shardset info --order training.tar.gz");

  auto* cat = app.add_subcommand("cat", "Write the bytes of samples to stdout, by key or ordinal");
  cat->add_option("TARGET", cat_target,
                  "Dataset folder, shard or archive (with --target: the first KEY)");
  cat->add_option("KEY", keys, "Sample keys; several are written one after another");
  cat->add_option("-t,--target", targets,
                  "A shard or archive; repeat to read several as one dataset (ordinals run on "
                  "across them)")
      ->allow_extra_args(false);
  cat->add_option("--ordinal", ordinals, "Sample ordinals (0-based), instead of keys");
  cat->add_option("--field", field,
                  "Field to write; needed when a sample has more than one source field");
  AddReadFlags(cat, &read_args);

  auto* ex = app.add_subcommand("extract", "Write every sample back out as files");
  ex->add_option("TARGET", targets, kTargets)->required();
  ex->add_option("-o,--output", out, "Folder to write into (created if missing)")->required();
  ex->add_flag("--derived", derived, "Also write derived fields (e.g. the cls label)");
  ex->add_flag("-q,--quiet", quiet, "No progress or summary");
  AddReadFlags(ex, &read_args);
  ex->footer(
      "Nothing is written outside the output folder: keys with '..', absolute paths or empty "
      "components are refused before anything is written, links in archives are not samples, "
      "and no existing symlink inside the folder is followed.");

  auto* idx = app.add_subcommand(
      "index", "Build the sidecar index of archives: tar (FILE.idx), tar.gz (FILE.idx: "
               "checkpoints + samples), tsv (STEM.lineidx and STEM.lineidx.8b, as TSVFile names "
               "them: train.tsv -> train.lineidx)");
  idx->add_option("FILE", index_files, "Archives to index; native shards and zips need none")
      ->required();
  AddReadFlags(idx, &read_args);

  auto* ver = app.add_subcommand(
      "verify", "Check every checksum and structure; exit 0 only if all hold, else 4");
  ver->add_option("TARGET", targets, kTargets)->required();
  ver->add_flag("--json", json_out, "Print the report as JSON");
  ver->add_flag("-q,--quiet", quiet, "No progress bar");
  AddReadFlags(ver, &read_args);

  ViewVerbs* view_verbs = AddViewVerbs(&app, &read_args);
  ShuffleVerbs* shuffle_verbs = AddShuffleVerbs(&app, &read_args);
  MountVerbs* mount_verbs = AddMountVerbs(&app, &read_args);
  RemoteVerbs* remote_verbs = AddRemoteVerbs(&app, &read_args);
  CatalogVerbs* catalog_verbs = AddCatalogVerbs(&app, &read_args);
  ServeVerbs* serve_verbs = AddServeVerbs(&app, &read_args);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  CLI::App* sub = app.get_subcommands().front();
  verb_name = sub->get_name();
  auto ro = read_args.ToOptions();
  if (!ro.ok()) return Fail(ro.status());
  if (sub == p) return RunPack(pack, *ro);
  if (int rc = RunViewVerb(view_verbs, sub, *ro, argc, argv); rc >= 0) return rc;
  if (int rc = RunShuffleVerb(shuffle_verbs, sub, *ro, argc, argv); rc >= 0) return rc;
  if (int rc = RunMountVerb(mount_verbs, sub, *ro); rc >= 0) return rc;
  if (int rc = RunRemoteVerb(remote_verbs, sub, *ro); rc >= 0) return rc;
  if (int rc = RunCatalogVerb(catalog_verbs, sub, *ro); rc >= 0) return rc;
  if (int rc = RunServeVerb(serve_verbs, sub, *ro); rc >= 0) return rc;
  if (sub == ls) return entries ? RunLsEntries(targets, *ro, json_out) : RunLs(targets, *ro, json_out);
  if (sub == info) {
    if (order) return RunOrderInfo(targets, *ro, order_by, order_window, json_out, quiet);
    return RunInfo(targets, *ro, label_field, json_out, quiet);
  }
  if (sub == cat) {
    if (targets.empty()) {
      if (cat_target.empty()) return Fail(Status::InvalidArgument("give a TARGET (or --target)"));
      targets.push_back(cat_target);
    } else if (!cat_target.empty()) {
      keys.insert(keys.begin(), cat_target);
    }
    ReadOptions cat_ro = *ro;
    PreferRangedFetch(&cat_ro);
    return RunCat(targets, cat_ro, keys, ordinals, field);
  }
  if (sub == ex) return RunExtract(targets, *ro, out, derived, quiet);
  if (sub == idx) return RunIndex(index_files, *ro);
  if (sub == ver) return RunVerify(targets, *ro, json_out, quiet);
  return kExitUsage;
}
