#include "view/labels.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <unordered_map>

#include <fmt/format.h>

#include "base/file.h"
#include "base/strings.h"

namespace shardset {

bool LabelLess(const std::string& a, const std::string& b) {
  auto num = [](const std::string& s, uint64_t* v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
  };
  uint64_t x = 0, y = 0;
  const bool na = num(a, &x), nb = num(b, &y);
  if (na != nb) return na;
  if (na && x != y) return x < y;
  return a < b;
}

LabelColumn::~LabelColumn() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
}

Status LabelColumn::Build(const View& v, const LabelSpec& spec, const Options& o) {
  std::string dir = o.temp_dir;
  if (dir.empty()) {
    const char* tmpdir = std::getenv("TMPDIR");
    dir = tmpdir && *tmpdir ? tmpdir : "/tmp";
  }
  FdCloser fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    return Status::FromErrno(
        fmt::format("{}: cannot create a temporary file for labels (set TMPDIR)", dir), errno);
  }
  std::unordered_map<std::string, uint32_t> ids;
  std::vector<std::string> names;
  std::vector<uint64_t> counts;
  std::string buf;
  Sample sample;
  const uint64_t n = v.num_samples();
  const std::string what = fmt::format("{}: temporary label file", dir);
  auto flush = [&]() -> Status {
    SHARDSET_RETURN_IF_ERROR(WriteAll(fd.get(), buf, what));
    buf.clear();
    return Status::OK();
  };
  std::string key;
  for (uint64_t pos = 0; pos < n; ++pos) {
    if (spec.needs_fields()) {
      SHARDSET_RETURN_IF_ERROR(v.Read(pos, &sample));
      key = sample.key;
    } else {
      SHARDSET_ASSIGN_OR_RETURN(key, v.Key(pos));
    }
    auto label = spec.Of(key, &sample, pos);
    if (!label.ok()) return label.status().WithPrefix(v.target());
    auto [it, added] = ids.try_emplace(*label, static_cast<uint32_t>(names.size()));
    if (added) {
      if (names.size() == o.max_labels) {
        return Status::InvalidArgument(fmt::format(
            "{}: label '{}' has more than {} distinct values; {}", v.target(),
            EscapeForDisplay(spec.ToString()), o.max_labels, o.hint));
      }
      names.push_back(*label);
      counts.push_back(0);
    }
    const uint32_t id = it->second;
    ++counts[id];
    buf.append(reinterpret_cast<const char*>(&id), sizeof(id));
    if (buf.size() >= (1u << 20)) SHARDSET_RETURN_IF_ERROR(flush());
    if (o.progress && (pos % 4096 == 0 || pos + 1 == n)) o.progress(pos + 1, n);
  }
  SHARDSET_RETURN_IF_ERROR(flush());
  std::vector<uint32_t> order(names.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return LabelLess(names[a], names[b]); });
  remap_.assign(names.size(), 0);
  for (uint32_t i = 0; i < order.size(); ++i) {
    remap_[order[i]] = i;
    names_.push_back(names[order[i]]);
    counts_.push_back(counts[order[i]]);
  }
  size_ = n;
  if (n > 0) {
    map_bytes_ = n * sizeof(uint32_t);
    void* m = ::mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (m == MAP_FAILED) return Status::FromErrno("mmap of the temporary label file", errno);
    map_ = static_cast<uint32_t*>(m);
    // Ids in label order, written back so data() is the final column.
    bool identity = true;
    for (uint32_t i = 0; i < remap_.size(); ++i) identity = identity && remap_[i] == i;
    if (!identity) {
      for (uint64_t pos = 0; pos < n; ++pos) map_[pos] = remap_[map_[pos]];
    }
  }
  return Status::OK();
}

}  // namespace shardset
