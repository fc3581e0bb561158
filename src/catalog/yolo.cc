// YOLO label files in and out of a catalog directory (docs/catalog.md
// "YOLO"): DIR/labels/<name>.txt, one object per line, "class cx cy w h"
// (detection) or "class x1 y1 x2 y2 ..." (segmentation), coordinates
// normalised to [0, 1] by the image's width and height; class names in
// DIR/data.yaml (`names:`) or DIR/classes.txt.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/strings.h"
#include "catalog/annotation_util.h"
#include "catalog/yolo_names.h"
#include "shardset/annotation_io.h"

namespace shardset {
namespace {

using annotations::DirectoryReader;
using annotations::NameMatcher;

// Coordinates a little outside [0, 1] (rounding in the tool that wrote
// them) are clamped; further out they are an error.
constexpr double kSlack = 1e-3;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::vector<std::string_view> Tokens(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    size_t j = i;
    while (j < line.size() && !IsSpace(line[j])) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

// The instances of one label file; errors name "file:line".
Result<std::vector<Instance>> ParseLabels(std::string_view text, const std::string& path,
                                          const std::vector<std::string>& names, ImageSize size) {
  std::vector<Instance> out;
  size_t line_no = 0;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(at, end - at);
    at = end + 1;
    ++line_no;
    const std::vector<std::string_view> t = Tokens(line);
    if (t.empty()) continue;
    auto bad = [&](std::string_view what) {
      return Status::InvalidArgument(fmt::format("{}:{}: {}", path, line_no, what));
    };
    const std::string cls(t[0]);
    char* stop = nullptr;
    errno = 0;
    const unsigned long long c = std::strtoull(cls.c_str(), &stop, 10);
    if (cls.empty() || cls[0] == '-' || *stop != '\0' || errno != 0) {
      return bad(fmt::format("the class must be a whole number, not '{}'", EscapeForDisplay(cls)));
    }
    if (c >= names.size()) {
      return bad(fmt::format("class {} is not among the {} class names", c, names.size()));
    }
    const size_t n = t.size() - 1;
    if (n != 4 && (n < 6 || n % 2 != 0)) {
      return bad(fmt::format(
          "{} numbers after the class; YOLO takes 4 (cx cy w h) or an even number of 6 or more "
          "(a polygon x1 y1 x2 y2 ...)",
          n));
    }
    std::vector<double> v(n);
    for (size_t k = 0; k < n; ++k) {
      const std::string num(t[k + 1]);
      char* e = nullptr;
      const double d = std::strtod(num.c_str(), &e);
      if (num.empty() || *e != '\0' || !std::isfinite(d)) {
        return bad(fmt::format("'{}' is not a number", EscapeForDisplay(num)));
      }
      if (d < -kSlack || d > 1 + kSlack) {
        return bad(fmt::format("{} is outside [0, 1]; YOLO coordinates are normalised by the "
                               "image's size",
                               num));
      }
      v[k] = std::clamp(d, 0.0, 1.0);
    }
    Instance in;
    in.label = names[c];
    const double w = size.width, h = size.height;
    if (n == 4) {
      in.kind = Instance::Kind::kBox;
      in.geometry = {(v[0] - v[2] / 2) * w, (v[1] - v[3] / 2) * h, v[2] * w, v[3] * h};
    } else {
      in.kind = Instance::Kind::kPolygon;
      in.geometry.resize(n);
      for (size_t k = 0; k < n; ++k) in.geometry[k] = v[k] * (k % 2 == 0 ? w : h);
    }
    // Six decimals (what YOLO files hold) carry about a thousandth of a
    // pixel: rounding there gives back the pixels a box was drawn with.
    for (double& g : in.geometry) g = std::round(g * 1000) / 1000;
    out.push_back(std::move(in));
  }
  return out;
}

// Every *.txt under `root` (recursively, symlinked folders not followed),
// as paths relative to it, sorted.
Result<std::vector<std::string>> LabelFiles(const std::string& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> out;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) return Status::FromErrno(fmt::format("{}: cannot list it", root), ec.value());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return Status::FromErrno(fmt::format("{}: cannot list it", root), ec.value());
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    if (name.size() <= 4 || !name.ends_with(".txt") || name.starts_with(kTempPrefix)) continue;
    if (!it->is_regular_file(ec)) continue;
    out.push_back(p.lexically_relative(root).string());
  }
  if (ec) return Status::FromErrno(fmt::format("{}: cannot list it", root), ec.value());
  std::sort(out.begin(), out.end());
  return out;
}

Status MakeFolder(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0 || (errno == EEXIST && IsDirectory(path))) {
    return Status::OK();
  }
  return Status::FromErrno(fmt::format("{}: cannot make the folder", path), errno);
}

// "%.6f" without trailing zeros, as YOLO tools write them.
std::string Coord(double v) {
  std::string s = fmt::format("{:.6f}", v);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

Result<AnnotationImportResult> ImportYolo(Catalog& catalog, std::string_view dir,
                                          const std::string& yolo_dir,
                                          const AnnotationImportOptions& o) {
  SHARDSET_ASSIGN_OR_RETURN(std::vector<std::string> names, ReadYoloNames(yolo_dir));
  const std::string labels_dir = JoinPath(yolo_dir, "labels");
  if (!IsDirectory(labels_dir)) {
    return Status::NotFound(fmt::format(
        "{}: no such folder; a YOLO tree keeps its label files in labels/", labels_dir));
  }
  SHARDSET_ASSIGN_OR_RETURN(auto reader, DirectoryReader::Open(catalog, dir, o.read));
  SHARDSET_ASSIGN_OR_RETURN(std::vector<CatalogFile> files, catalog.Files(dir));
  SHARDSET_RETURN_IF_ERROR(reader->CheckCount(files.size()));
  SHARDSET_ASSIGN_OR_RETURN(std::vector<std::string> yolo_names, annotations::YoloNames(*reader));
  NameMatcher matcher;
  for (uint64_t pos = 0; pos < files.size(); ++pos) {
    SHARDSET_RETURN_IF_ERROR(reader->CheckFile(pos, files[pos]));
    if (!yolo_names[pos].empty()) matcher.AddKey(yolo_names[pos], pos);
  }
  for (uint64_t pos = 0; pos < files.size(); ++pos) matcher.AddKey(files[pos].key, pos);

  SHARDSET_ASSIGN_OR_RETURN(std::vector<std::string> label_files, LabelFiles(labels_dir));
  AnnotationImportResult result;
  std::vector<std::pair<std::string, uint64_t>> matched;  // label file, position
  for (const std::string& rel : label_files) {
    ++result.images;
    const std::string name = rel.substr(0, rel.size() - 4);
    NameMatcher::Match m = matcher.Find(name);
    if (m.pos) {
      ++result.matched;
      matched.emplace_back(rel, *m.pos);
      continue;
    }
    ++result.missing;
    if (result.missing_names.size() < annotations::kMissingShown) {
      result.missing_names.push_back("labels/" + rel + (m.ambiguous ? " (several keys end so)" : ""));
    }
  }
  if (result.missing > 0 && !o.skip_missing) {
    return Status::NotFound(fmt::format(
        "{}: {}; nothing imported. Name label files as shardset link --layout yolo names the "
        "images (or by key), or import the rest with --skip-missing",
        yolo_dir,
        annotations::MissingLine(result.missing, result.missing_names, "label files",
                                 reader->shown())));
  }
  std::vector<Instance> instances;
  Sample scratch;
  for (const auto& [rel, pos] : matched) {
    const std::string path = JoinPath(labels_dir, rel);
    Result<std::string> text = ReadFile(path, o.max_label_file_bytes);
    if (!text.ok()) {
      if (text.status().code() == Status::Code::kResourceExhausted) {
        return Status::ResourceExhausted(fmt::format(
            "{}: larger than the {} a YOLO label file may be", path,
            FormatBytes(o.max_label_file_bytes)));
      }
      return text.status();
    }
    if (text->find_first_not_of(" \t\r\n") == std::string::npos) continue;
    SHARDSET_ASSIGN_OR_RETURN(std::string field, reader->ImageField(pos));
    if (field.empty()) {
      return Status::InvalidArgument(fmt::format(
          "{}: {} has no image field (png, jpg, ...) whose size would turn YOLO's normalised "
          "coordinates into pixels",
          path, reader->Where(pos, files[pos].key)));
    }
    SHARDSET_ASSIGN_OR_RETURN(ImageSize size, reader->SizeOf(pos, field, &scratch));
    SHARDSET_ASSIGN_OR_RETURN(std::vector<Instance> list, ParseLabels(*text, path, names, size));
    for (Instance& in : list) {
      in.file = files[pos].id;
      instances.push_back(std::move(in));
    }
  }
  SHARDSET_RETURN_IF_ERROR(
      catalog.AddInstances(&instances, o.replace ? dir : std::string_view(), &result.removed));
  result.instances = instances.size();
  return result;
}

Result<AnnotationExportResult> ExportYolo(Catalog& catalog, std::string_view dir,
                                          const std::string& yolo_dir,
                                          const AnnotationExportOptions& o) {
  SHARDSET_ASSIGN_OR_RETURN(auto reader, DirectoryReader::Open(catalog, dir, o.read));
  SHARDSET_ASSIGN_OR_RETURN(std::vector<std::string> names, annotations::YoloNames(*reader));
  for (uint64_t pos = 0; pos < names.size(); ++pos) {
    if (names[pos].empty()) {
      SHARDSET_ASSIGN_OR_RETURN(std::string key, reader->view().Key(pos));
      return Status::InvalidArgument(fmt::format(
          "{} has no image field (png, jpg, jpeg, ...); YOLO labels need the image's size: put "
          "only samples with images in the directory",
          reader->Where(pos, key)));
    }
  }
  const std::string labels_dir = JoinPath(yolo_dir, "labels");
  SHARDSET_RETURN_IF_ERROR(MakeFolder(yolo_dir));
  SHARDSET_RETURN_IF_ERROR(MakeFolder(labels_dir));
  (void)RemoveStaleTempFilesOf(JoinPath(labels_dir, "labels"));
  (void)RemoveStaleTempFilesOf(JoinPath(yolo_dir, "labels"));
  annotations::FileBatch batch("labels", o.sync);
  AnnotationExportResult result;
  std::vector<std::string> labels;
  std::map<std::string, size_t> index;
  SHARDSET_RETURN_IF_ERROR(catalog.ReadSnapshot([&]() -> Status {
    SHARDSET_ASSIGN_OR_RETURN(labels, catalog.Labels(dir));
    for (size_t i = 0; i < labels.size(); ++i) index[labels[i]] = i;
    uint64_t pos = 0;
    Sample scratch;
    SHARDSET_RETURN_IF_ERROR(catalog.Scan(dir, [&](const CatalogFile& f,
                                                   std::vector<Instance>&& list) -> Status {
      SHARDSET_RETURN_IF_ERROR(reader->CheckFile(pos, f));
      std::string text;
      if (!list.empty()) {
        SHARDSET_ASSIGN_OR_RETURN(std::string field, reader->ImageField(pos));
        SHARDSET_ASSIGN_OR_RETURN(ImageSize size, reader->SizeOf(pos, field, &scratch));
        const double w = size.width, h = size.height;
        for (const Instance& in : list) {
          double x0, y0, x1, y1;
          if (in.kind == Instance::Kind::kMask) {
            ++result.skipped;  // YOLO detection has no masks
            continue;
          }
          if (in.kind == Instance::Kind::kBox) {
            x0 = in.geometry[0];
            y0 = in.geometry[1];
            x1 = x0 + in.geometry[2];
            y1 = y0 + in.geometry[3];
          } else {  // a polygon: its bounding box
            x0 = y0 = INFINITY;
            x1 = y1 = -INFINITY;
            for (size_t k = 0; k + 1 < in.geometry.size(); k += 2) {
              x0 = std::min(x0, in.geometry[k]);
              x1 = std::max(x1, in.geometry[k]);
              y0 = std::min(y0, in.geometry[k + 1]);
              y1 = std::max(y1, in.geometry[k + 1]);
            }
          }
          const double cx0 = std::clamp(x0, 0.0, w), cx1 = std::clamp(x1, 0.0, w);
          const double cy0 = std::clamp(y0, 0.0, h), cy1 = std::clamp(y1, 0.0, h);
          if (cx0 != x0 || cx1 != x1 || cy0 != y0 || cy1 != y1) ++result.clipped;
          auto cls = index.find(in.label);
          if (cls == index.end()) {  // cannot happen in one snapshot; kept safe
            cls = index.emplace(in.label, labels.size()).first;
            labels.push_back(in.label);
          }
          text += fmt::format("{} {} {} {} {}\n", cls->second, Coord((cx0 + cx1) / 2 / w),
                              Coord((cy0 + cy1) / 2 / h), Coord((cx1 - cx0) / w),
                              Coord((cy1 - cy0) / h));
          ++result.instances;
        }
      }
      SHARDSET_RETURN_IF_ERROR(batch.Add(JoinPath(labels_dir, names[pos] + ".txt"), text));
      ++result.images;
      ++pos;
      return Status::OK();
    }));
    return reader->CheckCount(pos);
  }));
  std::string yaml = fmt::format(
      "# Written by shardset annotate export {}: labels/ holds one file per image, named as\n"
      "# shardset link {} --layout yolo names the images in images/.\n"
      "path: {}\ntrain: images\nval: images\nnc: {}\nnames:\n",
      reader->shown(), reader->shown(), YamlQuote(std::filesystem::absolute(yolo_dir).string()),
      labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    yaml += fmt::format("  {}: {}\n", i, YamlQuote(labels[i]));
  }
  SHARDSET_RETURN_IF_ERROR(batch.Add(JoinPath(yolo_dir, "data.yaml"), yaml));
  SHARDSET_RETURN_IF_ERROR(batch.Commit());
  result.categories = labels.size();
  return result;
}

}  // namespace shardset
