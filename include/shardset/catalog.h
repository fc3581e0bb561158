// Catalogs: named directories of samples and their annotations, in an
// embedded SQLite database beside the data (docs/catalog.md, schema in
// docs/formats/catalog.md). The bytes stay in immutable shards; a catalog
// holds only identities, memberships and instances.
//
// A *file* is a sample's identity in the catalog: (source dataset, key).
// Directories hold files; annotations (instances) belong to files, so a file
// mirrored into several directories shows the same annotations in each,
// while a copy is a new file over the same bytes with annotations of its own.
// Keys survive re-packing and re-shuffling the bytes, so annotations do too.
//
// Concurrency: any number of processes and threads may read while one
// writes (WAL); writers queue, retrying a busy database with backoff for up
// to `busy_seconds` before reporting it. A Catalog object is used by one
// thread at a time.
#ifndef SHARDSET_CATALOG_H_
#define SHARDSET_CATALOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shardset/status.h"
#include "shardset/view.h"

namespace shardset {

inline constexpr int kCatalogVersion = 1;

// One annotated object of a sample.
struct Instance {
  enum class Kind { kBox, kPolygon, kMask };
  int64_t id = 0;     // set when stored
  int64_t file = 0;   // the file it belongs to
  std::string label;  // its class
  Kind kind = Kind::kBox;
  // kBox: x, y, width, height in pixels from the top-left corner (COCO's
  // bbox). kPolygon: x1, y1, x2, y2, ... in pixels (at least 3 points).
  // kMask: none; `mask` names the mask (a field of the sample, a path, or
  // COCO RLE as JSON text).
  std::vector<double> geometry;
  std::string mask;
  std::string attributes = "{}";  // a JSON object of free attributes
};

std::string_view InstanceKindName(Instance::Kind k);  // "box", "polygon", "mask"
Result<Instance::Kind> ParseInstanceKind(std::string_view name);
// The instance as a JSON object ({"id", "label", "kind", "box"|"polygon"|
// "mask", "attributes"}); what the loader yields and `dir export` embeds.
std::string InstanceJson(const Instance& instance);

struct CatalogFile {
  int64_t id = 0;
  size_t source = 0;  // index into Catalog::sources()
  std::string key;
  int64_t copied_from = 0;  // the file it was copied from; 0 for an original
};

struct CatalogSource {
  int64_t id = 0;
  std::string name;
  // What the source dataset is opened from, resolved against the catalog's
  // folder (the database records them relative to it).
  std::vector<std::string> targets;
};

struct DirectoryInfo {
  std::string name;
  uint64_t files = 0;
  uint64_t instances = 0;  // on its files
};

class Catalog {
 public:
  // The catalog database at `path`; `create` makes it when missing.
  // NotFound when missing otherwise; NotSupported when a newer shardset
  // wrote it; older schemas are migrated on open.
  static Result<std::unique_ptr<Catalog>> Open(const std::string& path, bool create = false,
                                               int busy_seconds = 60);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  const std::string& path() const;

  // Directories. Names are 1-255 bytes without '/', control characters or
  // '#'. AlreadyExists / NotFound naming the directory.
  Status CreateDirectory(std::string_view name);
  Status RemoveDirectory(std::string_view name);
  Result<std::vector<DirectoryInfo>> Directories() const;

  // Adds every sample of `view` (or those at `positions`, in that order) to
  // directory `dir` (after what it holds), each as its original file: the
  // one identity the sample has in the catalog, made on first add. Samples
  // already in `dir` are left where they are. Returns the number added.
  Result<uint64_t> Add(std::string_view dir, const View& view,
                       const std::vector<uint64_t>* positions = nullptr);
  // Puts the files of `src` that `keep` accepts (all by default) into `dst`
  // too: the same identities, so the same annotations.
  Result<uint64_t> Mirror(std::string_view src, std::string_view dst,
                          const std::function<bool(const CatalogFile&)>& keep = {});
  // Puts new files over the same samples into `dst`, each remembering the
  // file it was copied from, with a copy of its instances unless
  // `annotations` is false. Later edits of either side do not show on the
  // other.
  Result<uint64_t> Copy(std::string_view src, std::string_view dst, bool annotations,
                        const std::function<bool(const CatalogFile&)>& keep = {});

  // The files of `dir` in order.
  Result<std::vector<CatalogFile>> Files(std::string_view dir) const;
  const std::vector<CatalogSource>& sources() const;
  // The file of `dir` whose key is `key`; NotFound naming both.
  Result<CatalogFile> FindFile(std::string_view dir, std::string_view key) const;

  // Annotations. InvalidArgument for geometry that does not fit its kind,
  // attributes that are not a JSON object.
  Result<int64_t> AddInstance(int64_t file, const Instance& instance);
  // Replaces instance `instance.id` (label, kind, geometry, mask, attributes).
  Status UpdateInstance(const Instance& instance);
  Status RemoveInstance(int64_t id);
  Result<std::vector<Instance>> Instances(int64_t file) const;

  // The instance with this id; NotFound naming it.
  Result<Instance> GetInstance(int64_t id) const;
  // Adds `instances` (each naming its file in `file`) in one transaction:
  // all of them or, on any error, none; their ids are set. With `clear_dir`
  // given, every instance of the files of that directory is removed first,
  // in the same transaction (a mirrored file's instances are shared, so
  // they go for every directory holding it); `removed` gets how many.
  Status AddInstances(std::vector<Instance>* instances, std::string_view clear_dir = {},
                      uint64_t* removed = nullptr);

  // Runs `body` in one read transaction: every read it makes through this
  // object sees one snapshot of the catalog, whatever other processes commit
  // meanwhile (exports use it so that their passes agree). Writers are not
  // blocked; the WAL cannot be checkpointed past the snapshot until it ends.
  Status ReadSnapshot(const std::function<Status()>& body) const;
  // Calls `fn` with each file of `dir` in order and its instances (by id),
  // from one query: what exports read instead of Instances() per file.
  Status Scan(std::string_view dir,
              const std::function<Status(const CatalogFile&, std::vector<Instance>&&)>& fn) const;
  // The distinct labels of the instances on `dir`'s files, sorted bytewise.
  Result<std::vector<std::string>> Labels(std::string_view dir) const;

  // SQLite's integrity check; problems are listed in the status.
  Status CheckIntegrity() const;
  // Writes a consistent copy of the catalog, as of one moment, to `path`
  // (which must not exist), compacted (SQLite's VACUUM INTO): what sync
  // copies, since the file itself may be mid-write with its WAL beside it.
  Status SnapshotTo(const std::string& path) const;

 private:
  struct Rep;
  explicit Catalog(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace shardset

#endif  // SHARDSET_CATALOG_H_
