#include "catalog/yolo_names.h"

#include <cstdlib>
#include <map>

#include <fmt/format.h>

#include "base/file.h"
#include "base/strings.h"

namespace shardset {
namespace {

constexpr uint64_t kMaxNamesFileBytes = 16 << 20;
constexpr size_t kMaxNames = 1 << 20;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Reads YAML scalars and flow collections from one entry's text.
class Scanner {
 public:
  Scanner(std::string_view text, std::string path, size_t line)
      : s_(text), path_(std::move(path)), line_(line) {}

  Status Bad(std::string_view what) const {
    return Status::InvalidArgument(fmt::format("{}:{}: names: {}", path_, line_, what));
  }
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' ||
                              s_[i_] == '\n')) {
      if (s_[i_] == '\n') ++line_;
      ++i_;
    }
    if (i_ < s_.size() && s_[i_] == '#') {  // a comment to the end of the line
      while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      SkipSpace();
    }
  }
  bool AtEnd() {
    SkipSpace();
    return i_ >= s_.size();
  }
  char Peek() {
    SkipSpace();
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  bool Eat(char c) {
    if (Peek() != c) return false;
    ++i_;
    return true;
  }

  // A scalar ending at one of `stops` (outside quotes) or the end of the text.
  Result<std::string> Scalar(std::string_view stops) {
    SkipSpace();
    std::string out;
    if (i_ < s_.size() && (s_[i_] == '\'' || s_[i_] == '"')) {
      const char q = s_[i_++];
      for (;;) {
        if (i_ >= s_.size()) return Bad("a quoted name is not closed");
        const char c = s_[i_++];
        if (q == '\'' && c == '\'') {
          if (i_ < s_.size() && s_[i_] == '\'') {
            out.push_back('\'');
            ++i_;
            continue;
          }
          break;
        }
        if (q == '"' && c == '"') break;
        if (q == '"' && c == '\\') {
          if (i_ >= s_.size()) return Bad("a quoted name ends in '\\'");
          const char e = s_[i_++];
          int hex = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
          if (hex) {
            if (i_ + hex > s_.size()) return Bad("a \\x, \\u or \\U escape is cut short");
            const std::string digits(s_.substr(i_, hex));
            char* end = nullptr;
            const unsigned long cp = std::strtoul(digits.c_str(), &end, 16);
            if (*end != '\0' || cp > 0x10FFFF) return Bad("a bad \\x, \\u or \\U escape");
            i_ += hex;
            AppendUtf8(static_cast<uint32_t>(cp), &out);
            continue;
          }
          switch (e) {
            case 'n': out.push_back('\n'); break;
            case 't': out.push_back('\t'); break;
            case '0': out.push_back('\0'); break;
            case '\\': case '"': case '/': case ' ': out.push_back(e); break;
            default:
              // The byte shown escaped: a raw newline would break the
              // one-line error.
              return Bad(fmt::format("an unknown escape '\\{}'",
                                     EscapeForDisplay(std::string_view(&e, 1))));
          }
          continue;
        }
        out.push_back(c);
      }
      return out;
    }
    while (i_ < s_.size() && s_[i_] != '\n' && stops.find(s_[i_]) == std::string_view::npos) {
      if (s_[i_] == '#' && !out.empty() && (out.back() == ' ' || out.back() == '\t')) break;
      out.push_back(s_[i_++]);
    }
    return std::string(Trim(out));
  }

  size_t line() const { return line_; }

 private:
  std::string_view s_;
  size_t i_ = 0;
  std::string path_;
  size_t line_;
};

// Map entries {index: name} into a list; the keys must be 0..n-1.
Result<std::vector<std::string>> Dense(std::map<uint64_t, std::string> m, const Scanner& sc) {
  std::vector<std::string> out;
  for (auto& [k, v] : m) {
    if (k != out.size()) {
      return sc.Bad(fmt::format("the map's keys must be 0, 1, 2, ... without gaps; {} is missing",
                                out.size()));
    }
    out.push_back(std::move(v));
  }
  return out;
}

Result<uint64_t> Index(const std::string& k, const Scanner& sc) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(k.c_str(), &end, 10);
  if (k.empty() || k[0] == '-' || *end != '\0' || v >= kMaxNames) {
    return sc.Bad(fmt::format("'{}' is not a class index (0, 1, 2, ...)", EscapeForDisplay(k)));
  }
  return static_cast<uint64_t>(v);
}

Status CheckNames(const std::vector<std::string>& names, const std::string& path) {
  if (names.size() > kMaxNames) {
    return Status::ResourceExhausted(fmt::format("{}: more than {} class names", path, kMaxNames));
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty() || !IsValidUtf8(names[i])) {
      return Status::InvalidArgument(fmt::format(
          "{}: class {} has an empty name or one that is not UTF-8 ('{}')", path, i,
          EscapeForDisplay(names[i])));
    }
  }
  return Status::OK();
}

}  // namespace

Result<std::optional<std::vector<std::string>>> ParseYamlNames(std::string_view text,
                                                               const std::string& path) {
  // The line of the top-level key.
  size_t start = std::string_view::npos, line = 1;
  for (size_t at = 0, n = 1; at <= text.size(); ++n) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(at, end - at);
    if (l.starts_with("names:")) {
      start = at + 6;
      line = n;
      break;
    }
    at = end + 1;
  }
  if (start == std::string_view::npos) return std::optional<std::vector<std::string>>();
  // A flow collection ("[...]", "{...}") runs to its closing bracket; a
  // block to the next line that starts at column 0 with anything but "-"
  // (a block list may sit at the key's indentation), "#" or nothing.
  const char opener = Scanner(text.substr(start), path, line).Peek();
  size_t stop = opener == '[' || opener == '{' ? std::string_view::npos : text.find('\n', start);
  while (stop != std::string_view::npos) {
    const size_t next = stop + 1;
    if (next < text.size() && text[next] != ' ' && text[next] != '\t' && text[next] != '\n' &&
        text[next] != '\r' && text[next] != '-' && text[next] != '#') {
      break;
    }
    stop = text.find('\n', next);
  }
  const std::string_view entry =
      text.substr(start, stop == std::string_view::npos ? std::string_view::npos : stop - start);
  Scanner sc(entry, path, line);
  std::vector<std::string> names;
  const char first = sc.Peek();
  if (first == '[') {
    sc.Eat('[');
    while (!sc.Eat(']')) {
      if (sc.AtEnd()) return sc.Bad("a '[' list is not closed");
      SHARDSET_ASSIGN_OR_RETURN(std::string v, sc.Scalar(",]"));
      names.push_back(std::move(v));
      if (names.size() > kMaxNames) return sc.Bad("too many names");
      if (!sc.Eat(',') && sc.Peek() != ']') return sc.Bad("expected ',' or ']'");
    }
  } else if (first == '{') {
    sc.Eat('{');
    std::map<uint64_t, std::string> m;
    while (!sc.Eat('}')) {
      if (sc.AtEnd()) return sc.Bad("a '{' map is not closed");
      SHARDSET_ASSIGN_OR_RETURN(std::string k, sc.Scalar(":,}"));
      if (!sc.Eat(':')) return sc.Bad("expected 'index: name'");
      SHARDSET_ASSIGN_OR_RETURN(std::string v, sc.Scalar(",}"));
      SHARDSET_ASSIGN_OR_RETURN(uint64_t i, Index(k, sc));
      if (!m.emplace(i, std::move(v)).second) return sc.Bad(fmt::format("index {} twice", i));
      if (!sc.Eat(',') && sc.Peek() != '}') return sc.Bad("expected ',' or '}'");
    }
    SHARDSET_ASSIGN_OR_RETURN(names, Dense(std::move(m), sc));
  } else {
    // A block: "- name" lines, or "index: name" lines.
    std::map<uint64_t, std::string> m;
    bool list = false, map = false;
    while (!sc.AtEnd()) {
      if (sc.Eat('-')) {
        list = true;
        SHARDSET_ASSIGN_OR_RETURN(std::string v, sc.Scalar(""));
        names.push_back(std::move(v));
        if (names.size() > kMaxNames) return sc.Bad("too many names");
      } else {
        map = true;
        SHARDSET_ASSIGN_OR_RETURN(std::string k, sc.Scalar(":"));
        if (!sc.Eat(':')) {
          return sc.Bad("expected a list ('- name' lines, [a, b]) or a map ('0: name' lines, "
                        "{0: a})");
        }
        SHARDSET_ASSIGN_OR_RETURN(std::string v, sc.Scalar(""));
        SHARDSET_ASSIGN_OR_RETURN(uint64_t i, Index(k, sc));
        if (!m.emplace(i, std::move(v)).second) return sc.Bad(fmt::format("index {} twice", i));
      }
      if (list && map) return sc.Bad("mixes '- name' and 'index: name' lines");
    }
    if (map) {
      SHARDSET_ASSIGN_OR_RETURN(names, Dense(std::move(m), sc));
    }
  }
  if (names.empty()) return sc.Bad("no class names");
  SHARDSET_RETURN_IF_ERROR(CheckNames(names, path));
  return std::optional<std::vector<std::string>>(std::move(names));
}

Result<std::vector<std::string>> ReadYoloNames(const std::string& yolo_dir) {
  const std::string yaml = JoinPath(yolo_dir, "data.yaml");
  if (PathExists(yaml)) {
    SHARDSET_ASSIGN_OR_RETURN(std::string text, ReadFile(yaml, kMaxNamesFileBytes));
    SHARDSET_ASSIGN_OR_RETURN(auto names, ParseYamlNames(text, yaml));
    if (names) return std::move(*names);
  }
  const std::string classes = JoinPath(yolo_dir, "classes.txt");
  if (PathExists(classes)) {
    SHARDSET_ASSIGN_OR_RETURN(std::string text, ReadFile(classes, kMaxNamesFileBytes));
    std::vector<std::string> names;
    size_t at = 0;
    while (at < text.size()) {
      size_t end = text.find('\n', at);
      if (end == std::string::npos) end = text.size();
      names.emplace_back(Trim(std::string_view(text).substr(at, end - at)));
      at = end + 1;
    }
    while (!names.empty() && names.back().empty()) names.pop_back();
    if (names.empty()) {
      return Status::InvalidArgument(fmt::format("{}: no class names in it", classes));
    }
    SHARDSET_RETURN_IF_ERROR(CheckNames(names, classes));
    return names;
  }
  return Status::NotFound(fmt::format(
      "{}: no class names: give a data.yaml with 'names:' (or a classes.txt, one name a line)",
      yolo_dir));
}

std::string YamlQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7F) {
      out += fmt::format("\\x{:02X}", u);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

}  // namespace shardset
