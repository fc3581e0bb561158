// fashion_mnist_png: converts Debian's dataset-fashion-mnist package (gzip-compressed IDX
// files) into a tree of PNG files, one per image:
//
//   OUT/training/<label>/<n>.png   from train-{images-idx3,labels-idx1}-ubyte.gz
//   OUT/testing/<label>/<n>.png    from t10k-{images-idx3,labels-idx1}-ubyte.gz
//
// <label> is the class digit 0-9 and <n> the 0-based index of the image in its IDX file, without
// zero padding. Each PNG is a 28x28 8-bit grayscale image whose pixels are the IDX bytes
// unchanged (0 = background, 255 = foreground, as in the IDX data).
//
// Contracts:
//  - Deterministic: the same input and the same zlib/libspng build give byte-identical PNGs on
//    every run (fixed compression parameters, no time-dependent chunks such as tIME).
//  - All four headers and all labels are validated before anything is written, so a missing
//    package or a damaged header leaves OUT untouched. Damage inside the image data is found
//    when it is reached and stops the run; the PNGs written before it are complete and correct.
//  - A PNG appears under its final name only once it is complete: it is written to a hidden
//    temporary name (".<n>.png.tmp") in the same directory and then renamed. This protects
//    against the process being killed; there is no fsync, so it does not promise durability
//    across a power loss. A rerun overwrites whatever a previous run left, including temporary
//    files with the same names.
//  - Concurrent runs into the same OUT are not supported.
//
// Standalone on purpose (depends only on zlib and libspng, not on the rest of shardset) so it
// can prepare test data before the project itself builds.

#include <spng.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;

constexpr char kProgram[] = "fashion_mnist_png";
constexpr char kDefaultSource[] = "/usr/share/datasets/fashion-mnist";
constexpr char kUsage[] =
    "Usage: fashion_mnist_png [--source DIR] [--limit N] OUT\n"
    "\n"
    "Converts the Fashion-MNIST IDX files into 28x28 grayscale PNGs:\n"
    "  OUT/training/<label>/<n>.png  (60,000 images)\n"
    "  OUT/testing/<label>/<n>.png   (10,000 images)\n"
    "where <label> is the class 0-9 and <n> the image's 0-based index in its IDX file.\n"
    "Existing files with the same names are overwritten.\n"
    "\n"
    "Options:\n"
    "  --source DIR  directory holding {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz\n"
    "                (default: /usr/share/datasets/fashion-mnist, from Debian's\n"
    "                dataset-fashion-mnist package)\n"
    "  --limit N     write only the first N images of each split\n"
    "  -h, --help    print this help and exit\n";

// Hints that end the one-line error messages: what the user can do about the failure.
constexpr char kInstallHint[] =
    "install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) or "
    "pass --source DIR";
constexpr char kReinstallHint[] =
    "the file is damaged; reinstall it (apt-get install --reinstall dataset-fashion-mnist) or "
    "pass --source DIR";
constexpr char kOutputHint[] = "check that OUT is a writable directory with free space";

// IDX magic: two zero bytes, the element type (0x08 = unsigned byte), the number of dimensions.
constexpr uint32_t kImagesMagic = 0x00000803;
constexpr uint32_t kLabelsMagic = 0x00000801;
constexpr uint32_t kRows = 28;
constexpr uint32_t kCols = 28;
constexpr size_t kPixelsPerImage = size_t{kRows} * kCols;
constexpr int kNumLabels = 10;

// One split of the dataset: where its IDX files come from and where its PNGs go.
struct SplitSpec {
  const char* file_prefix;  // "train" or "t10k", as in the IDX file names.
  const char* out_name;     // Subdirectory of OUT.
};
constexpr std::array<SplitSpec, 2> kSplits = {{{"train", "training"}, {"t10k", "testing"}}};

// Prints "fashion_mnist_png: <message>" as one line on stderr and exits with status 1. Every
// error is fatal: the tool has nothing useful to do after one, and a rerun is cheap.
[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", kProgram, message.c_str());
  std::exit(1);
}

[[noreturn]] void DieUsage(const std::string& message) {
  Die(message + "; run '" + kProgram + " --help' for usage");
}

struct GzCloser {
  void operator()(gzFile file) const { gzclose(file); }
};
using GzFilePtr = std::unique_ptr<gzFile_s, GzCloser>;

// Sequential reader of one IDX file, gzip-compressed or plain (zlib reads both). Every failure
// is fatal and names the file, so callers never see a short read.
class IdxReader {
 public:
  explicit IdxReader(fs::path path) : path_(std::move(path)) {
    errno = 0;
    file_.reset(gzopen(path_.c_str(), "rb"));
    if (file_ == nullptr) {
      Die(path_.string() + ": cannot open (" +
          (errno != 0 ? std::strerror(errno) : "out of memory") + "); " + kInstallHint);
    }
    // The default 8 KiB buffer makes gzread call read(2) far more often than needed.
    gzbuffer(file_.get(), 1 << 17);
  }

  // Reads exactly `size` bytes into `dst`, or dies reporting a truncated or corrupt stream.
  void Read(void* dst, size_t size) {
    auto* out = static_cast<unsigned char*>(dst);
    while (size > 0) {
      // gzread takes an unsigned count and returns an int, so read in chunks below INT_MAX.
      const unsigned chunk =
          static_cast<unsigned>(std::min<size_t>(size, std::numeric_limits<int>::max()));
      const int n = gzread(file_.get(), out, chunk);
      if (n <= 0) FailRead();
      out += n;
      size -= static_cast<size_t>(n);
    }
  }

  uint32_t ReadBigEndian32() {
    std::array<unsigned char, 4> b;
    Read(b.data(), b.size());
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  }

  // Dies unless the stream is exhausted: trailing bytes mean the header's count is wrong.
  void ExpectEnd() {
    unsigned char extra;
    const int n = gzread(file_.get(), &extra, 1);
    if (n < 0) FailRead();
    if (n > 0) Fail("has data after the last item its header announces");
  }

  // Dies with "<path>: <what>; <reinstall hint>".
  [[noreturn]] void Fail(const std::string& what) const {
    Die(path_.string() + ": " + what + "; " + kReinstallHint);
  }

 private:
  [[noreturn]] void FailRead() const {
    int zerr = Z_OK;
    std::string_view message = gzerror(file_.get(), &zerr);
    if (zerr == Z_ERRNO) Fail(std::string("read error (") + std::strerror(errno) + ")");
    // Z_BUF_ERROR is zlib's "unexpected end of file" inside the gzip stream.
    if (zerr != Z_OK && zerr != Z_BUF_ERROR) {
      // gzerror() prefixes the message with "<path>: ", which Fail() already prints.
      const std::string prefix = path_.string() + ": ";
      if (message.starts_with(prefix)) message.remove_prefix(prefix.size());
      Fail("corrupt gzip data (" + std::string(message) + ")");
    }
    Fail("is truncated");
  }

  fs::path path_;
  GzFilePtr file_;
};

// An opened split whose headers have been validated; images are read lazily, one at a time.
struct OpenSplit {
  const SplitSpec* spec;
  std::vector<uint8_t> labels;  // All labels of the split, each in [0, kNumLabels).
  IdxReader images;             // Positioned at the first image.
};

// Reads and validates the whole labels file (at most a few tens of KiB).
std::vector<uint8_t> ReadLabels(const fs::path& path) {
  IdxReader reader(path);
  const uint32_t magic = reader.ReadBigEndian32();
  if (magic != kLabelsMagic) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "bad IDX magic 0x%08x, expected 0x%08x (1-D unsigned bytes)",
                  magic, kLabelsMagic);
    reader.Fail(buf);
  }
  const uint32_t count = reader.ReadBigEndian32();
  // Grow with the data actually read, so a damaged count cannot trigger a 4 GiB allocation.
  std::vector<uint8_t> labels;
  while (labels.size() < count) {
    const size_t old_size = labels.size();
    labels.resize(old_size + std::min<size_t>(count - old_size, size_t{1} << 16));
    reader.Read(labels.data() + old_size, labels.size() - old_size);
  }
  reader.ExpectEnd();
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= kNumLabels) {
      reader.Fail("label " + std::to_string(labels[i]) + " of item " + std::to_string(i) +
                  " is not in 0-" + std::to_string(kNumLabels - 1));
    }
  }
  return labels;
}

// Opens both IDX files of `spec` and validates their headers against each other.
OpenSplit OpenAndValidate(const fs::path& source, const SplitSpec& spec) {
  const std::string prefix = spec.file_prefix;
  std::vector<uint8_t> labels = ReadLabels(source / (prefix + "-labels-idx1-ubyte.gz"));
  IdxReader images(source / (prefix + "-images-idx3-ubyte.gz"));
  const uint32_t magic = images.ReadBigEndian32();
  if (magic != kImagesMagic) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "bad IDX magic 0x%08x, expected 0x%08x (3-D unsigned bytes)",
                  magic, kImagesMagic);
    images.Fail(buf);
  }
  const uint32_t count = images.ReadBigEndian32();
  const uint32_t rows = images.ReadBigEndian32();
  const uint32_t cols = images.ReadBigEndian32();
  if (rows != kRows || cols != kCols) {
    images.Fail("images are " + std::to_string(rows) + "x" + std::to_string(cols) +
                ", expected " + std::to_string(kRows) + "x" + std::to_string(kCols));
  }
  if (count != labels.size()) {
    images.Fail("holds " + std::to_string(count) + " images but its labels file holds " +
                std::to_string(labels.size()) + " labels");
  }
  return OpenSplit{&spec, std::move(labels), std::move(images)};
}

struct SpngCtxDeleter {
  void operator()(spng_ctx* ctx) const { spng_ctx_free(ctx); }
};
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// A complete PNG file in memory, allocated by libspng with malloc().
struct EncodedPng {
  std::unique_ptr<void, FreeDeleter> data;
  size_t size = 0;
};

[[noreturn]] void DieEncode(const fs::path& png_path, const char* step, int err) {
  Die(png_path.string() + ": PNG encoding failed in " + step + " (" + spng_strerror(err) +
      "); this is a bug or a broken libspng install");
}

// Encodes one kRows x kCols 8-bit grayscale image. Compression parameters are pinned here rather
// than left to libspng's defaults so the output bytes do not change if those defaults do. Level 9
// with adaptive filtering measured 506 bytes per image on average (libspng's defaults: 507) at
// about 20% more encoding time, which is small next to the file system work per PNG.
// Dies on failure, naming `png_path` (the file the PNG is destined for).
EncodedPng EncodePng(const uint8_t* pixels, const fs::path& png_path) {
  std::unique_ptr<spng_ctx, SpngCtxDeleter> ctx(spng_ctx_new(SPNG_CTX_ENCODER));
  if (ctx == nullptr) DieEncode(png_path, "spng_ctx_new", SPNG_EMEM);
  int err = spng_set_option(ctx.get(), SPNG_ENCODE_TO_BUFFER, 1);
  if (err == 0) err = spng_set_option(ctx.get(), SPNG_IMG_COMPRESSION_LEVEL, 9);
  if (err == 0) err = spng_set_option(ctx.get(), SPNG_IMG_WINDOW_BITS, 15);
  if (err == 0) err = spng_set_option(ctx.get(), SPNG_IMG_MEM_LEVEL, 9);
  if (err == 0) err = spng_set_option(ctx.get(), SPNG_IMG_COMPRESSION_STRATEGY, Z_FILTERED);
  if (err == 0) err = spng_set_option(ctx.get(), SPNG_FILTER_CHOICE, SPNG_FILTER_CHOICE_ALL);
  if (err != 0) DieEncode(png_path, "spng_set_option", err);

  spng_ihdr ihdr = {};
  ihdr.width = kCols;
  ihdr.height = kRows;
  ihdr.bit_depth = 8;
  ihdr.color_type = SPNG_COLOR_TYPE_GRAYSCALE;
  ihdr.interlace_method = SPNG_INTERLACE_NONE;
  err = spng_set_ihdr(ctx.get(), &ihdr);
  if (err != 0) DieEncode(png_path, "spng_set_ihdr", err);

  // SPNG_FMT_PNG: the pixels are already in the IHDR's format, so no conversion happens.
  err = spng_encode_image(ctx.get(), pixels, kPixelsPerImage, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
  if (err != 0) DieEncode(png_path, "spng_encode_image", err);

  EncodedPng png;
  png.data.reset(spng_get_png_buffer(ctx.get(), &png.size, &err));
  if (png.data == nullptr) DieEncode(png_path, "spng_get_png_buffer", err);
  return png;
}

// Removes the temporary file `tmp` (best effort) and dies reporting `errnum` for `path`.
[[noreturn]] void DieWrite(const fs::path& tmp, const fs::path& path, int errnum) {
  std::error_code ignored;
  fs::remove(tmp, ignored);
  Die(path.string() + ": cannot write (" + std::strerror(errnum) + "); " + kOutputHint);
}

// Writes `size` bytes to `path` via a hidden temporary file in the same directory and a rename,
// so `path` is either absent, its previous content, or the complete new content. Dies on error
// after removing the temporary file.
void WriteFileAtomically(const fs::path& path, const void* data, size_t size) {
  // Built by appending rather than `"." + name`, which trips GCC 12's false -Wrestrict at -O3.
  std::string tmp_name = ".";
  tmp_name += path.filename().native();
  tmp_name += ".tmp";
  const fs::path tmp = fs::path(path).replace_filename(tmp_name);
  std::FILE* file = std::fopen(tmp.c_str(), "wb");
  if (file == nullptr) DieWrite(tmp, tmp, errno);
  const bool wrote = std::fwrite(data, 1, size, file) == size;
  const int write_errno = errno;
  // fclose flushes, so its result is part of the write's result.
  if (std::fclose(file) != 0 || !wrote) DieWrite(tmp, tmp, wrote ? errno : write_errno);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) DieWrite(tmp, path, ec.value());
}

// Creates OUT/<split>/<label> for every label.
void CreateOutputDirs(const fs::path& out, const SplitSpec& spec) {
  for (int label = 0; label < kNumLabels; ++label) {
    const fs::path dir = out / spec.out_name / std::to_string(label);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) Die(dir.string() + ": cannot create directory (" + ec.message() + "); " + kOutputHint);
  }
}

struct SplitResult {
  uint64_t pngs = 0;
  uint64_t bytes = 0;
};

// Writes the first min(limit, count) images of `split` as PNGs under OUT/<split>/.
SplitResult ConvertSplit(OpenSplit& split, const fs::path& out, uint64_t limit) {
  const fs::path split_dir = out / split.spec->out_name;
  const uint64_t count = std::min<uint64_t>(limit, split.labels.size());
  std::array<uint8_t, kPixelsPerImage> pixels;
  SplitResult result;
  for (uint64_t i = 0; i < count; ++i) {
    split.images.Read(pixels.data(), pixels.size());
    const fs::path path =
        split_dir / std::to_string(split.labels[i]) / (std::to_string(i) + ".png");
    const EncodedPng png = EncodePng(pixels.data(), path);
    WriteFileAtomically(path, png.data.get(), png.size);
    ++result.pngs;
    result.bytes += png.size;
  }
  // Only a full pass can tell whether the images file is longer than its header says.
  if (count == split.labels.size()) split.images.ExpectEnd();
  return result;
}

struct Options {
  fs::path source = kDefaultSource;
  uint64_t limit = std::numeric_limits<uint64_t>::max();
  fs::path out;
};

// Parses argv. Accepts "--opt VALUE" and "--opt=VALUE"; "--" ends the options. Exits on --help
// (status 0) and on usage errors (status 1).
Options ParseArgs(int argc, char** argv) {
  Options options;
  std::vector<std::string_view> positional;
  // If `argv[*i]` is option `name`, stores its value (inline or the next argument) in *value.
  const auto take_value = [&](std::string_view name, int* i, std::string_view* value) {
    const std::string_view arg = argv[*i];
    if (arg == name) {
      if (*i + 1 >= argc) DieUsage(std::string(name) + " needs a value");
      *value = argv[++*i];
      return true;
    }
    if (arg.size() > name.size() && arg.starts_with(name) && arg[name.size()] == '=') {
      *value = arg.substr(name.size() + 1);
      return true;
    }
    return false;
  };

  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    std::string_view value;
    if (options_done || arg == "-" || !arg.starts_with("-")) {
      positional.push_back(arg);
    } else if (arg == "--") {
      options_done = true;
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (take_value("--source", &i, &value)) {
      if (value.empty()) DieUsage("--source needs a non-empty directory");
      options.source = value;
    } else if (take_value("--limit", &i, &value)) {
      const char* end = value.data() + value.size();
      const auto [ptr, ec] = std::from_chars(value.data(), end, options.limit);
      if (value.empty() || ec != std::errc() || ptr != end) {
        DieUsage("--limit needs a non-negative integer, got '" + std::string(value) + "'");
      }
    } else {
      DieUsage("unknown option '" + std::string(arg) + "'");
    }
  }
  if (positional.size() != 1) {
    DieUsage(positional.empty() ? "missing OUT directory" : "expected exactly one OUT directory");
  }
  options.out = positional[0];
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseArgs(argc, argv);

  // Validate every input before creating anything, so a bad --source leaves OUT untouched.
  std::vector<OpenSplit> splits;
  for (const SplitSpec& spec : kSplits) splits.push_back(OpenAndValidate(options.source, spec));
  for (const SplitSpec& spec : kSplits) CreateOutputDirs(options.out, spec);

  std::string counts;  // "60000 training + 10000 testing"
  uint64_t total_bytes = 0;
  for (OpenSplit& split : splits) {
    const SplitResult result = ConvertSplit(split, options.out, options.limit);
    if (!counts.empty()) counts += " + ";
    counts += std::to_string(result.pngs) + " " + split.spec->out_name;
    total_bytes += result.bytes;
  }
  std::printf("%s: wrote %s PNGs (%llu bytes) to %s\n", kProgram, counts.c_str(),
              static_cast<unsigned long long>(total_bytes), options.out.c_str());
  return 0;
}
