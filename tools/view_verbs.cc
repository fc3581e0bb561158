// The verbs that make datasets and views without copying samples: dataset
// create, split, select, mix, link, list (docs/views.md, docs/link.md).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/file.h"
#include "base/strings.h"
#include "cli.h"
#include "shardset/dataset.h"
#include "shardset/pack.h"
#include "shardset/link.h"
#include "shardset/select.h"
#include "shardset/view.h"

namespace shardset::cli {

struct ViewVerbs {
  CLI::App* dataset = nullptr;
  CLI::App* create = nullptr;
  CLI::App* merge = nullptr;
  CLI::App* split = nullptr;
  CLI::App* select = nullptr;
  CLI::App* mix = nullptr;
  CLI::App* link = nullptr;
  CLI::App* list = nullptr;

  std::string src, out, name, ratios, by_prefix, label_field = "cls", labels, keys, glob;
  std::string sweep, field, mode = "symlink", layout = "original";
  std::vector<std::string> shards, parts;
  uint64_t seed = 0, size = 0;
  bool stratify = false, replace = false, label_from_dir = false, skip_unreadable = false;
  bool no_sync = false, quiet = false, json_out = false;
};

namespace {

std::string Recipe(std::string_view verb, int argc, char** argv, const json& extra = {}) {
  json r = {{"verb", std::string(verb)}, {"command", CommandLine(argc, argv)}};
  for (auto it = extra.begin(); it != extra.end(); ++it) r[it.key()] = it.value();
  return Dump(r);
}

std::function<void(uint64_t, uint64_t)> ShowProgress(Progress* bar, std::string_view what) {
  return [bar, what = std::string(what)](uint64_t done, uint64_t total) {
    bar->Show(fmt::format("{}: {}/{} samples", what, done, total));
  };
}

void PrintMade(const ViewMade& m, const std::vector<ViewSource>& sources, bool json_out) {
  if (json_out) {
    json per = json::object();
    for (size_t i = 0; i < sources.size() && i < m.per_source.size(); ++i) {
      per[sources[i].name] = m.per_source[i];
    }
    std::puts(Dump({{"view", m.path}, {"samples", m.samples}, {"per_source", per}}).c_str());
    return;
  }
  std::string parts;
  for (size_t i = 0; i < sources.size() && i < m.per_source.size(); ++i) {
    parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", sources[i].name, m.per_source[i]);
  }
  std::printf("%s: %llu samples (%s)\n", m.path.c_str(),
              static_cast<unsigned long long>(m.samples), parts.c_str());
}

// ------------------------------------------------------------ dataset create

int RunCreate(ViewVerbs& v, const ReadOptions& ro, int argc, char** argv) {
  CreateDatasetOptions o;
  o.label_from_dir = v.label_from_dir;
  o.skip_unreadable = v.skip_unreadable;
  o.read = ro;
  o.sync = !v.no_sync;
  o.recipe_json = Recipe("dataset create", argc, argv,
                         {{"shards", v.shards}, {"label_from_dir", v.label_from_dir}});
  o.warn = [](const std::string& line) {
    std::fprintf(stderr, "shardset dataset create: warning: %s\n", line.c_str());
  };
  Progress bar(v.quiet);
  o.progress = [&](size_t i, size_t n, const std::string& path) {
    bar.Show(fmt::format("adopting {}/{}: {}", i + 1, n, path));
  };
  auto m = CreateDataset(v.name, v.shards, o);
  bar.Done();
  if (!m.ok()) return Fail(m.status());
  std::map<std::string, size_t> formats;
  for (const ManifestShard& s : m->shards) ++formats[std::string(FormatName(s.format))];
  std::string made;
  for (const auto& [f, n] : formats) made += fmt::format("{}{} {}", made.empty() ? "" : ", ", n, f);
  std::printf("%s: dataset of %llu samples in %zu shards (%s), adopted in place\n",
              v.name.c_str(), static_cast<unsigned long long>(m->num_samples), m->shards.size(),
              made.c_str());
  return kExitOk;
}

// ------------------------------------------------------------ dataset merge

int RunMerge(ViewVerbs& v, const ReadOptions& ro) {
  auto m = MergeParts(v.name, !v.no_sync, ro.remote);
  if (!m.ok()) return Fail(m.status());
  std::printf("%s: dataset of %llu samples in %zu shards, merged from its parts\n",
              v.name.c_str(), static_cast<unsigned long long>(m->num_samples),
              m->shards.size());
  return kExitOk;
}

// ------------------------------------------------------------ split

int RunSplit(ViewVerbs& v, const ReadOptions& ro, int argc, char** argv) {
  SplitOptions o;
  if (v.ratios.empty() == v.by_prefix.empty()) {
    return Fail(Status::InvalidArgument(
        "give --ratios (e.g. train=0.8,val=0.1,test=0.1) or --by-prefix (e.g. "
        "training=train,testing=test), not both"));
  }
  if (!v.ratios.empty()) {
    auto parts = ParseSplitRatios(v.ratios);
    if (!parts.ok()) return Fail(parts.status().WithPrefix("--ratios"));
    o.parts = std::move(*parts);
  } else {
    o.by_prefix = true;
    auto parts = ParseSplitPrefixes(v.by_prefix);
    if (!parts.ok()) return Fail(parts.status().WithPrefix("--by-prefix"));
    o.parts = std::move(*parts);
  }
  o.seed = v.seed;
  o.stratify = v.stratify;
  o.label_field = v.label_field;
  o.sync = !v.no_sync;
  o.recipe_json = Recipe("split", argc, argv, {{"seed", v.seed}});
  auto src = View::Open(v.src, ro);
  if (!src.ok()) return Fail(src.status());
  Progress bar(v.quiet || v.json_out);
  o.progress = ShowProgress(&bar, o.stratify ? "reading labels" : "splitting");
  auto r = Split(**src, v.out, o);
  bar.Done();
  if (!r.ok()) return Fail(r.status());
  std::vector<ViewSource> sources;
  for (size_t i = 0; i < (*src)->num_sources(); ++i) sources.push_back((*src)->source(i));
  for (const ViewMade& m : r->views) PrintMade(m, sources, v.json_out);
  if (r->left_out > 0 && !v.json_out) {
    std::printf("%llu samples are in no part (%s)\n",
                static_cast<unsigned long long>(r->left_out),
                o.by_prefix ? "their keys are under none of the prefixes"
                            : "the ratios add up to less than 1");
  }
  return kExitOk;
}

// ------------------------------------------------------------ select

int RunSelect(ViewVerbs& v, const ReadOptions& ro, int argc, char** argv) {
  SelectOptions o;
  o.labels = SplitList(v.labels, ',');
  o.keys_file = v.keys;
  o.glob = v.glob;
  o.label_field = v.label_field;
  o.sync = !v.no_sync;
  if (o.labels.empty() && o.keys_file.empty() && o.glob.empty()) {
    return Fail(Status::InvalidArgument("say what to select: --label, --keys or --glob"));
  }
  o.recipe_json = Recipe("select", argc, argv);
  auto src = View::Open(v.src, ro);
  if (!src.ok()) return Fail(src.status());
  Progress bar(v.quiet || v.json_out);
  o.progress = ShowProgress(&bar, "selecting");
  auto r = Select(**src, v.out, o);
  bar.Done();
  if (!r.ok()) return Fail(r.status());
  std::vector<ViewSource> sources;
  for (size_t i = 0; i < (*src)->num_sources(); ++i) sources.push_back((*src)->source(i));
  PrintMade(*r, sources, v.json_out);
  return kExitOk;
}

// ------------------------------------------------------------ mix

int RunMix(ViewVerbs& v, const ReadOptions& ro, int argc, char** argv) {
  MixOptions o;
  o.seed = v.seed;
  o.replace = v.replace;
  o.size = v.size;
  o.sync = !v.no_sync;
  o.recipe_json = Recipe("mix", argc, argv,
                         {{"seed", v.seed}, {"replace", v.replace}, {"size", v.size}});
  std::vector<std::unique_ptr<View>> views;
  for (const std::string& spec : v.parts) {
    std::string path;
    auto part = ParseMixPart(spec, &path);
    if (!part.ok()) return Fail(part.status());
    auto src = View::Open(path, ro);
    if (!src.ok()) {
      return Fail(src.status().WithPrefix(fmt::format("mix part '{}' ({})", part->name, path)));
    }
    part->source = src->get();
    views.push_back(std::move(*src));
    o.parts.push_back(std::move(*part));
  }
  Progress bar(v.quiet || v.json_out);
  o.progress = ShowProgress(&bar, "mixing");
  std::vector<ViewMade> made;
  if (!v.sweep.empty()) {
    auto sweep = ParseMixSweep(v.sweep);
    if (!sweep.ok()) return Fail(sweep.status());
    auto r = MixSweep(o, sweep->part, sweep->start, sweep->stop, sweep->step, v.out);
    bar.Done();
    if (!r.ok()) return Fail(r.status());
    made = std::move(*r);
  } else {
    auto r = Mix(o, v.out);
    bar.Done();
    if (!r.ok()) return Fail(r.status());
    made.push_back(std::move(*r));
  }
  std::vector<ViewSource> sources;
  for (const MixPart& p : o.parts) {
    for (size_t i = 0; i < p.source->num_sources(); ++i) {
      ViewSource s = p.source->source(i);
      s.name = p.source->num_sources() == 1 ? p.name : p.name + "/" + s.name;
      sources.push_back(std::move(s));
    }
  }
  for (const ViewMade& m : made) PrintMade(m, sources, v.json_out);
  return kExitOk;
}

// ------------------------------------------------------------ link, list

int RunLink(ViewVerbs& v, const ReadOptions& ro) {
  LinkOptions o;
  auto mode = ParseLinkMode(v.mode);
  if (!mode.ok()) return Fail(mode.status());
  auto layout = ParseLinkLayout(v.layout);
  if (!layout.ok()) return Fail(layout.status());
  o.mode = *mode;
  o.layout = *layout;
  o.label_field = v.label_field;
  o.sync = !v.no_sync;
  auto src = View::Open(v.src, ro);
  if (!src.ok()) return Fail(src.status());
  Progress bar(v.quiet);
  const uint64_t n = (*src)->num_samples();
  o.progress = [&](uint64_t done) { bar.Show(fmt::format("linking: {}/{} samples", done, n)); };
  auto r = Link(**src, v.out, o);
  bar.Done();
  if (!r.ok()) return Fail(r.status());
  std::printf("%s: %llu files for %llu samples (%s, %s layout)%s\n", v.out.c_str(),
              static_cast<unsigned long long>(r->files),
              static_cast<unsigned long long>(r->samples), v.mode.c_str(), v.layout.c_str(),
              r->bytes_copied ? fmt::format(", {} copied", FormatBytes(r->bytes_copied)).c_str()
                              : "");
  return kExitOk;
}

int RunList(ViewVerbs& v, const ReadOptions& ro) {
  ListOptions o;
  o.field = v.field;
  o.sync = !v.no_sync;
  auto src = View::Open(v.src, ro);
  if (!src.ok()) return Fail(src.status());
  auto r = WriteList(**src, v.out, o);
  if (!r.ok()) return Fail(r.status());
  std::printf("%s: %llu paths\n", v.out.c_str(), static_cast<unsigned long long>(*r));
  return kExitOk;
}

constexpr const char* kSrc =
    "Dataset folder, view file, or shard/archive to draw from (a folder of loose files must "
    "first become a dataset: shardset dataset create)";

}  // namespace

ViewVerbs* AddViewVerbs(CLI::App* app, ReadArgs* read_args) {
  // One CLI parse per process: the verbs' arguments live as long as it.
  static ViewVerbs verbs;
  ViewVerbs* v = &verbs;

  v->dataset = app->add_subcommand("dataset", "Make datasets from data where it lies");
  v->dataset->require_subcommand(1);
  v->create = v->dataset->add_subcommand(
      "create",
      "Adopt shards, archives (tar, tar.gz, zip, tsv) and folders of loose files as one dataset, "
      "in place, without copying: archives missing a sidecar index get one, folders are indexed "
      "into NAME/");
  v->create->add_option("NAME", v->name, "Dataset folder to create (must not exist)")->required();
  v->create->add_option("--shards", v->shards,
                        "Shards, archives, dataset folders or folders of loose files, in order")
      ->required();
  v->create->add_flag("--label-from-dir", v->label_from_dir,
                      "Folders of loose files: a derived 'cls' field holds each file's parent "
                      "folder name");
  v->create->add_flag("--skip-unreadable", v->skip_unreadable,
                      "Folders of loose files: skip unreadable files with a warning");
  v->create->add_flag("--no-sync", v->no_sync, "Do not fsync what is written");
  v->create->add_flag("-q,--quiet", v->quiet, "No progress");
  AddReadFlags(v->create, read_args);
  v->create->footer(
      "Example: shardset dataset create fm --shards fashion-mnist/ --label-from-dir\n"
      "         shardset dataset create parts --shards a.tar b.tar c.zip d.tsv");

  v->merge = v->dataset->add_subcommand(
      "merge",
      "Join the parts OUT/part-I-of-N that `pack --part I/N -o OUT` wrote into the dataset OUT "
      "(nothing is copied)");
  v->merge->add_option("OUT", v->name,
                       "The folder (or s3:// folder) holding the part-I-of-N folders")
      ->required();
  v->merge->add_flag("--no-sync", v->no_sync, "Do not fsync the manifest");
  AddReadFlags(v->merge, read_args);
  v->merge->footer(
      "Example: for i in 0 1 2 3; do shardset pack fashion-mnist/training -o fm --part $i/4 "
      "--label-from-dir & done; wait\n"
      "         shardset dataset merge fm\n"
      "On N machines: shardset pack ... --part I/N -o s3://BUCKET/fm on each, then\n"
      "         shardset dataset merge s3://BUCKET/fm   (the manifest is uploaded last)");

  v->split = app->add_subcommand(
      "split", "Split a dataset or view into views (train, val, test) without copying");
  v->split->add_option("SRC", v->src, kSrc)->required();
  v->split->add_option("-o,--output", v->out, "Folder for the views (OUT/<part>.view)")
      ->required();
  v->split->add_option("--ratios", v->ratios,
                       "Parts and their shares, e.g. train=0.8,val=0.1,test=0.1 (or 0.8,0.1,0.1: "
                       "train, val, test); below 1 in total leaves the rest out");
  v->split->add_option("--by-prefix", v->by_prefix,
                       "Parts by key prefix, e.g. training=train,testing=test (whole path "
                       "components: 'train' does not match 'training/')");
  v->split->add_option("--seed", v->seed, "Seed of the random assignment")->capture_default_str();
  v->split->add_flag("--stratify", v->stratify,
                     "Keep every label's share in every part (within one sample of exact)");
  v->split->add_option("--label-field", v->label_field, "Field holding the label")
      ->capture_default_str();
  v->split->add_flag("--no-sync", v->no_sync, "Do not fsync the views");
  v->split->add_flag("-q,--quiet", v->quiet, "No progress");
  v->split->add_flag("--json", v->json_out, "One JSON object per view");
  AddReadFlags(v->split, read_args);
  v->split->footer(
      "Counts are exact: each part gets its share of the samples by largest remainder; with "
      "--stratify, each label's.\nExample: shardset split fm --ratios train=0.8,val=0.1,test=0.1 "
      "--stratify --seed 1 -o fm-splits");

  v->select = app->add_subcommand("select", "Select samples by label, key list or key pattern");
  v->select->add_option("SRC", v->src, kSrc)->required();
  v->select->add_option("-o,--output", v->out, "View file to write")->required();
  v->select->add_option("--label", v->labels, "Labels to keep, e.g. 3,5");
  v->select->add_option("--keys", v->keys,
                        "File of keys, one per line; the view follows its order");
  v->select->add_option("--glob", v->glob,
                        "Key pattern, e.g. 'training/*/1*' ('*' does not cross '/')");
  v->select->add_option("--label-field", v->label_field, "Field holding the label")
      ->capture_default_str();
  v->select->add_flag("--no-sync", v->no_sync, "Do not fsync the view");
  v->select->add_flag("-q,--quiet", v->quiet, "No progress");
  v->select->add_flag("--json", v->json_out, "Print the result as JSON");
  AddReadFlags(v->select, read_args);

  v->mix = app->add_subcommand("mix", "Mix fractions, counts or weights of several sources");
  v->mix->add_option("PART", v->parts,
                     "NAME=SRC (all of it), NAME=SRC:FRACTION (0.2 or 20%), NAME=SRC:COUNT "
                     "(500), NAME=SRC@WEIGHT (shares of --size)")
      ->required();
  v->mix->add_option("-o,--output", v->out, "View file to write (a folder with --sweep)")
      ->required();
  v->mix->add_option("--seed", v->seed, "Seed of the selection")->capture_default_str();
  v->mix->add_flag("--replace", v->replace,
                   "Allow more samples than a source has (each sample q times, then some once "
                   "more)");
  v->mix->add_option("--size", v->size, "Total samples shared by the @WEIGHT parts");
  v->mix->add_option("--sweep", v->sweep,
                     "NAME=START:STOP:STEP: one view per amount of part NAME (0:1:0.1 fractions; "
                     "0:1000:100 counts), nested, named after their mix");
  v->mix->add_flag("--no-sync", v->no_sync, "Do not fsync the views");
  v->mix->add_flag("-q,--quiet", v->quiet, "No progress");
  v->mix->add_flag("--json", v->json_out, "One JSON object per view");
  AddReadFlags(v->mix, read_args);
  v->mix->footer(
      "A fraction has a point or a percent sign (1.0 or 100% is all of it; 1 is one sample); "
      "counts round half up.\nExample: shardset mix camvid=camvid-ds synthia=synthia-ds:0.2 "
      "--seed 7 -o mix.view\n"
      "         shardset mix camvid=camvid-ds synthia=synthia-ds --sweep synthia=0:1:0.1 -o "
      "sweep/");

  v->link = app->add_subcommand(
      "link", "Make a folder tree of a view for tools that want files (symlinks, hardlinks or "
              "copies)");
  v->link->add_option("VIEW", v->src, "View file, dataset folder or shard")->required();
  v->link->add_option("-o,--output", v->out, "Folder to create (must not exist)")->required();
  v->link->add_option("--mode", v->mode,
                      "symlink or hardlink (folder sources only: no data copied), or copy")
      ->check(CLI::IsMember({"symlink", "hardlink", "copy"}))
      ->capture_default_str();
  v->link->add_option("--layout", v->layout,
                      "original (key.field), imagefolder (label/name.field) or yolo "
                      "(images/ + labels/)")
      ->check(CLI::IsMember({"original", "imagefolder", "yolo"}))
      ->capture_default_str();
  v->link->add_option("--label-field", v->label_field, "Field holding the label (imagefolder)")
      ->capture_default_str();
  v->link->add_flag("--no-sync", v->no_sync, "Do not fsync the tree");
  v->link->add_flag("-q,--quiet", v->quiet, "No progress");
  AddReadFlags(v->link, read_args);

  v->list = app->add_subcommand("list", "Write the path of each sample's file, one per line");
  v->list->add_option("VIEW", v->src, "View file or dataset of loose-file sources")->required();
  v->list->add_option("-o,--output", v->out, "List file to write")->required();
  v->list->add_option("--field", v->field,
                      "Field whose file is listed (default: the image field)");
  v->list->add_flag("--no-sync", v->no_sync, "Do not fsync the list");
  AddReadFlags(v->list, read_args);
  return v;
}

int RunViewVerb(ViewVerbs* v, CLI::App* sub, const ReadOptions& ro, int argc, char** argv) {
  if (sub == v->dataset) {
    if (v->merge->parsed()) {
      verb_name = "dataset merge";
      return RunMerge(*v, ro);
    }
    verb_name = "dataset create";
    return RunCreate(*v, ro, argc, argv);
  }
  if (sub == v->split) return RunSplit(*v, ro, argc, argv);
  if (sub == v->select) return RunSelect(*v, ro, argc, argv);
  if (sub == v->mix) return RunMix(*v, ro, argc, argv);
  if (sub == v->link) return RunLink(*v, ro);
  if (sub == v->list) return RunList(*v, ro);
  return -1;
}

}  // namespace shardset::cli
