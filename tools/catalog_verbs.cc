// dir and annotate: directories and annotations of a catalog (docs/catalog.md).
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/strings.h"
#include "cli.h"
#include "shardset/annotation_io.h"
#include "shardset/catalog.h"
#include "shardset/select.h"
#include "shardset/view.h"

namespace shardset::cli {

struct CatalogVerbs {
  CLI::App* dir = nullptr;
  CLI::App* create = nullptr;
  CLI::App* ls = nullptr;
  CLI::App* rm = nullptr;
  CLI::App* add = nullptr;
  CLI::App* mirror = nullptr;
  CLI::App* copy = nullptr;
  CLI::App* dir_export = nullptr;
  CLI::App* annotate = nullptr;
  CLI::App* import = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* set = nullptr;
  CLI::App* unset = nullptr;
  CLI::App* list = nullptr;

  std::string catalog, name, dst, from, key, label, box, polygon, mask, attrs = "{}";
  std::string labels, glob, keys_file, label_field = "cls";
  int64_t id = 0;
  bool no_annotations = false, json_out = false;
  // annotate import/export
  std::string coco, yolo;
  bool replace = false, skip_missing = false, no_sync = false;
  // dir export
  std::string out, format = "native", shard_size = "256MiB", field = "json";
  uint64_t shard_samples = 0;
  bool force = false, quiet = false;
};

namespace {

Result<std::unique_ptr<Catalog>> OpenCatalog(const CatalogVerbs& c, bool create = false) {
  return Catalog::Open(c.catalog, create);
}

Result<std::vector<double>> Numbers(std::string_view text, std::string_view flag) {
  std::vector<double> out;
  for (const std::string& part : SplitList(text, ',')) {
    char* end = nullptr;
    const double v = std::strtod(part.c_str(), &end);
    if (part.empty() || end == nullptr || *end != '\0') {
      return Status::InvalidArgument(fmt::format(
          "{} takes numbers separated by commas, not '{}'", flag, EscapeForDisplay(text)));
    }
    out.push_back(v);
  }
  return out;
}

// select's options from --label/--glob/--keys.
SelectOptions SelectFor(const CatalogVerbs& c) {
  SelectOptions o;
  if (!c.labels.empty()) o.labels = SplitList(c.labels, ',');
  o.glob = c.glob;
  o.keys_file = c.keys_file;
  o.label_field = c.label_field;
  return o;
}

// The files of `src` that --label/--glob/--keys keep (all without them).
Result<std::function<bool(const CatalogFile&)>> Filter(const CatalogVerbs& c, Catalog& cat) {
  if (c.labels.empty() && c.glob.empty() && c.keys_file.empty()) {
    return std::function<bool(const CatalogFile&)>();
  }
  SHARDSET_ASSIGN_OR_RETURN(auto view, View::Open(c.catalog + "#" + c.name));
  SHARDSET_ASSIGN_OR_RETURN(std::vector<uint64_t> kept, SelectPositions(*view, SelectFor(c)));
  SHARDSET_ASSIGN_OR_RETURN(std::vector<CatalogFile> files, cat.Files(c.name));
  auto ids = std::make_shared<std::unordered_set<int64_t>>();
  for (uint64_t pos : kept) ids->insert(files[pos].id);
  return std::function<bool(const CatalogFile&)>(
      [ids](const CatalogFile& f) { return ids->count(f.id) > 0; });
}

int RunDirExport(const CatalogVerbs& c, Catalog& k, const ReadOptions& ro) {
  DirExportOptions o;
  auto format = ParseFormat(c.format);
  if (!format.ok()) return Fail(format.status());
  o.format = *format;
  auto size = ParseSize(c.shard_size);
  if (!size.ok()) return Fail(size.status().WithPrefix("--shard-size"));
  o.shard_size = *size;
  o.shard_samples = c.shard_samples;
  o.sync = !c.no_sync;
  o.force = c.force;
  o.field = c.field;
  o.read = ro;
  Progress bar(c.quiet);
  o.progress = [&](uint64_t done, uint64_t total) {
    if (done % 1024 == 0 || done == total) {
      bar.Show(fmt::format("exporting: {} of {} samples", done, total));
    }
  };
  auto r = ExportDirectory(k, c.name, c.out, o);
  bar.Done();
  if (!r.ok()) return Fail(r.status());
  if (c.json_out) {
    std::puts(Dump(json{{"out", c.out}, {"samples", r->samples}, {"shards", r->shards},
                        {"bytes", r->bytes}, {"instances", r->instances},
                        {"resumed_samples", r->resumed_samples},
                        {"already_complete", r->already_complete}})
                  .c_str());
  } else if (r->already_complete) {
    std::printf("%s: already holds this export (%llu samples); nothing to do\n", c.out.c_str(),
                static_cast<unsigned long long>(r->samples));
  } else {
    std::printf("%s: %llu samples of %s#%s in %llu %s shards, %llu instances in field '%s'%s\n",
                c.out.c_str(), static_cast<unsigned long long>(r->samples), c.catalog.c_str(),
                c.name.c_str(), static_cast<unsigned long long>(r->shards), c.format.c_str(),
                static_cast<unsigned long long>(r->instances), c.field.c_str(),
                r->resumed_samples
                    ? fmt::format(" (resumed after {} samples)", r->resumed_samples).c_str()
                    : "");
  }
  return kExitOk;
}

// annotate import/export: exactly one of --coco FILE and --yolo DIR.
Status OneFormat(const CatalogVerbs& c) {
  if (c.coco.empty() == c.yolo.empty()) {
    return Status::InvalidArgument("give exactly one of --coco FILE and --yolo DIR");
  }
  return Status::OK();
}

int RunImport(const CatalogVerbs& c, Catalog& k, const ReadOptions& ro) {
  if (Status s = OneFormat(c); !s.ok()) return Fail(s);
  AnnotationImportOptions o;
  o.replace = c.replace;
  o.skip_missing = c.skip_missing;
  o.read = ro;
  auto r = c.coco.empty() ? ImportYolo(k, c.name, c.yolo, o) : ImportCoco(k, c.name, c.coco, o);
  if (!r.ok()) return Fail(r.status());
  const char* what = c.coco.empty() ? "label files" : "images";
  if (c.json_out) {
    std::puts(Dump(json{{"images", r->images}, {"matched", r->matched},
                        {"instances", r->instances}, {"removed", r->removed},
                        {"missing", r->missing}, {"missing_names", r->missing_names}})
                  .c_str());
    return kExitOk;
  }
  std::printf("%s#%s: %llu instances imported from %s (%llu of %llu %s matched%s)\n",
              c.catalog.c_str(), c.name.c_str(), static_cast<unsigned long long>(r->instances),
              (c.coco.empty() ? c.yolo : c.coco).c_str(),
              static_cast<unsigned long long>(r->matched),
              static_cast<unsigned long long>(r->images), what,
              c.replace ? fmt::format("; {} instances removed first", r->removed).c_str() : "");
  if (r->missing > 0) {
    std::string names;
    for (const std::string& n : r->missing_names) {
      names += (names.empty() ? "" : ", ") + EscapeForDisplay(n);
    }
    if (r->missing > r->missing_names.size()) names += ", ...";
    std::fprintf(stderr, "shardset annotate import: %llu %s match no file of %s#%s, skipped: %s\n",
                 static_cast<unsigned long long>(r->missing), what, c.catalog.c_str(),
                 c.name.c_str(), names.c_str());
  }
  return kExitOk;
}

int RunExport(const CatalogVerbs& c, Catalog& k, const ReadOptions& ro) {
  if (Status s = OneFormat(c); !s.ok()) return Fail(s);
  AnnotationExportOptions o;
  o.sync = !c.no_sync;
  o.read = ro;
  auto r = c.coco.empty() ? ExportYolo(k, c.name, c.yolo, o) : ExportCoco(k, c.name, c.coco, o);
  if (!r.ok()) return Fail(r.status());
  if (c.json_out) {
    std::puts(Dump(json{{"images", r->images}, {"instances", r->instances},
                        {"categories", r->categories}, {"skipped", r->skipped},
                        {"clipped", r->clipped}})
                  .c_str());
    return kExitOk;
  }
  std::printf("%s: %llu images, %llu instances, %llu classes from %s#%s\n",
              (c.coco.empty() ? c.yolo : c.coco).c_str(),
              static_cast<unsigned long long>(r->images),
              static_cast<unsigned long long>(r->instances),
              static_cast<unsigned long long>(r->categories), c.catalog.c_str(), c.name.c_str());
  if (r->skipped > 0) {
    std::fprintf(stderr,
                 "shardset annotate export: %llu mask instances left out: %s\n",
                 static_cast<unsigned long long>(r->skipped),
                 c.coco.empty() ? "YOLO detection labels hold boxes only"
                                : "their masks are not COCO RLE (a field name or a path)");
  }
  if (r->clipped > 0) {
    std::fprintf(stderr, "shardset annotate export: %llu boxes reach outside their image and "
                 "were clipped to it\n",
                 static_cast<unsigned long long>(r->clipped));
  }
  return kExitOk;
}

int RunDir(CatalogVerbs& c, CLI::App* sub, const ReadOptions& ro) {
  if (sub == c.create) {
    auto cat = OpenCatalog(c, /*create=*/true);
    if (!cat.ok()) return Fail(cat.status());
    if (Status s = (*cat)->CreateDirectory(c.name); !s.ok()) return Fail(s);
    std::printf("%s#%s: created\n", c.catalog.c_str(), c.name.c_str());
    return kExitOk;
  }
  auto cat = OpenCatalog(c);
  if (!cat.ok()) return Fail(cat.status());
  Catalog& k = **cat;
  if (sub == c.rm) {
    if (Status s = k.RemoveDirectory(c.name); !s.ok()) return Fail(s);
    std::printf("%s#%s: removed (its files keep their annotations)\n", c.catalog.c_str(),
                c.name.c_str());
    return kExitOk;
  }
  if (sub == c.ls) {
    if (c.name.empty()) {
      auto dirs = k.Directories();
      if (!dirs.ok()) return Fail(dirs.status());
      json all = json::array();
      for (const DirectoryInfo& d : *dirs) {
        if (c.json_out) {
          all.push_back({{"directory", d.name}, {"files", d.files}, {"instances", d.instances}});
        } else {
          std::printf("%-24s %10llu files %10llu instances\n", d.name.c_str(),
                      static_cast<unsigned long long>(d.files),
                      static_cast<unsigned long long>(d.instances));
        }
      }
      if (c.json_out) std::puts(Dump(all).c_str());
      return kExitOk;
    }
    auto files = k.Files(c.name);
    if (!files.ok()) return Fail(files.status());
    for (const CatalogFile& f : *files) {
      auto inst = k.Instances(f.id);
      if (!inst.ok()) return Fail(inst.status());
      const std::string& source = k.sources()[f.source].name;
      if (c.json_out) {
        json j = {{"file", f.id}, {"source", source}, {"instances", inst->size()}};
        PutKey(&j, f.key);
        if (f.copied_from) j["copied_from"] = f.copied_from;
        std::puts(Dump(j).c_str());
      } else {
        std::printf("%-10lld %-16s %-40s %zu instances%s\n", static_cast<long long>(f.id),
                    source.c_str(), EscapeForDisplay(f.key).c_str(), inst->size(),
                    f.copied_from ? fmt::format(" (copy of {})", f.copied_from).c_str() : "");
      }
    }
    return kExitOk;
  }
  if (sub == c.add) {
    auto view = View::Open(c.from, ro);
    if (!view.ok()) return Fail(view.status());
    std::vector<uint64_t> kept;
    const bool filtered = !c.labels.empty() || !c.glob.empty() || !c.keys_file.empty();
    if (filtered) {
      auto positions = SelectPositions(**view, SelectFor(c));
      if (!positions.ok()) return Fail(positions.status());
      kept = std::move(*positions);
    }
    auto n = k.Add(c.name, **view, filtered ? &kept : nullptr);
    if (!n.ok()) return Fail(n.status());
    std::printf("%s#%s: %llu samples added from %s\n", c.catalog.c_str(), c.name.c_str(),
                static_cast<unsigned long long>(*n), c.from.c_str());
    return kExitOk;
  }
  if (sub == c.dir_export) return RunDirExport(c, k, ro);
  // mirror, copy: DST is made when missing.
  auto keep = Filter(c, k);
  if (!keep.ok()) return Fail(keep.status());
  if (Status s = k.CreateDirectory(c.dst); !s.ok() && s.code() != Status::Code::kAlreadyExists) {
    return Fail(s);
  }
  const bool mirror = sub == c.mirror;
  auto n = mirror ? k.Mirror(c.name, c.dst, *keep) : k.Copy(c.name, c.dst, !c.no_annotations, *keep);
  if (!n.ok()) return Fail(n.status());
  std::printf("%s#%s: %llu files %s from %s%s\n", c.catalog.c_str(), c.dst.c_str(),
              static_cast<unsigned long long>(*n), mirror ? "mirrored" : "copied", c.name.c_str(),
              mirror ? " (same files, shared annotations)"
                     : (c.no_annotations ? " (new files, no annotations)"
                                         : " (new files, annotations copied)"));
  return kExitOk;
}

int RunAnnotate(CatalogVerbs& c, CLI::App* sub, const ReadOptions& ro) {
  auto cat = OpenCatalog(c);
  if (!cat.ok()) return Fail(cat.status());
  Catalog& k = **cat;
  if (sub == c.import) return RunImport(c, k, ro);
  if (sub == c.export_) return RunExport(c, k, ro);
  if (sub == c.unset) {
    if (Status s = k.RemoveInstance(c.id); !s.ok()) return Fail(s);
    std::printf("instance %lld removed\n", static_cast<long long>(c.id));
    return kExitOk;
  }
  auto file = k.FindFile(c.name, c.key);
  if (sub == c.list) {
    std::vector<CatalogFile> files;
    if (!c.key.empty()) {
      if (!file.ok()) return Fail(file.status());
      files.push_back(*file);
    } else {
      auto all = k.Files(c.name);
      if (!all.ok()) return Fail(all.status());
      files = std::move(*all);
    }
    for (const CatalogFile& f : files) {
      auto inst = k.Instances(f.id);
      if (!inst.ok()) return Fail(inst.status());
      for (const Instance& in : *inst) {
        if (c.json_out) {
          json j = json::parse(InstanceJson(in));
          PutKey(&j, f.key);
          j["file"] = f.id;
          std::puts(Dump(j).c_str());
        } else {
          std::printf("%-8lld %-32s %-12s %-8s %s\n", static_cast<long long>(in.id),
                      EscapeForDisplay(f.key).c_str(), in.label.c_str(),
                      std::string(InstanceKindName(in.kind)).c_str(),
                      in.kind == Instance::Kind::kMask
                          ? in.mask.c_str()
                          : fmt::format("{}", fmt::join(in.geometry, ",")).c_str());
        }
      }
    }
    return kExitOk;
  }
  // set
  if (!file.ok()) return Fail(file.status());
  Instance in;
  in.id = c.id;
  in.label = c.label;
  in.attributes = c.attrs;
  const int shapes = !c.box.empty() + !c.polygon.empty() + !c.mask.empty();
  if (shapes != 1) {
    return Fail(Status::InvalidArgument("give exactly one of --box, --polygon or --mask"));
  }
  if (!c.box.empty()) {
    auto g = Numbers(c.box, "--box");
    if (!g.ok()) return Fail(g.status());
    in.geometry = std::move(*g);
  } else if (!c.polygon.empty()) {
    in.kind = Instance::Kind::kPolygon;
    auto g = Numbers(c.polygon, "--polygon");
    if (!g.ok()) return Fail(g.status());
    in.geometry = std::move(*g);
  } else {
    in.kind = Instance::Kind::kMask;
    in.mask = c.mask;
  }
  if (c.id != 0) {
    if (Status s = k.UpdateInstance(in); !s.ok()) return Fail(s);
    std::printf("instance %lld updated\n", static_cast<long long>(c.id));
    return kExitOk;
  }
  auto id = k.AddInstance(file->id, in);
  if (!id.ok()) return Fail(id.status());
  std::printf("instance %lld added to %s (file %lld)\n", static_cast<long long>(*id),
              EscapeForDisplay(c.key).c_str(), static_cast<long long>(file->id));
  return kExitOk;
}

void AddCatalogFlag(CLI::App* app, CatalogVerbs* c) {
  app->add_option("-c,--catalog", c->catalog, "The catalog database file (e.g. animals.catalog)")
      ->required();
}

void AddFilterFlags(CLI::App* app, CatalogVerbs* c) {
  app->add_option("--label", c->labels, "Only samples with one of these labels (comma-separated)");
  app->add_option("--label-field", c->label_field, "Field holding the label")
      ->capture_default_str();
  app->add_option("--glob", c->glob, "Only samples whose key matches (fnmatch; '*' stops at '/')");
  app->add_option("--keys", c->keys_file, "Only the samples whose keys this file lists");
}

}  // namespace

CatalogVerbs* AddCatalogVerbs(CLI::App* app, ReadArgs* read_args) {
  auto* c = new CatalogVerbs;
  c->dir = app->add_subcommand(
      "dir", "Directories of a catalog: named sets of samples sharing annotations (docs/catalog.md)");
  c->dir->require_subcommand(1);
  c->create = c->dir->add_subcommand("create", "Make a directory (and the catalog when missing)");
  c->create->add_option("NAME", c->name, "Directory name")->required();
  AddCatalogFlag(c->create, c);
  c->ls = c->dir->add_subcommand("ls", "List the directories, or the files of one");
  c->ls->add_option("NAME", c->name, "Directory whose files to list");
  c->ls->add_flag("--json", c->json_out, "One JSON object per line (an array for directories)");
  AddCatalogFlag(c->ls, c);
  c->rm = c->dir->add_subcommand("rm", "Remove a directory (its files and annotations stay)");
  c->rm->add_option("NAME", c->name, "Directory name")->required();
  AddCatalogFlag(c->rm, c);
  c->add = c->dir->add_subcommand(
      "add", "Add every sample of a TARGET (dataset, view, shard, archive, directory) to NAME");
  c->add->add_option("NAME", c->name, "Directory name")->required();
  c->add->add_option("--from", c->from, "The TARGET whose samples to add")->required();
  AddCatalogFlag(c->add, c);
  AddFilterFlags(c->add, c);
  AddReadFlags(c->add, read_args);
  c->mirror = c->dir->add_subcommand(
      "mirror", "Put files of SRC into DST too: the same files, so the same annotations");
  c->mirror->add_option("SRC", c->name, "Directory to mirror from")->required();
  c->mirror->add_option("DST", c->dst, "Directory to mirror into (made when missing)")->required();
  AddCatalogFlag(c->mirror, c);
  AddFilterFlags(c->mirror, c);
  c->copy = c->dir->add_subcommand(
      "copy", "Copy files of SRC into DST as new files over the same bytes (own annotations)");
  c->copy->add_option("SRC", c->name, "Directory to copy from")->required();
  c->copy->add_option("DST", c->dst, "Directory to copy into (made when missing)")->required();
  c->copy->add_flag("--no-annotations", c->no_annotations, "Do not copy the instances");
  AddCatalogFlag(c->copy, c);
  AddFilterFlags(c->copy, c);
  c->dir_export = c->dir->add_subcommand(
      "export", "Write a directory's samples as new shards, each with its annotations in a "
                "'json' field ({\"instances\": [...]})");
  c->dir_export->add_option("NAME", c->name, "Directory to export")->required();
  AddCatalogFlag(c->dir_export, c);
  c->dir_export->add_option("-o,--out", c->out, "Output dataset folder")->required();
  c->dir_export->add_option("--format", c->format, "native, tar, tar.gz, zip or tsv")
      ->capture_default_str();
  c->dir_export->add_option("--shard-size", c->shard_size, "Seal a shard before it passes this size")
      ->capture_default_str();
  c->dir_export->add_option("--shard-samples", c->shard_samples,
                            "Also seal after this many samples (0: no limit)");
  c->dir_export->add_option("--field", c->field, "The field holding the annotations")
      ->capture_default_str();
  c->dir_export->add_flag("--force", c->force, "Replace an output made with other arguments");
  c->dir_export->add_flag("--no-sync", c->no_sync, "Do not fsync what is written");
  c->dir_export->add_flag("-q,--quiet", c->quiet, "No progress");
  c->dir_export->add_flag("--json", c->json_out, "Print the result as JSON");
  AddReadFlags(c->dir_export, read_args);
  c->dir_export->footer(
      "Every field of each sample is kept (the derived 'annotations' field a directory adds is "
      "not). Rerunning an interrupted export with the same arguments resumes after the last "
      "sealed shard.\n"
      "Example:\n"
      "  shardset dir export sandals -c fm.catalog -o sandals-annotated");
  c->dir->footer(
      "A directory is a TARGET for every read verb: CATALOG#NAME (e.g. shardset ls "
      "animals.catalog#dogs)");

  c->annotate = app->add_subcommand("annotate", "Instances (boxes, polygons, masks) of samples");
  c->annotate->require_subcommand(1);
  c->set = c->annotate->add_subcommand("set", "Add an instance to a sample (or replace one: --id)");
  c->set->add_option("NAME", c->name, "Directory holding the sample")->required();
  c->set->add_option("KEY", c->key, "The sample's key")->required();
  c->set->add_option("--label", c->label, "The instance's class")->required();
  c->set->add_option("--box", c->box, "X,Y,W,H in pixels from the top-left corner");
  c->set->add_option("--polygon", c->polygon, "X1,Y1,X2,Y2,... in pixels (3 points or more)");
  c->set->add_option("--mask", c->mask, "A reference to a mask (field name, path, or RLE JSON)");
  c->set->add_option("--attrs", c->attrs, "Free attributes, a JSON object")->capture_default_str();
  c->set->add_option("--id", c->id, "Replace this instance instead of adding one");
  AddCatalogFlag(c->set, c);
  c->unset = c->annotate->add_subcommand("rm", "Remove an instance");
  c->unset->add_option("ID", c->id, "Instance id (annotate ls shows them)")->required();
  AddCatalogFlag(c->unset, c);
  c->list = c->annotate->add_subcommand("ls", "List the instances of a directory or a sample");
  c->list->add_option("NAME", c->name, "Directory")->required();
  c->list->add_option("KEY", c->key, "Only this sample");
  c->list->add_flag("--json", c->json_out, "One JSON object per instance");
  AddCatalogFlag(c->list, c);

  c->import = c->annotate->add_subcommand(
      "import", "Add the instances of a COCO file or a YOLO folder to a directory's files");
  c->import->add_option("NAME", c->name, "Directory whose files the annotations are of")
      ->required();
  c->import->add_option("--coco", c->coco, "A COCO instances JSON file");
  c->import->add_option("--yolo", c->yolo,
                        "A YOLO folder: labels/**/*.txt, and data.yaml (names:) or classes.txt");
  c->import->add_flag("--replace", c->replace,
                      "Remove the directory's instances first (shared ones too: for every "
                      "directory mirroring its files)");
  c->import->add_flag("--skip-missing", c->skip_missing,
                      "Import the rest when images or label files match no file (else nothing "
                      "is imported)");
  c->import->add_flag("--json", c->json_out, "Print the result as JSON");
  AddCatalogFlag(c->import, c);
  AddReadFlags(c->import, read_args);
  c->import->footer(
      "COCO images are matched by file_name: KEY.FIELD (as export writes it) or KEY, else the "
      "last path component when one key alone ends so. YOLO label files by name: as "
      "'shardset link CATALOG#NAME --layout yolo' names the images, or the key, else the last "
      "component likewise. All or nothing: one transaction. Details: docs/catalog.md.\n"
      "Examples:\n"
      "  shardset annotate import sandals --coco sandals.json -c fm.catalog\n"
      "  shardset annotate import sandals --yolo sandals-yolo -c fm.catalog --replace");

  c->export_ = c->annotate->add_subcommand(
      "export", "Write a directory's instances as a COCO file or YOLO label files");
  c->export_->add_option("NAME", c->name, "Directory to export")->required();
  c->export_->add_option("--coco", c->coco,
                         "The COCO instances JSON file to write (replaced when it exists)");
  c->export_->add_option("--yolo", c->yolo,
                         "The YOLO folder to write labels/*.txt and data.yaml into (made when "
                         "missing; other files in it stay)");
  c->export_->add_flag("--no-sync", c->no_sync, "Do not fsync what is written");
  c->export_->add_flag("--json", c->json_out, "Print the result as JSON");
  AddCatalogFlag(c->export_, c);
  AddReadFlags(c->export_, read_args);
  c->export_->footer(
      "COCO: file_name KEY.FIELD (the first image field), width and height from the image's "
      "header, boxes, polygons and COCO-RLE masks. YOLO: one labels/NAME.txt per file, NAME as "
      "'shardset link CATALOG#NAME --layout yolo' names its image, 'class cx cy w h' lines "
      "(polygons as their bounding box; masks left out). Details: docs/catalog.md.\n"
      "Examples:\n"
      "  shardset annotate export sandals --coco sandals.json -c fm.catalog\n"
      "  shardset link fm.catalog#sandals -o sandals-yolo --layout yolo --mode copy\n"
      "  shardset annotate export sandals --yolo sandals-yolo -c fm.catalog");
  return c;
}

int RunCatalogVerb(CatalogVerbs* c, CLI::App* sub, const ReadOptions& ro) {
  if (sub == c->dir) {
    CLI::App* s = sub->get_subcommands().front();
    verb_name = "dir " + s->get_name();
    return RunDir(*c, s, ro);
  }
  if (sub == c->annotate) {
    CLI::App* s = sub->get_subcommands().front();
    verb_name = "annotate " + s->get_name();
    return RunAnnotate(*c, s, ro);
  }
  return -1;
}

}  // namespace shardset::cli
