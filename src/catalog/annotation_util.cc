#include "catalog/annotation_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/strings.h"
#include "shardset/link.h"
#include "view/tree_layout.h"

namespace shardset::annotations {

std::string Shown(const Catalog& catalog, std::string_view dir) {
  return fmt::format("{}#{}", catalog.path(), EscapeForDisplay(dir));
}

Result<std::unique_ptr<DirectoryReader>> DirectoryReader::Open(const Catalog& catalog,
                                                               std::string_view dir,
                                                               const ReadOptions& options) {
  auto r = std::make_unique<DirectoryReader>();
  r->shown_ = Shown(catalog, dir);
  SHARDSET_ASSIGN_OR_RETURN(
      r->view_, View::Open(fmt::format("{}#{}", catalog.path(), dir), options));
  return r;
}

std::string DirectoryReader::Where(uint64_t pos, std::string_view key) const {
  return fmt::format("{}: sample {} (key '{}')", shown_, pos, EscapeForDisplay(key));
}

namespace {

Status Changed(const std::string& shown) {
  return Status::IOError(fmt::format(
      "{}: files were added to or removed from the directory while it was being read; run "
      "the command again",
      shown));
}

}  // namespace

Status DirectoryReader::CheckFile(uint64_t pos, const CatalogFile& file) const {
  if (pos >= size()) return Changed(shown_);
  SHARDSET_ASSIGN_OR_RETURN(std::string key, view_->Key(pos));
  return key == file.key ? Status::OK() : Changed(shown_);
}

Status DirectoryReader::CheckCount(uint64_t listed) const {
  return listed == size() ? Status::OK() : Changed(shown_);
}

Status DirectoryReader::Read(uint64_t pos, Sample* out) const {
  const ViewEntry e = view_->entry(pos);
  Status s = view_->dataset(e.source).Read(e.ordinal, out);
  if (!s.ok()) return s.WithPrefix(shown_);
  return s;
}

Result<std::string> DirectoryReader::ImageField(uint64_t pos) const {
  SampleStat st;
  SHARDSET_RETURN_IF_ERROR(view_->Stat(pos, &st));
  for (const FieldStat& f : st.fields) {
    if (!(f.flags & kFieldDerived) && IsImageField(f.name)) return f.name;
  }
  return std::string();
}

Result<ImageSize> DirectoryReader::SizeOf(uint64_t pos, const std::string& field,
                                          Sample* scratch) const {
  SHARDSET_RETURN_IF_ERROR(Read(pos, scratch));
  const Field* f = scratch->Find(field);
  if (f == nullptr) {
    return Status::NotFound(
        fmt::format("{} has no field '{}'", Where(pos, scratch->key), EscapeForDisplay(field)));
  }
  Result<ImageSize> size = ReadImageSize(f->data);
  if (!size.ok()) {
    return size.status().WithPrefix(fmt::format("{}, field '{}'", Where(pos, scratch->key),
                                                EscapeForDisplay(field)));
  }
  return size;
}

Result<std::vector<std::string>> YoloNames(const DirectoryReader& reader) {
  SHARDSET_ASSIGN_OR_RETURN(TreeLayout layout,
                            TreeLayout::Make(reader.view(), LinkLayout::kYolo, "", "labels"));
  std::vector<std::string> names(reader.size());
  SampleStat st;
  std::vector<std::string_view> fields;
  std::vector<TreeLayout::File> files;
  for (uint64_t pos = 0; pos < reader.size(); ++pos) {
    SHARDSET_RETURN_IF_ERROR(reader.view().Stat(pos, &st));
    fields.clear();
    for (const FieldStat& f : st.fields) {
      if (!(f.flags & kFieldDerived) && IsImageField(f.name)) fields.push_back(f.name);
    }
    if (fields.empty()) continue;
    fields.push_back("txt");  // the label file every exported sample gets
    SHARDSET_RETURN_IF_ERROR(layout.Place(pos, st.key, fields, "", &files));
    for (const TreeLayout::File& f : files) {
      if (f.field + 1 == fields.size()) {  // labels/<name>.txt
        names[pos] = f.rel.substr(7, f.rel.size() - 7 - 4);
      }
    }
  }
  return names;
}

namespace {

std::string_view LastComponent(std::string_view s) {
  const size_t slash = s.rfind('/');
  return slash == std::string_view::npos ? s : s.substr(slash + 1);
}

// Without the extension of its last component ("a/b.png" -> "a/b").
std::string_view StripExtension(std::string_view s) {
  const size_t dot = s.rfind('.');
  const size_t slash = s.rfind('/');
  if (dot == std::string_view::npos || dot == 0 || (slash != std::string_view::npos && dot <= slash + 1)) {
    return s;
  }
  return s.substr(0, dot);
}

}  // namespace


void NameMatcher::AddKey(std::string_view key, uint64_t pos) {
  exact_.emplace(std::string(key), pos);
  auto [it, fresh] = base_.emplace(std::string(LastComponent(key)), static_cast<int64_t>(pos));
  if (!fresh && it->second != static_cast<int64_t>(pos)) it->second = -1;
}

NameMatcher::Match NameMatcher::Find(std::string_view name) const {
  Match m;
  while (name.substr(0, 2) == "./") name.remove_prefix(2);
  if (auto it = exact_.find(std::string(name)); it != exact_.end()) {
    m.pos = it->second;
    return m;
  }
  const std::string_view stem = StripExtension(name);
  if (auto it = exact_.find(std::string(stem)); it != exact_.end()) {
    m.pos = it->second;
    return m;
  }
  for (std::string_view base : {LastComponent(stem), LastComponent(name)}) {
    if (auto it = base_.find(std::string(base)); it != base_.end()) {
      if (it->second >= 0) {
        m.pos = static_cast<uint64_t>(it->second);
        return m;
      }
      m.ambiguous = true;
    }
  }
  return m;
}

std::string MissingLine(uint64_t count, const std::vector<std::string>& names,
                        std::string_view what, std::string_view shown) {
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + EscapeForDisplay(n);
  if (count > names.size()) list += ", ...";
  return fmt::format("{} {} match no file of {} ({})", count, what, shown, list);
}

FileBatch::~FileBatch() {
  for (const auto& [temp, final_path] : files_) ::unlink(temp.c_str());
}

Status FileBatch::Add(const std::string& final_path, std::string_view contents) {
  const std::string folder = DirName(final_path);
  const std::string temp = JoinPath(
      folder, fmt::format("{}{}.{}.{}", kTempPrefix, tag_, ::getpid(), counter_++));
  FdCloser fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) return Status::FromErrno(fmt::format("{}: cannot create", temp), errno);
  files_.emplace_back(temp, final_path);
  SHARDSET_RETURN_IF_ERROR(WriteAll(fd.get(), contents, temp));
  if (::close(fd.release()) != 0) return Status::FromErrno(temp, errno);
  if (folders_.empty() || folders_.back() != folder) folders_.push_back(folder);
  return Status::OK();
}

Status FileBatch::Commit() {
  if (files_.empty()) return Status::OK();
  if (sync_) {
    // One sync of the filesystem holding them makes every temporary file
    // durable before any gets its final name.
    FdCloser fd(::open(folders_.front().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) return Status::FromErrno(folders_.front(), errno);
    if (::syncfs(fd.get()) != 0) {
      return Status::FromErrno(fmt::format("{}: cannot sync the filesystem", folders_.front()),
                               errno);
    }
  }
  for (const auto& [temp, final_path] : files_) {
    if (::rename(temp.c_str(), final_path.c_str()) != 0) {
      return Status::FromErrno(fmt::format("{}: cannot rename {} to it", final_path, temp), errno);
    }
  }
  files_.clear();
  if (sync_) {
    std::set<std::string> done;
    for (const std::string& f : folders_) {
      if (done.insert(f).second) SHARDSET_RETURN_IF_ERROR(FsyncDir(f));
    }
  }
  return Status::OK();
}

std::string JsonNumber(double v) { return nlohmann::json(v).dump(); }

}  // namespace shardset::annotations
