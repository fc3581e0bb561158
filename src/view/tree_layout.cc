#include "view/tree_layout.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "base/hash.h"
#include "base/strings.h"
#include "formats/sample_key.h"

namespace shardset {
namespace {

constexpr std::string_view kImageFields[] = {"png", "jpg",  "jpeg", "bmp",
                                             "gif", "webp", "tif",  "tiff"};

// A single path component that stays inside the folder that holds it.
bool IsSafeComponent(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (char c : name) {
    if (c == '/' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

std::string Flat(std::string_view key) {
  std::string out(key);
  std::replace(out.begin(), out.end(), '/', '_');
  return out;
}

}  // namespace

bool IsImageField(std::string_view name) {
  for (std::string_view img : kImageFields) {
    if (name.size() != img.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) {
      char c = name[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      same = c == img[i];
    }
    if (same) return true;
  }
  return false;
}

bool TreeLayout::NameSet::Contains(uint64_t h) const {
  if (h == 0) h = 1;
  if (slots_.empty()) return false;
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    if (slots_[i] == h) return true;
    if (slots_[i] == 0) return false;
  }
}

bool TreeLayout::NameSet::Insert(uint64_t h) {
  if (h == 0) h = 1;  // 0 marks an empty slot
  if ((size_ + 1) * 2 > slots_.size()) Grow();
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    if (slots_[i] == h) return false;
    if (slots_[i] == 0) {
      slots_[i] = h;
      ++size_;
      return true;
    }
  }
}

void TreeLayout::NameSet::Grow() {
  std::vector<uint64_t> old = std::move(slots_);
  slots_.assign(old.empty() ? 1024 : old.size() * 2, 0);
  size_ = 0;
  for (uint64_t h : old) {
    if (h != 0) Insert(h);
  }
}

Result<TreeLayout> TreeLayout::Make(const View& view, LinkLayout layout, std::string label_field,
                                    std::string root) {
  if (view.num_sources() > 1) {
    // Source names become folders (original) or name prefixes: one
    // component each, checked before anything is made.
    for (size_t i = 0; i < view.num_sources(); ++i) {
      if (!IsSafeComponent(view.source(i).name)) {
        return Status::InvalidArgument(fmt::format(
            "{}: source {} is named '{}', which cannot be a folder or file name in the tree; "
            "remake the view with another name for it",
            view.target(), i, EscapeForDisplay(view.source(i).name)));
      }
    }
  }
  return TreeLayout(view, layout, std::move(label_field), std::move(root));
}

Status TreeLayout::Place(uint64_t pos, std::string_view key,
                         const std::vector<std::string_view>& fields, std::string_view label,
                         std::vector<File>* out) {
  out->clear();
  const std::string shown =
      fmt::format("{}: sample {} (key '{}')", view_->target(), pos, EscapeForDisplay(key));
  const std::string& source = view_->source(view_->entry(pos).source).name;
  // The stem every field of the sample shares, and where each field goes.
  std::string stem;
  switch (layout_) {
    case LinkLayout::kOriginal:
      stem = several_ ? source + "/" + std::string(key) : std::string(key);
      break;
    case LinkLayout::kImageFolder:
      if (!IsSafeComponent(label)) {
        return Status::InvalidArgument(fmt::format(
            "{} has label '{}' (field '{}'), which cannot be a class folder name (empty, '.', "
            "'..', or with '/' or control characters); fix the label, or choose another "
            "field with --label-field",
            shown, EscapeForDisplay(label), EscapeForDisplay(label_field_)));
      }
      stem = std::string(label) + "/" + (several_ ? source + "_" : "") + Flat(key);
      break;
    case LinkLayout::kYolo:
      stem = (several_ ? source + "_" : "") + Flat(key);
      break;
  }
  std::vector<std::pair<std::string_view, size_t>> planned;  // (folder prefix, field)
  bool has_image = false;
  for (size_t i = 0; i < fields.size(); ++i) {
    switch (layout_) {
      case LinkLayout::kOriginal:
        planned.emplace_back("", i);
        break;
      case LinkLayout::kImageFolder:
        if (fields[i] != label_field_) planned.emplace_back("", i);
        break;
      case LinkLayout::kYolo:
        if (IsImageField(fields[i])) {
          planned.emplace_back("images/", i);
          has_image = true;
        } else if (fields[i] == "txt") {
          planned.emplace_back("labels/", i);
        }
        break;
    }
  }
  if (layout_ == LinkLayout::kYolo && !has_image) {
    return Status::InvalidArgument(fmt::format(
        "{} has no image field (png, jpg, jpeg, bmp, gif, webp, tif, tiff) for the yolo "
        "layout's images/; select samples with images, or use --layout original",
        shown));
  }
  if (planned.empty()) {
    return Status::InvalidArgument(
        fmt::format("{} has no field with a file to put in the tree{}; select samples that have one",
                    shown, layout_ == LinkLayout::kImageFolder ? " besides its label" : ""));
  }
  // The first of stem, stem~2, stem~3, ... under which none of the
  // sample's files is taken: one key split into non-adjacent samples
  // ("x.png", "y.png", "x.txt" in a tar) keeps its names, while a sample
  // held twice gets "~2" on every file.
  std::vector<uint64_t> hashes(planned.size());
  for (uint64_t n = 1;; ++n) {
    const std::string name = n == 1 ? stem : fmt::format("{}~{}", stem, n);
    out->clear();
    bool free = true;
    for (size_t p = 0; p < planned.size() && free; ++p) {
      const auto& [dir, i] = planned[p];
      std::string rel = std::string(dir) + JoinKeyField(name, fields[i]);
      hashes[p] = Xxh3(rel);
      free = !names_.Contains(hashes[p]);
      out->push_back(File{std::move(rel), i});
    }
    if (free) break;
  }
  for (const File& f : *out) {
    if (!IsPlainRelativePath(f.rel)) {
      out->clear();
      return Status::InvalidArgument(fmt::format(
          "{} would be at '{}', outside {} (absolute, '..', or empty components); "
          "refusing, nothing was made. Repack or re-index with safe names",
          shown, EscapeForDisplay(f.rel), root_));
    }
  }
  for (uint64_t h : hashes) names_.Insert(h);
  return Status::OK();
}

}  // namespace shardset
