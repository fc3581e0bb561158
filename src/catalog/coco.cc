// COCO instances JSON in and out of a catalog directory (docs/catalog.md
// "COCO"). The format: images[{id, file_name, width, height}],
// annotations[{id, image_id, category_id, bbox [x, y, w, h], segmentation
// (a list of polygons, or RLE {counts, size [h, w]}), area, iscrowd}],
// categories[{id, name}].
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/json_depth.h"
#include "base/strings.h"
#include "catalog/annotation_util.h"
#include "catalog/coco_rle.h"
#include "formats/sample_key.h"
#include "shardset/annotation_io.h"

namespace shardset {
namespace {

using json = nlohmann::json;
using annotations::DirectoryReader;
using annotations::NameMatcher;

// Text that never throws on bytes that are not UTF-8 (a label typed on a
// command line): they become U+FFFD.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The keys of a COCO annotation that are not free attributes.
bool IsCocoKey(const std::string& k) {
  return k == "id" || k == "image_id" || k == "category_id" || k == "bbox" ||
         k == "segmentation" || k == "area" || k == "iscrowd" || k == "attributes";
}

// Parses and checks the COCO file; errors name the file, the element
// (images[3], annotations[12] with its id) and what is wrong.
class CocoReader {
 public:
  CocoReader(std::string path) : path_(std::move(path)) {}

  Status Load(uint64_t max_bytes) {
    Result<std::string> text = ReadFile(path_, max_bytes);
    if (!text.ok()) {
      if (text.status().code() == Status::Code::kResourceExhausted) {
        return Status::ResourceExhausted(fmt::format(
            "{}: larger than the {} a COCO import reads; split it", path_, FormatBytes(max_bytes)));
      }
      return text.status();
    }
    if (!JsonDepthWithin(*text)) {
      return Status::InvalidArgument(fmt::format(
          "{}: JSON nested deeper than {} levels; not a COCO file", path_, kMaxJsonDepth));
    }
    try {
      root_ = json::parse(*text);
    } catch (const json::exception& e) {
      // parse_error for bad syntax, out_of_range for numbers past a
      // double's range (1e400), which are no COCO file's either.
      return Status::InvalidArgument(
          fmt::format("{}: not valid JSON ({}); is it a COCO file?", path_,
                      EscapeForDisplay(e.what())));
    }
    if (!root_.is_object()) {
      return Status::InvalidArgument(
          fmt::format("{}: a COCO file is a JSON object with images, annotations and categories",
                      path_));
    }
    return Status::OK();
  }

  // root[name] as an array (missing: empty when `optional`).
  Result<const json*> Array(const char* name, bool optional) const {
    static const json kEmpty = json::array();
    auto it = root_.find(name);
    if (it == root_.end() && optional) return &kEmpty;
    if (it == root_.end() || !it->is_array()) {
      return Status::InvalidArgument(
          fmt::format("{}: '{}' must be a JSON array (COCO instances format)", path_, name));
    }
    return &*it;
  }

  Status Bad(const char* list, size_t i, const json& e, std::string_view what) const {
    std::string id;
    if (e.is_object()) {
      auto it = e.find("id");
      if (it != e.end() && it->is_number_integer()) id = fmt::format(" (id {})", Dump(*it));
    }
    return Status::InvalidArgument(fmt::format("{}: {}[{}]{}: {}", path_, list, i, id, what));
  }

  Result<int64_t> Id(const char* list, size_t i, const json& e, const char* field) const {
    if (!e.is_object()) return Bad(list, i, e, "must be a JSON object");
    auto it = e.find(field);
    if (it == e.end() || !it->is_number_integer() ||
        (it->is_number_unsigned() &&
         it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      return Bad(list, i, e, fmt::format("'{}' must be an integer", field));
    }
    return it->get<int64_t>();
  }

  // Finite numbers of array `v`.
  Result<std::vector<double>> Numbers(const char* list, size_t i, const json& e, const json& v,
                                      std::string_view what) const {
    if (!v.is_array()) return Bad(list, i, e, fmt::format("{} must be an array of numbers", what));
    std::vector<double> out;
    out.reserve(v.size());
    for (const json& x : v) {
      if (!x.is_number() || !std::isfinite(x.get<double>())) {
        return Bad(list, i, e, fmt::format("{} must be an array of finite numbers", what));
      }
      out.push_back(x.get<double>());
    }
    return out;
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  json root_;
};

// The annotation `a` (annotations[i]) as an instance of `label`.
Result<Instance> ToInstance(const CocoReader& r, size_t i, const json& a, std::string label) {
  Instance in;
  in.label = std::move(label);
  json attrs = json::object();
  auto seg = a.find("segmentation");
  const bool has_seg =
      seg != a.end() && !seg->is_null() && !(seg->is_array() && seg->empty());
  if (has_seg && seg->is_object()) {
    Result<CocoRle> rle = ParseCocoRle(*seg);
    if (!rle.ok()) return r.Bad("annotations", i, a, rle.status().message());
    in.kind = Instance::Kind::kMask;
    in.mask = Dump(rle->ToJson());
  } else if (has_seg) {
    if (!seg->is_array()) {
      return r.Bad("annotations", i, a,
                   "'segmentation' must be a list of polygons or an RLE object");
    }
    json extra = json::array();
    for (size_t k = 0; k < seg->size(); ++k) {
      SHARDSET_ASSIGN_OR_RETURN(std::vector<double> ring,
                                r.Numbers("annotations", i, a, (*seg)[k], "a polygon"));
      if (ring.size() < 6 || ring.size() % 2 != 0) {
        return r.Bad("annotations", i, a,
                     fmt::format("polygon {} has {} numbers; a polygon is x1, y1, x2, y2, ... "
                                 "(3 points or more)",
                                 k, ring.size()));
      }
      if (k == 0) {
        in.geometry = std::move(ring);
      } else {
        extra.push_back(std::move(ring));
      }
    }
    in.kind = Instance::Kind::kPolygon;
    if (!extra.empty()) attrs["extra_polygons"] = std::move(extra);
  } else {
    auto bbox = a.find("bbox");
    if (bbox == a.end()) {
      return r.Bad("annotations", i, a, "has neither 'bbox' nor 'segmentation'");
    }
    SHARDSET_ASSIGN_OR_RETURN(in.geometry, r.Numbers("annotations", i, a, *bbox, "'bbox'"));
    if (in.geometry.size() != 4 || in.geometry[2] < 0 || in.geometry[3] < 0) {
      return r.Bad("annotations", i, a,
                   "'bbox' must be [x, y, width, height] with width and height not negative");
    }
  }
  if (auto it = a.find("attributes"); it != a.end() && !it->is_null()) {
    if (!it->is_object()) return r.Bad("annotations", i, a, "'attributes' must be an object");
    for (auto& [k, v] : it->items()) attrs[k] = v;
  }
  if (auto it = a.find("iscrowd"); it != a.end() && !it->is_null()) {
    const bool one = (it->is_number_integer() && it->get<int64_t>() == 1) ||
                     (it->is_boolean() && it->get<bool>());
    const bool zero = (it->is_number_integer() && it->get<int64_t>() == 0) ||
                      (it->is_boolean() && !it->get<bool>());
    if (!one && !zero) return r.Bad("annotations", i, a, "'iscrowd' must be 0 or 1");
    if (one) attrs["iscrowd"] = 1;
  }
  for (auto& [k, v] : a.items()) {
    if (!IsCocoKey(k)) attrs[k] = v;
  }
  in.attributes = Dump(attrs);
  return in;
}

}  // namespace

Result<AnnotationImportResult> ImportCoco(Catalog& catalog, std::string_view dir,
                                          const std::string& coco_file,
                                          const AnnotationImportOptions& o) {
  const std::string shown = annotations::Shown(catalog, dir);
  CocoReader r(coco_file);
  SHARDSET_RETURN_IF_ERROR(r.Load(o.max_coco_bytes));
  SHARDSET_ASSIGN_OR_RETURN(const json* images, r.Array("images", false));
  SHARDSET_ASSIGN_OR_RETURN(const json* anns, r.Array("annotations", true));
  SHARDSET_ASSIGN_OR_RETURN(const json* cats, r.Array("categories", false));

  std::unordered_map<int64_t, std::string> category;
  for (size_t i = 0; i < cats->size(); ++i) {
    const json& c = (*cats)[i];
    SHARDSET_ASSIGN_OR_RETURN(int64_t id, r.Id("categories", i, c, "id"));
    auto name = c.find("name");
    if (name == c.end() || !name->is_string() || name->get<std::string>().empty()) {
      return r.Bad("categories", i, c, "'name' must be a non-empty string");
    }
    if (!category.emplace(id, name->get<std::string>()).second) {
      return r.Bad("categories", i, c, "a category id given twice");
    }
  }

  SHARDSET_ASSIGN_OR_RETURN(std::vector<CatalogFile> files, catalog.Files(dir));
  NameMatcher matcher;
  for (uint64_t pos = 0; pos < files.size(); ++pos) matcher.AddKey(files[pos].key, pos);

  AnnotationImportResult result;
  std::unordered_map<int64_t, int64_t> image_file;  // image id -> file id, or 0: unmatched
  for (size_t i = 0; i < images->size(); ++i) {
    const json& im = (*images)[i];
    SHARDSET_ASSIGN_OR_RETURN(int64_t id, r.Id("images", i, im, "id"));
    auto name = im.find("file_name");
    if (name == im.end() || !name->is_string()) {
      return r.Bad("images", i, im, "'file_name' must be a string");
    }
    const std::string file_name = name->get<std::string>();
    NameMatcher::Match m = matcher.Find(file_name);
    ++result.images;
    if (m.pos) {
      ++result.matched;
    } else {
      ++result.missing;
      if (result.missing_names.size() < annotations::kMissingShown) {
        result.missing_names.push_back(m.ambiguous ? file_name + " (several keys end so)"
                                                   : file_name);
      }
    }
    if (!image_file.emplace(id, m.pos ? files[*m.pos].id : 0).second) {
      return r.Bad("images", i, im, "an image id given twice");
    }
  }
  if (result.missing > 0 && !o.skip_missing) {
    return Status::NotFound(fmt::format(
        "{}: {}; nothing imported. Fix the file names (key.<field>, or the key), or import the "
        "rest with --skip-missing",
        coco_file,
        annotations::MissingLine(result.missing, result.missing_names, "images", shown)));
  }

  std::vector<Instance> instances;
  instances.reserve(anns->size());
  for (size_t i = 0; i < anns->size(); ++i) {
    const json& a = (*anns)[i];
    SHARDSET_ASSIGN_OR_RETURN(int64_t image, r.Id("annotations", i, a, "image_id"));
    SHARDSET_ASSIGN_OR_RETURN(int64_t cat, r.Id("annotations", i, a, "category_id"));
    auto file = image_file.find(image);
    if (file == image_file.end()) {
      return r.Bad("annotations", i, a, fmt::format("image_id {} is not in 'images'", image));
    }
    auto label = category.find(cat);
    if (label == category.end()) {
      return r.Bad("annotations", i, a,
                   fmt::format("category_id {} is not in 'categories'", cat));
    }
    SHARDSET_ASSIGN_OR_RETURN(Instance in, ToInstance(r, i, a, label->second));
    if (file->second == 0) continue;  // its image matched no file (skip_missing)
    in.file = file->second;
    instances.push_back(std::move(in));
  }
  SHARDSET_RETURN_IF_ERROR(
      catalog.AddInstances(&instances, o.replace ? dir : std::string_view(), &result.removed));
  result.instances = instances.size();
  return result;
}

namespace {

// Bounds of points x1, y1, x2, y2, ... as [x, y, w, h].
void Extend(const std::vector<double>& pts, double* b) {
  for (size_t k = 0; k + 1 < pts.size(); k += 2) {
    b[0] = std::min(b[0], pts[k]);
    b[1] = std::min(b[1], pts[k + 1]);
    b[2] = std::max(b[2], pts[k]);
    b[3] = std::max(b[3], pts[k + 1]);
  }
}

double ShoelaceArea(const std::vector<double>& pts) {
  double twice = 0;
  const size_t n = pts.size() / 2;
  for (size_t k = 0; k < n; ++k) {
    const size_t j = (k + 1) % n;
    twice += pts[2 * k] * pts[2 * j + 1] - pts[2 * j] * pts[2 * k + 1];
  }
  return std::fabs(twice) / 2;
}

}  // namespace

Result<AnnotationExportResult> ExportCoco(Catalog& catalog, std::string_view dir,
                                          const std::string& coco_file,
                                          const AnnotationExportOptions& o) {
  SHARDSET_ASSIGN_OR_RETURN(auto reader, DirectoryReader::Open(catalog, dir, o.read));
  (void)RemoveStaleTempFilesOf(coco_file);
  SHARDSET_ASSIGN_OR_RETURN(auto out, AtomicFile::Create(coco_file));
  AnnotationExportResult result;
  std::vector<std::string> labels;
  std::map<std::string, int64_t> category;
  Status s = catalog.ReadSnapshot([&]() -> Status {
    SHARDSET_ASSIGN_OR_RETURN(labels, catalog.Labels(dir));
    for (size_t i = 0; i < labels.size(); ++i) category[labels[i]] = static_cast<int64_t>(i + 1);
    SHARDSET_ASSIGN_OR_RETURN(std::vector<CatalogFile> files, catalog.Files(dir));
    SHARDSET_RETURN_IF_ERROR(reader->CheckCount(files.size()));
    json info = {{"description", fmt::format("shardset annotate export {}", reader->shown())},
                 {"version", "1.0"}};
    SHARDSET_RETURN_IF_ERROR(out->Append(fmt::format(
        "{{\"info\": {},\n\"licenses\": [],\n\"images\": [", Dump(info))));
    Sample scratch;
    for (uint64_t pos = 0; pos < files.size(); ++pos) {
      SHARDSET_RETURN_IF_ERROR(reader->CheckFile(pos, files[pos]));
      SHARDSET_ASSIGN_OR_RETURN(std::string field, reader->ImageField(pos));
      if (field.empty()) {
        return Status::InvalidArgument(fmt::format(
            "{} has no image field (png, jpg, jpeg, ...); a COCO image needs one: put only "
            "samples with images in the directory",
            reader->Where(pos, files[pos].key)));
      }
      SHARDSET_ASSIGN_OR_RETURN(ImageSize size, reader->SizeOf(pos, field, &scratch));
      json im = {{"id", pos + 1},
                 {"file_name", JoinKeyField(files[pos].key, field)},
                 {"width", size.width},
                 {"height", size.height}};
      SHARDSET_RETURN_IF_ERROR(out->Append((pos ? ",\n" : "\n") + Dump(im)));
      ++result.images;
    }
    SHARDSET_RETURN_IF_ERROR(out->Append("\n],\n\"annotations\": ["));
    uint64_t pos = 0;
    SHARDSET_RETURN_IF_ERROR(catalog.Scan(dir, [&](const CatalogFile& f,
                                                   std::vector<Instance>&& list) -> Status {
      const uint64_t image = ++pos;
      for (const Instance& in : list) {
        auto cat = category.find(in.label);
        if (cat == category.end()) {  // cannot happen in one snapshot; kept safe
          cat = category.emplace(in.label, static_cast<int64_t>(category.size() + 1)).first;
          labels.push_back(in.label);
        }
        json attrs = json::parse(in.attributes, nullptr, false);
        if (!attrs.is_object()) attrs = json::object();
        int iscrowd = 0;
        if (auto it = attrs.find("iscrowd"); it != attrs.end() &&
                                             (it->is_number_integer() || it->is_boolean())) {
          iscrowd = (it->is_boolean() ? it->get<bool>() : it->get<int64_t>() != 0) ? 1 : 0;
          attrs.erase(it);
        }
        json a = {{"id", in.id}, {"image_id", image}, {"category_id", cat->second}};
        double bounds[4] = {std::numeric_limits<double>::infinity(),
                            std::numeric_limits<double>::infinity(),
                            -std::numeric_limits<double>::infinity(),
                            -std::numeric_limits<double>::infinity()};
        switch (in.kind) {
          case Instance::Kind::kBox:
            a["bbox"] = in.geometry;
            a["area"] = in.geometry[2] * in.geometry[3];
            a["segmentation"] = json::array();
            break;
          case Instance::Kind::kPolygon: {
            json rings = json::array({in.geometry});
            double area = ShoelaceArea(in.geometry);
            Extend(in.geometry, bounds);
            if (auto it = attrs.find("extra_polygons"); it != attrs.end() && it->is_array()) {
              bool ok = true;
              std::vector<std::vector<double>> extra;
              for (const json& ring : *it) {
                std::vector<double> pts;
                if (!ring.is_array() || ring.size() < 6 || ring.size() % 2) ok = false;
                for (const json& v : ring.is_array() ? ring : json::array()) {
                  if (!v.is_number()) ok = false;
                  if (ok) pts.push_back(v.get<double>());
                }
                if (ok) extra.push_back(std::move(pts));
              }
              if (ok) {
                for (const auto& ring : extra) {
                  rings.push_back(ring);
                  area += ShoelaceArea(ring);
                  Extend(ring, bounds);
                }
                attrs.erase(it);
              }
            }
            a["bbox"] = {bounds[0], bounds[1], bounds[2] - bounds[0], bounds[3] - bounds[1]};
            a["area"] = area;
            a["segmentation"] = std::move(rings);
            break;
          }
          case Instance::Kind::kMask: {
            json m = json::parse(in.mask, nullptr, false);
            Result<CocoRle> rle = m.is_object() ? ParseCocoRle(m)
                                                : Result<CocoRle>(Status::InvalidArgument(""));
            if (!rle.ok()) {
              ++result.skipped;  // a field name or a path: not in COCO's terms
              continue;
            }
            a["bbox"] = rle->Bbox();
            a["area"] = rle->Area();
            a["segmentation"] = rle->ToJson();
            break;
          }
        }
        a["iscrowd"] = iscrowd;
        if (!attrs.empty()) a["attributes"] = std::move(attrs);
        SHARDSET_RETURN_IF_ERROR(out->Append((result.instances ? ",\n" : "\n") + Dump(a)));
        ++result.instances;
      }
      return Status::OK();
    }));
    return reader->CheckCount(pos);
  });
  SHARDSET_RETURN_IF_ERROR(s);
  json cats = json::array();
  for (size_t i = 0; i < labels.size(); ++i) {
    cats.push_back({{"id", i + 1}, {"name", labels[i]}, {"supercategory", ""}});
  }
  result.categories = labels.size();
  SHARDSET_RETURN_IF_ERROR(out->Append(fmt::format("\n],\n\"categories\": {}}}\n", Dump(cats))));
  SHARDSET_RETURN_IF_ERROR(out->Commit(o.sync, /*overwrite=*/true));
  return result;
}

}  // namespace shardset
