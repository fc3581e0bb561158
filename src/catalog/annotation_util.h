// What the COCO, YOLO and dir-export code share: a catalog directory read
// as a view with its files lined up, image sizes, and the matching of file
// names in an imported file to the directory's keys.
#ifndef SHARDSET_CATALOG_ANNOTATION_UTIL_H_
#define SHARDSET_CATALOG_ANNOTATION_UTIL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "image/image.h"
#include "shardset/catalog.h"
#include "shardset/view.h"

namespace shardset::annotations {

// "CATALOG#NAME": how messages name a directory.
std::string Shown(const Catalog& catalog, std::string_view dir);

// A directory opened as a view (View::Open of "CATALOG#NAME"). Position i
// of the view is the directory's i-th file; CheckFile tells when a listing
// taken later (in a snapshot) no longer agrees, i.e. the directory's
// members changed between the two.
class DirectoryReader {
 public:
  static Result<std::unique_ptr<DirectoryReader>> Open(const Catalog& catalog,
                                                       std::string_view dir,
                                                       const ReadOptions& options);
  const View& view() const { return *view_; }
  uint64_t size() const { return view_->num_samples(); }
  const std::string& shown() const { return shown_; }

  // OK when `file`, the pos-th of a listing of the directory taken in a
  // snapshot, is the view's sample `pos`; CheckCount at the end of the
  // listing. Otherwise the directory's members changed since the view was
  // opened: an error saying to run again.
  Status CheckFile(uint64_t pos, const CatalogFile& file) const;
  Status CheckCount(uint64_t listed) const;
  // Sample `pos` as its source holds it: no derived `annotations` field.
  Status Read(uint64_t pos, Sample* out) const;
  // The name of sample `pos`'s first image field (link's list: png, jpg,
  // jpeg, ...), from the index alone; empty when it has none.
  Result<std::string> ImageField(uint64_t pos) const;
  // The size of image field `field` of sample `pos` (read into `scratch`),
  // errors naming the sample and the field.
  Result<ImageSize> SizeOf(uint64_t pos, const std::string& field, Sample* scratch) const;
  // "CATALOG#NAME: sample 12 (key 'dog/3')" for messages.
  std::string Where(uint64_t pos, std::string_view key) const;

 private:
  std::unique_ptr<View> view_;
  std::string shown_;
};

// The YOLO names (no folder, no ".txt") of every sample of `reader`: what
// `shardset link --layout yolo` gives its images (TreeLayout), each sample
// placed with its image fields and a label file. Empty for a sample without
// an image field.
Result<std::vector<std::string>> YoloNames(const DirectoryReader& reader);

// Matches names from an imported file to positions: exact names (keys,
// YOLO names) first, then the name without its extension, then its last
// path component (without extension) against the keys' last components,
// only when exactly one key has it.
class NameMatcher {
 public:
  // `name` (a key, a YOLO name) matches exactly (the first of a name
  // wins), its last path component when no other name ends so.
  void AddKey(std::string_view name, uint64_t pos);
  struct Match {
    std::optional<uint64_t> pos;
    bool ambiguous = false;  // only a basename shared by several keys matched
  };
  Match Find(std::string_view name) const;

 private:
  std::unordered_map<std::string, uint64_t> exact_;
  std::unordered_map<std::string, int64_t> base_;  // -1: several keys
};

// The names (up to a few) and count of what matched nothing, as one line:
// "3 images match no file of X (a.png, b.png, c.png)".
std::string MissingLine(uint64_t count, const std::vector<std::string>& names,
                        std::string_view what, std::string_view shown);
inline constexpr size_t kMissingShown = 5;

// Writes files under their final names only when complete and durable,
// with one filesystem sync for all of them instead of one fsync each: each
// is written to a temporary name beside its final one; Commit() syncs the
// filesystem (syncfs), renames every file, then fsyncs their folders.
// Temporary names are ".shardset-tmp.<tag>.<pid>.<n>", so a later run
// removes what a killed one left with RemoveStaleTempFilesOf(folder/<tag>).
class FileBatch {
 public:
  FileBatch(std::string tag, bool sync) : tag_(std::move(tag)), sync_(sync) {}
  ~FileBatch();  // removes temporary files not committed
  FileBatch(const FileBatch&) = delete;
  FileBatch& operator=(const FileBatch&) = delete;
  Status Add(const std::string& final_path, std::string_view contents);
  Status Commit();

 private:
  std::string tag_;
  bool sync_;
  uint64_t counter_ = 0;
  std::vector<std::pair<std::string, std::string>> files_;  // temp, final
  std::vector<std::string> folders_;
};

// A double as JSON writes it (shortest text that reads back the same).
std::string JsonNumber(double v);

}  // namespace shardset::annotations

#endif  // SHARDSET_CATALOG_ANNOTATION_UTIL_H_
