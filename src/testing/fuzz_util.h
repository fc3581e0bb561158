// Shared parts of the libFuzzer targets (src/**/*_fuzz.cc, docs/fuzzing.md).
//
// Parsers that read files (a shard beside its sidecar index, a manifest
// beside its shards, a view beside its dataset) are fuzzed with the file
// under test replaced by the input and everything around it fixed and valid:
// a companion written once per process from ReferenceSamples(). That gives
// the targets an oracle stronger than "does not crash": a read that succeeds
// must return exactly the reference bytes of that key (CheckRead), since the
// bytes themselves were never touched by the fuzzer.
//
// Seeds: when SHARDSET_FUZZ_SEEDS names a folder, a target's
// LLVMFuzzerInitialize copies the valid file it fuzzes there (scripts/fuzz.sh
// runs each target once that way to start its corpus).
#ifndef SHARDSET_TESTING_FUZZ_UTIL_H_
#define SHARDSET_TESTING_FUZZ_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/file.h"
#include "shardset/shard.h"
#include "shardset/writer.h"

namespace shardset::fuzz {

// Aborts the fuzz run: what the target found is a bug (libFuzzer saves the
// input as a crash file).
[[noreturn]] inline void Fail(const char* what) {
  fprintf(stderr, "fuzz oracle: %s\n", what);
  __builtin_trap();
}

// A folder of this process's own under $TMPDIR, removed at exit. (Leaked:
// the exit handler runs after static destructors would have run.)
inline const std::string& ScratchDir() {
  static const std::string* dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    auto* d = new std::string(std::string(tmp && *tmp ? tmp : "/tmp") + "/shardset-fuzz." +
                              std::to_string(::getpid()));
    std::filesystem::remove_all(*d);
    std::filesystem::create_directories(*d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(ScratchDir(), ec);
    });
    return d;
  }();
  return *dir;
}

inline std::string ScratchPath(std::string_view name) {
  return ScratchDir() + "/" + std::string(name);
}

// Replaces the file at `path` with `bytes` (not atomically: nothing else
// reads it while a target runs).
inline void Overwrite(const std::string& path, std::string_view bytes) {
  FILE* f = fopen(path.c_str(), "wb");
  if (f == nullptr) Fail("cannot write a scratch file");
  if (!bytes.empty() && fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    Fail("cannot write a scratch file");
  }
  fclose(f);
}

// Small deterministic samples: sorted keys, two fields each, sizes from 0 to
// a few KiB (so formats with blocks or padding see more than one of them).
inline std::vector<InputSample> ReferenceSamples(int n = 24) {
  std::vector<InputSample> out;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < n; ++i) {
    InputSample s;
    char key[32];
    // The version in the key keeps corpora made from an older reference
    // (valid shards of other bytes under the same keys) from tripping
    // CheckRead: bump it whenever these samples change.
    snprintf(key, sizeof key, "ref2/sample-%04d", i);
    s.key = key;
    // A NUL first: binary in every sample (a tsv makes it a base64 column).
    InputField data{"png", std::string(1, '\0'), 0};
    const size_t size = (i * 397) % 3000;
    for (size_t k = 0; k < size; ++k) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      data.data.push_back(static_cast<char>(x));
    }
    s.fields.push_back(std::move(data));
    s.fields.push_back(InputField{"cls", std::to_string(i % 10), 0});
    out.push_back(std::move(s));
  }
  return out;
}

using Reference = std::map<std::string, const InputSample*, std::less<>>;

inline Reference ByKey(const std::vector<InputSample>& samples) {
  Reference ref;
  for (const InputSample& s : samples) ref[s.key] = &s;
  return ref;
}

// A sample read back: when its key is one of the reference's, every field
// must be the reference's, byte for byte. Keys the reference lacks are left
// alone (a fuzzed manifest or view may name other files).
inline void CheckRead(const Sample& got, const Reference& ref) {
  auto it = ref.find(got.key);
  if (it == ref.end()) return;
  const InputSample& want = *it->second;
  if (got.fields.size() != want.fields.size()) Fail("a read returned other fields");
  for (size_t i = 0; i < want.fields.size(); ++i) {
    if (got.fields[i].name != want.fields[i].name || got.fields[i].data != want.fields[i].data) {
      Fail("a read returned wrong bytes");
    }
  }
}

// Writes `samples` as one shard of `format` at `path`, with its sidecar index
// when the format has one.
inline void WriteShard(const std::string& path, ShardFormat format,
                       const std::vector<InputSample>& samples) {
  WriteOptions wo;
  wo.sync = false;
  wo.overwrite = true;
  auto writer = CreateShardWriter(path, format, wo);
  if (!writer.ok()) Fail(writer.status().ToString().c_str());
  for (const InputSample& s : samples) {
    const Status st = (*writer)->Add(s);
    if (!st.ok()) Fail(st.ToString().c_str());
  }
  auto closed = (*writer)->Close();
  if (!closed.ok()) Fail(closed.status().ToString().c_str());
}

// Writes `samples` as a dataset folder at `dir` with shards of 8 samples.
inline void WriteDataset(const std::string& dir, ShardFormat format,
                         const std::vector<InputSample>& samples) {
  WriterOptions wo;
  wo.format = format;
  wo.shard_samples = 8;
  wo.sync = false;
  wo.overwrite = true;
  auto writer = Writer::Open(dir, wo);
  if (!writer.ok()) Fail("cannot create the companion dataset");
  for (const InputSample& s : samples) {
    if (!(*writer)->Add(s).ok()) Fail("cannot write the companion dataset");
  }
  if (!(*writer)->Close().ok()) Fail("cannot close the companion dataset");
}

// When SHARDSET_FUZZ_SEEDS is set: copies `path` into that folder as a seed.
inline void OfferSeed(const std::string& path, std::string_view name) {
  const char* dir = std::getenv("SHARDSET_FUZZ_SEEDS");
  if (dir == nullptr || *dir == '\0') return;
  std::error_code ec;
  std::filesystem::copy_file(path, std::string(dir) + "/" + std::string(name),
                             std::filesystem::copy_options::overwrite_existing, ec);
}

// When SHARDSET_FUZZ_SEEDS is set: offers a shard of the reference samples
// in `format` (the fuzzers of whole files start from one of ours too).
inline void OfferReferenceShard(ShardFormat format) {
  if (std::getenv("SHARDSET_FUZZ_SEEDS") == nullptr) return;
  const std::string name = "reference" + std::string(FormatExtension(format));
  const std::string path = ScratchPath(name);
  WriteShard(path, format, ReferenceSamples());
  OfferSeed(path, name);
}

// Reads every sample of `r` through CheckRead, then lets Find and Verify
// run (their results may be errors; they must not crash or lie).
template <typename Reader>
void ReadAll(const Reader& r, uint64_t n, const Reference& ref) {
  Sample s;
  for (uint64_t i = 0; i < n; ++i) {
    if (r.Read(i, &s).ok()) CheckRead(s, ref);
  }
}

// A target for the sidecar index of a shard format: the shard stays the
// valid companion, the input replaces one of its sidecar files (the first
// byte picks which when the format has several), and the shard is opened,
// read whole and verified.
class SidecarTarget {
 public:
  explicit SidecarTarget(ShardFormat format)
      : format_(format), samples_(ReferenceSamples()), ref_(ByKey(samples_)) {
    shard_ = ScratchPath("companion" + std::string(FormatExtension(format)));
    WriteShard(shard_, format, samples_);
    sidecars_ = SidecarPaths(shard_, format);
    if (sidecars_.empty()) Fail("the format has no sidecar");
    for (const std::string& p : sidecars_) {
      auto bytes = ReadFile(p, uint64_t{1} << 30);
      if (!bytes.ok()) Fail("the companion's sidecar is missing");
      originals_.push_back(std::move(*bytes));
      // With its selector byte in front when there are several.
      const std::string name = p.substr(p.rfind('/') + 1);
      if (sidecars_.size() == 1) {
        OfferSeed(p, name);
      } else {
        const std::string seed = ScratchPath("seed-" + name);
        Overwrite(seed,
                  std::string(1, static_cast<char>(originals_.size() - 1)) + originals_.back());
        OfferSeed(seed, name);
      }
    }
  }

  void Run(std::string_view input) const {
    size_t which = 0;
    if (sidecars_.size() > 1) {
      if (input.empty()) return;
      which = static_cast<uint8_t>(input[0]) % sidecars_.size();
      input.remove_prefix(1);
    }
    for (size_t i = 0; i < sidecars_.size(); ++i) {
      Overwrite(sidecars_[i], i == which ? input : std::string_view(originals_[i]));
    }
    auto reader = OpenShardAs(shard_, format_);
    if (!reader.ok()) return;
    ReadAll(**reader, (*reader)->num_samples(), ref_);
    Sample s;
    for (const InputSample& want : samples_) {
      auto found = (*reader)->Find(want.key);
      if (found.ok() && (*reader)->Read(*found, &s).ok()) {
        if (s.key != want.key) Fail("Find returned a sample with another key");
        CheckRead(s, ref_);
      }
    }
    VerifyReport report;
    (void)(*reader)->Verify(&report);
  }

 private:
  ShardFormat format_;
  std::vector<InputSample> samples_;
  Reference ref_;
  std::string shard_;
  std::vector<std::string> sidecars_;
  std::vector<std::string> originals_;
};

}  // namespace shardset::fuzz

#endif  // SHARDSET_TESTING_FUZZ_UTIL_H_
