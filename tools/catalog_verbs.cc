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
  CLI::App* annotate = nullptr;
  CLI::App* set = nullptr;
  CLI::App* unset = nullptr;
  CLI::App* list = nullptr;

  std::string catalog, name, dst, from, key, label, box, polygon, mask, attrs = "{}";
  std::string labels, glob, keys_file, label_field = "cls";
  int64_t id = 0;
  bool no_annotations = false, json_out = false;
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

// The files of `src` that --label/--glob/--keys keep (all without them).
Result<std::function<bool(const CatalogFile&)>> Filter(const CatalogVerbs& c, Catalog& cat) {
  if (c.labels.empty() && c.glob.empty() && c.keys_file.empty()) {
    return std::function<bool(const CatalogFile&)>();
  }
  SHARDSET_ASSIGN_OR_RETURN(auto view, View::Open(c.catalog + "#" + c.name));
  SelectOptions o;
  if (!c.labels.empty()) o.labels = SplitList(c.labels, ',');
  o.glob = c.glob;
  o.keys_file = c.keys_file;
  o.label_field = c.label_field;
  SHARDSET_ASSIGN_OR_RETURN(std::vector<uint64_t> kept, SelectPositions(*view, o));
  SHARDSET_ASSIGN_OR_RETURN(std::vector<CatalogFile> files, cat.Files(c.name));
  auto ids = std::make_shared<std::unordered_set<int64_t>>();
  for (uint64_t pos : kept) ids->insert(files[pos].id);
  return std::function<bool(const CatalogFile&)>(
      [ids](const CatalogFile& f) { return ids->count(f.id) > 0; });
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
    auto n = k.Add(c.name, **view);
    if (!n.ok()) return Fail(n.status());
    std::printf("%s#%s: %llu samples added from %s\n", c.catalog.c_str(), c.name.c_str(),
                static_cast<unsigned long long>(*n), c.from.c_str());
    return kExitOk;
  }
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

int RunAnnotate(CatalogVerbs& c, CLI::App* sub) {
  auto cat = OpenCatalog(c);
  if (!cat.ok()) return Fail(cat.status());
  Catalog& k = **cat;
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
    return RunAnnotate(*c, s);
  }
  return -1;
}

}  // namespace shardset::cli
