// The archive conformance corpus: tar and zip files written by Go, CPython
// and libarchive (../shared/testdata/archives, see its README), each with the
// entries its origin's test suite expects or the error it must give. Every
// file goes through ForEachEntry; the summary line says how many matched.
//
// Deliberate differences from an origin are listed in kDeliberate with the
// reason (docs/input-handling.md "Archives from other tools").
#include <openssl/evp.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "formats/archive_entry.h"

namespace shardset {
namespace {

using nlohmann::json;

const std::string kCorpus = std::string(SHARDSET_SHARED_DIR) + "/testdata/archives";

// Files whose expectation we do not meet on purpose: file -> why.
const std::map<std::string, std::string> kDeliberate = {
    {"zip/go-readme.notzip",
     "it is a zip with 20 bytes of text in front, exactly like go-test-prefix.zip, which Go "
     "must read; Python zipfile and bsdtar read it too, and later Go replaced the file. We read "
     "it, CRC-checked (docs/formats/zip.md)"},
};

std::string Hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

std::string Digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, md, nullptr);
  return Hex(std::string_view(reinterpret_cast<char*>(out), n));
}

struct Seen {
  ArchiveEntry entry;
  std::string data;
  Status data_status;
};

// Walks `path`, reading every entry's data (bounded), into *seen.
Status Walk(const std::string& path, std::vector<Seen>* seen) {
  ReadOptions options;
  options.max_field_bytes = 64 << 20;
  options.max_entries = 100000;
  return ForEachEntry(path, options, [&](const ArchiveEntry& e, const EntryDataReader& data) {
    Seen s{e, {}, Status::OK()};
    // Huge sparse files are listed by size only; their bytes are holes.
    if (e.type != ArchiveEntry::Type::kDirectory && e.size <= (64u << 20)) {
      Result<std::string> d = data(64 << 20);
      if (d.ok()) s.data = std::move(*d); else s.data_status = d.status();
    }
    seen->push_back(std::move(s));
    return Status::OK();
  });
}

// The name as the origin's reader reports it: Python's tarfile strips a
// directory's trailing '/', Go and libarchive keep it, and so do we.
std::string NameAsOrigin(const ArchiveEntry& e, const std::string& file) {
  std::string name = e.name;
  if (file.rfind("tar/cpython-", 0) == 0 && e.type == ArchiveEntry::Type::kDirectory) {
    while (name.size() > 1 && name.back() == '/') name.pop_back();
  }
  return name;
}

// Differences between what we read and one expected entry; "" when none.
std::string Compare(const Seen& s, const json& want, const std::string& file) {
  std::vector<std::string> diffs;
  const ArchiveEntry& e = s.entry;
  auto diff = [&](std::string_view field, const std::string& got, const std::string& expected) {
    if (got != expected) diffs.push_back(fmt::format("{}: got '{}', want '{}'", field, got, expected));
  };
  if (want.contains("name") && want["name"].is_string()) diff("name", NameAsOrigin(e, file), want["name"]);
  if (want.contains("name_hex")) diff("name_hex", Hex(e.name), want["name_hex"]);
  if (want.contains("typeflag")) diff("typeflag", std::string(1, e.typeflag), want["typeflag"]);
  if (want.contains("type")) diff("type", std::string(EntryTypeName(e.type)), want["type"]);
  if (want.contains("size") && want["size"].is_number()) {
    diff("size", std::to_string(e.size), std::to_string(want["size"].get<uint64_t>()));
  }
  if (want.contains("linkname")) diff("linkname", e.linkname, want["linkname"]);
  const bool wants_data = want.contains("content") || want.contains("md5") || want.contains("sha256");
  if (wants_data && !s.data_status.ok()) {
    diffs.push_back("data: " + s.data_status.message());
  } else {
    if (want.contains("content") && want["content"].is_string()) {
      diff("content", s.data, want["content"]);
    }
    if (want.contains("md5")) diff("md5", Digest(EVP_md5(), s.data), want["md5"]);
    if (want.contains("sha256")) diff("sha256", Digest(EVP_sha256(), s.data), want["sha256"]);
  }
  std::string out;
  for (const std::string& d : diffs) out += (out.empty() ? "" : "; ") + d;
  return out;
}

TEST(Conformance, CorpusMatchesOriginExpectations) {
  Result<std::string> text = ReadFile(kCorpus + "/MANIFEST.json", 16 << 20);
  ASSERT_TRUE(text.ok()) << text.status().message();
  const json manifest = json::parse(*text);
  int matched = 0, failed_as_expected = 0, truncated_as_expected = 0, unknown_ok = 0,
      unknown_error = 0, deliberate = 0;
  std::vector<std::string> problems;
  std::string unknown_log;
  for (const json& rec : manifest["files"]) {
    const std::string file = rec["file"];
    const std::string path = kCorpus + "/" + file;
    const json& exp = rec["expected"];
    std::string result = exp.is_string() ? exp.get<std::string>() : exp.value("result", "unknown");
    if (result.rfind("ok", 0) == 0) result = "ok";  // "ok (libarchive: ARCHIVE_WARN ...)"
    std::vector<Seen> seen;
    const Status st = Walk(path, &seen);
    std::string problem;
    if (result == "unknown") {
      (st.ok() ? unknown_ok : unknown_error)++;
      unknown_log += fmt::format("  {}: {}\n", file,
                                 st.ok() ? fmt::format("{} entries", seen.size()) : st.message());
      continue;
    }
    const bool partial = exp.is_object() && exp.contains("entries_partial");
    const json entries = !exp.is_object()   ? json()
                         : partial          ? exp["entries_partial"]
                         : exp.contains("entries") ? exp["entries"]
                                                   : json();
    if (result == "error") {
      if (st.ok()) problem = fmt::format("read {} entries, but the origin requires an error", seen.size());
      else ++failed_as_expected;
    } else if (result == "truncated") {
      // The listed headers parse; reading on from them fails.
      bool data_failed = false;
      for (const Seen& s : seen) data_failed |= !s.data_status.ok();
      if (st.ok() && !data_failed) {
        problem = "read to the end, but the archive is truncated";
      } else if (entries.is_array() && seen.size() < entries.size()) {
        problem = fmt::format("failed after {} entries, before the {} listed: {}", seen.size(),
                              entries.size(), st.message());
      } else {
        for (size_t i = 0; entries.is_array() && i < entries.size() && problem.empty(); ++i) {
          Seen header_only = seen[i];
          json want = entries[i];
          want.erase("content");
          want.erase("md5");
          problem = Compare(header_only, want, file);
        }
        if (problem.empty()) ++truncated_as_expected;
      }
    } else if (!st.ok()) {
      problem = "error: " + st.message();
    } else if (!entries.is_array()) {
      ++matched;  // "see note": the origin reads it; so must we
    } else if (partial) {
      for (const json& want : entries) {
        auto it = std::find_if(seen.begin(), seen.end(),
                               [&](const Seen& s) {
                                 return NameAsOrigin(s.entry, file) == want.value("name", "");
                               });
        if (it == seen.end()) problem += fmt::format("no entry '{}'; ", want.value("name", ""));
        else if (std::string d = Compare(*it, want, file); !d.empty()) problem += d + "; ";
      }
      if (problem.empty()) ++matched;
    } else if (seen.size() != entries.size()) {
      problem = fmt::format("{} entries, want {}", seen.size(), entries.size());
      for (const Seen& s : seen) problem += fmt::format(" [{} {} {}]", s.entry.name, s.entry.typeflag, s.entry.size);
    } else {
      for (size_t i = 0; i < entries.size(); ++i) {
        if (std::string d = Compare(seen[i], entries[i], file); !d.empty()) {
          problem += fmt::format("entry {}: {}; ", i, d);
        }
      }
      if (problem.empty()) ++matched;
    }
    if (!problem.empty()) {
      if (auto it = kDeliberate.find(file); it != kDeliberate.end()) {
        ++deliberate;
        std::printf("conformance: %s differs on purpose: %s (%s)\n", file.c_str(), it->second.c_str(),
                    problem.c_str());
      } else {
        problems.push_back(fmt::format("{} ({}): {}", file, rec.value("format", ""), problem));
      }
    }
  }
  std::printf("conformance: %zu files: %d matched their expected entries, %d failed as expected, "
              "%d truncated as expected, %d unknown read (%d ok, %d refused with an error), %d "
              "deliberate differences, %zu mismatches\n",
              manifest["files"].size(), matched, failed_as_expected, truncated_as_expected,
              unknown_ok + unknown_error, unknown_ok, unknown_error, deliberate, problems.size());
  if (std::getenv("SHARDSET_CONFORMANCE_VERBOSE")) std::printf("unknown files:\n%s", unknown_log.c_str());
  for (const std::string& p : problems) ADD_FAILURE() << p;
}

}  // namespace
}  // namespace shardset
