// Helpers the format tests share: whole-file IO, shell commands, and samples
// as plain values for comparisons. Test code only (not in the library).
#ifndef SHARDSET_TESTING_TEST_UTIL_H_
#define SHARDSET_TESTING_TEST_UTIL_H_

#include <sys/wait.h>

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "shardset/shard.h"

namespace shardset::test {

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteBytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Exit status of a shell command (-1 when it did not exit normally).
inline int RunShell(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// A sample as plain values, for comparisons.
using Fields = std::vector<std::pair<std::string, std::string>>;
struct Plain {
  std::string key;
  Fields fields;
  bool operator==(const Plain&) const = default;
};
inline void PrintTo(const Plain& p, std::ostream* os) {
  *os << "'" << p.key << "' {";
  for (const auto& [n, d] : p.fields) *os << n << ":" << d.size() << "B ";
  *os << "}";
}

inline Plain ToPlain(const Sample& s) {
  Plain p{s.key, {}};
  for (const Field& f : s.fields) p.fields.emplace_back(std::string(f.name), std::string(f.data));
  return p;
}

inline InputSample ToInput(const Plain& p) {
  InputSample s;
  s.key = p.key;
  for (const auto& [n, d] : p.fields) s.fields.push_back(InputField{n, d, 0});
  return s;
}

// Every sample of `r` in order; a failed read fails the test.
inline std::vector<Plain> ReadAll(const ShardReader& r) {
  std::vector<Plain> out;
  Sample s;
  for (uint64_t i = 0; i < r.num_samples(); ++i) {
    Status st = r.Read(i, &s);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) break;
    out.push_back(ToPlain(s));
  }
  return out;
}

// A test with its own temporary folder, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "shardset_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(std::string_view name) const {
    return (std::filesystem::path(dir_) / name).string();
  }

  // Writes `samples` as a shard of `format` at `path`; a failure fails the test.
  static ShardInfo WritePlain(const std::string& path, ShardFormat format,
                              const std::vector<Plain>& samples, WriteOptions options) {
    options.sync = false;
    auto w = CreateShardWriter(path, format, options);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    if (!w.ok()) return {};
    for (const Plain& p : samples) {
      Status s = (*w)->Add(ToInput(p));
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    auto info = (*w)->Close();
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? *info : ShardInfo();
  }

  std::string dir_;
};

}  // namespace shardset::test

#endif  // SHARDSET_TESTING_TEST_UTIL_H_
