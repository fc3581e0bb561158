// Helpers the format tests share: whole-file IO, shell commands, and samples
// as plain values for comparisons. Test code only (not in the library).
#ifndef SHARDSET_TESTING_TEST_UTIL_H_
#define SHARDSET_TESTING_TEST_UTIL_H_

#include <sys/wait.h>

#include <cstdlib>
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

}  // namespace shardset::test

#endif  // SHARDSET_TESTING_TEST_UTIL_H_
