// shardset_bench_corpus: writes a deterministic tree of random files for the
// benchmarks (bench/run.sh).
//
//   shardset_bench_corpus --files N --dirs D --min-size B --max-size B [--seed S]
//                         [--text-percent P] OUT
//
// Writes OUT/d0000/f0000000.bin ... : file i goes to folder i % D (so every
// folder gets N/D files, and a walk in path order visits files in folder order),
// its size is uniform in [min, max] bytes, its bytes random. The PRNG is
// splitmix64 (splitmix64.h), so the tree is byte-identical on every machine,
// compiler and standard library for the same arguments (std:: distributions
// are not specified exactly enough for that).
//
// Random bytes do not compress, so no tool gains from compression, and every
// file is distinct. With --text-percent P, about P% of the files are text
// instead (f0000042.txt): JSON-lines-like records of words drawn from a fixed
// vocabulary and numbers, which gzip -6 shrinks about 3x, like captions and
// annotations next to the (incompressible) images of a real dataset. P = 0
// writes exactly the tree that earlier versions wrote.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "splitmix64.h"

namespace {

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "shardset_bench_corpus: %s\n", msg.c_str());
  std::exit(2);
}

uint64_t ParseU64(const char* flag, const char* value) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0') {
    Die(std::string(flag) + " needs a non-negative integer, got '" + value + "'");
  }
  return v;
}

void MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    Die(path + ": cannot create folder: " + std::strerror(errno));
  }
}

void WriteAll(const std::string& path, const char* data, size_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die(path + ": cannot create: " + std::strerror(errno));
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      Die(path + ": write failed: " + std::strerror(errno));
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  if (::close(fd) != 0) Die(path + ": close failed: " + std::strerror(errno));
}

// Text-like bytes: records such as
//   {"id": 123, "label": "kowa", "caption": "teb rusomi ...", "score": 0.4821}
// with words from a vocabulary of kVocabulary random lowercase words.
class TextMaker {
 public:
  explicit TextMaker(uint64_t seed) {
    SplitMix64 rng{seed ^ 0x7465787477726473ull};
    words_.resize(kVocabulary);
    for (std::string& w : words_) {
      const size_t len = 2 + rng.Next() % 9;
      for (size_t i = 0; i < len; ++i) w.push_back(static_cast<char>('a' + rng.Next() % 26));
    }
  }

  // Exactly `size` bytes of records into `out`.
  void Fill(SplitMix64* rng, size_t size, std::string* out) {
    out->clear();
    while (out->size() < size) {
      char num[48];
      std::snprintf(num, sizeof num, "{\"id\": %llu, \"label\": \"",
                    static_cast<unsigned long long>(rng->Next() % 1000000));
      out->append(num);
      out->append(Word(rng));
      out->append("\", \"caption\": \"");
      const size_t n = 4 + rng->Next() % 20;
      for (size_t i = 0; i < n; ++i) {
        if (i > 0) out->push_back(' ');
        out->append(Word(rng));
      }
      std::snprintf(num, sizeof num, "\", \"score\": 0.%04llu}\n",
                    static_cast<unsigned long long>(rng->Next() % 10000));
      out->append(num);
    }
    out->resize(size);
  }

 private:
  static constexpr size_t kVocabulary = 2048;
  const std::string& Word(SplitMix64* rng) const { return words_[rng->Next() % kVocabulary]; }
  std::vector<std::string> words_;
};

}  // namespace

int main(int argc, char** argv) {
  uint64_t files = 0, dirs = 1, min_size = 1024, max_size = 4096, seed = 42, text_percent = 0;
  std::string out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--files") {
      files = ParseU64("--files", value());
    } else if (a == "--dirs") {
      dirs = ParseU64("--dirs", value());
    } else if (a == "--min-size") {
      min_size = ParseU64("--min-size", value());
    } else if (a == "--max-size") {
      max_size = ParseU64("--max-size", value());
    } else if (a == "--seed") {
      seed = ParseU64("--seed", value());
    } else if (a == "--text-percent") {
      text_percent = ParseU64("--text-percent", value());
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "Usage: shardset_bench_corpus --files N [--dirs D] [--min-size B] [--max-size B] "
          "[--seed S] [--text-percent P] OUT\n"
          "Writes N random files, sizes uniform in [min,max] bytes, into D folders under OUT,\n"
          "deterministically for the same arguments (defaults: D=1, 1024..4096 bytes, seed 42).\n"
          "With --text-percent P, about P%% of them are compressible text (.txt) instead.\n");
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      Die("unknown option " + a + " (see --help)");
    } else if (out.empty()) {
      out = a;
    } else {
      Die("one OUT folder only");
    }
  }
  if (out.empty()) Die("missing OUT folder (see --help)");
  if (files == 0 || dirs == 0) Die("--files and --dirs must be positive");
  if (min_size > max_size) Die("--min-size must not exceed --max-size");
  if (text_percent > 100) Die("--text-percent must be 0..100");

  MakeDir(out);
  std::vector<std::string> dir_names(dirs);
  for (uint64_t d = 0; d < dirs; ++d) {
    char name[32];
    std::snprintf(name, sizeof name, "/d%04llu", static_cast<unsigned long long>(d));
    dir_names[d] = out + name;
    MakeDir(dir_names[d]);
  }
  SplitMix64 rng{seed};
  TextMaker text_maker(seed);
  std::vector<char> buf(max_size + 8);
  std::string text;
  uint64_t total = 0, text_files = 0;
  for (uint64_t i = 0; i < files; ++i) {
    const uint64_t span = max_size - min_size + 1;
    const size_t size = static_cast<size_t>(min_size + rng.Next() % span);
    // No draw at all when P = 0: the random trees stay what they were.
    const bool is_text = text_percent > 0 && rng.Next() % 100 < text_percent;
    const char* data = buf.data();
    if (is_text) {
      text_maker.Fill(&rng, size, &text);
      data = text.data();
      ++text_files;
    } else {
      for (size_t off = 0; off < size; off += 8) {
        uint64_t r = rng.Next();
        std::memcpy(buf.data() + off, &r, 8);
      }
    }
    char name[32];
    std::snprintf(name, sizeof name, "/f%07llu.%s", static_cast<unsigned long long>(i),
                  is_text ? "txt" : "bin");
    WriteAll(dir_names[i % dirs] + name, data, size);
    total += size;
  }
  std::printf("%llu files (%llu text), %llu bytes in %llu folders under %s\n",
              static_cast<unsigned long long>(files), static_cast<unsigned long long>(text_files),
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(dirs),
              out.c_str());
  return 0;
}
