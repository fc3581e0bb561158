// shardset serve (docs/serve.md): cpp-httplib answering JSON for the page's
// script and sample bytes straight from the views. Every handler parses its
// numbers strictly and answers 4xx for anything it cannot name; a handler
// that throws is answered 500 by the exception handler, never a crash.
#include "shardset/serve.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <httplib.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/hash.h"
#include "base/strings.h"
#include "image/image.h"
#include "serve/assets.h"
#include "shardset/catalog.h"
#include "shardset/view.h"
#include "view/labels.h"
#include "view/order_stats.h"
#include "view/summary.h"

namespace shardset {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxPerPage = 500;
constexpr int kListenBacklog = 1024;
constexpr uint64_t kMaxStripWidth = 4096;
// Fields shown as text on the sample page up to this size.
constexpr size_t kMaxTextField = 64 << 10;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A decimal without sign, spaces or overflow; nullopt otherwise.
std::optional<uint64_t> ParseNumber(std::string_view s) {
  uint64_t v = 0;
  if (s.empty() || s.size() > 20) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view Extension(std::string_view name) {
  const size_t dot = name.rfind('.');
  return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// What a field's bytes are served as, from its name ("png", "img.jpg").
// Unknown kinds are octet-stream: the browser downloads them rather than
// rendering sample bytes as a page.
const char* ContentType(std::string_view field) {
  static const std::map<std::string, const char*, std::less<>> kTypes = {
      {"png", "image/png"},         {"jpg", "image/jpeg"},        {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},         {"webp", "image/webp"},       {"bmp", "image/bmp"},
      {"txt", "text/plain; charset=utf-8"}, {"cls", "text/plain; charset=utf-8"},
      {"json", "application/json"}, {"annotations", "application/json"}};
  auto it = kTypes.find(Lower(Extension(field)));
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

bool IsImageField(std::string_view field) {
  const std::string e = Lower(Extension(field));
  return e == "png" || e == "jpg" || e == "jpeg";
}

// One page: a dataset, view or catalog directory, and what was computed
// about it (each once, on first request).
struct Page {
  std::string name, kind, target;
  std::unique_ptr<View> view;

  std::mutex mu;
  std::optional<Result<std::string>> info;   // JSON text
  std::optional<Result<std::string>> order;  // JSON text, default width
  std::unique_ptr<LabelColumn> labels;       // for the order strip
  std::optional<Status> labels_status;

  // Background verify: shards done, problems so far, finished.
  std::mutex verify_mu;
  std::string verify_state = "pending";  // pending | running | done | off
  size_t shards_done = 0, shards_total = 0;
  std::vector<std::string> problems;
};

}  // namespace

struct Server::Rep {
  ServeOptions options;
  std::vector<std::unique_ptr<Page>> pages;
  httplib::Server http;
  int port = 0;
  int listen_fd = -1;
  std::thread verifier;
  std::atomic<bool> stopping{false};

  ~Rep() {
    stopping = true;
    if (verifier.joinable()) verifier.join();
  }

  Status AddTarget(const std::string& target) {
    if (IsCatalogFile(target)) {
      SHARDSET_ASSIGN_OR_RETURN(auto catalog, Catalog::Open(target));
      SHARDSET_ASSIGN_OR_RETURN(auto dirs, catalog->Directories());
      if (dirs.empty()) {
        return Status::InvalidArgument(fmt::format(
            "{}: the catalog has no directories to show; add one with shardset dir create",
            target));
      }
      for (const DirectoryInfo& d : dirs) {
        SHARDSET_RETURN_IF_ERROR(AddPage(target + "#" + d.name, "catalog directory"));
      }
      return Status::OK();
    }
    const bool catalog_dir = target.find('#') != std::string::npos &&
                             IsCatalogFile(target.substr(0, target.find('#')));
    return AddPage(target, catalog_dir ? "catalog directory" : "");
  }

  Status AddPage(const std::string& target, std::string kind) {
    SHARDSET_ASSIGN_OR_RETURN(auto view, View::Open(target, options.read));
    auto page = std::make_unique<Page>();
    if (kind.empty()) kind = view->is_view_file() ? "view" : "dataset";
    page->kind = std::move(kind);
    page->target = target;
    const size_t hash = target.rfind('#');
    page->name = page->kind == "catalog directory" ? target.substr(hash + 1)
                                                    : DefaultSourceName(target);
    page->view = std::move(view);
    page->verify_state = options.verify ? "pending" : "off";
    pages.push_back(std::move(page));
    return Status::OK();
  }

  // ---- what pages compute once

  const Result<std::string>& Info(Page& p) {
    std::lock_guard<std::mutex> lock(p.mu);
    if (!p.info) {
      auto summary = Summarize(*p.view, options.label_field);
      if (summary.ok()) {
        json j = {{"name", p.name},
                  {"kind", p.kind},
                  {"info", SummaryJson(*p.view, *summary, options.label_field)}};
        p.info = Dump(j);
      } else {
        p.info = summary.status();
      }
    }
    return *p.info;
  }

  // The label column, built on first use (under p.mu).
  Status Labels(Page& p) {
    if (!p.labels_status) {
      auto spec = LabelSpec::Parse(options.order_by);
      if (!spec.ok()) {
        p.labels_status = spec.status();
      } else {
        p.labels = std::make_unique<LabelColumn>();
        LabelColumn::Options lo;
        lo.hint = "too many to draw an order strip by; choose the label with --order-by";
        p.labels_status = p.labels->Build(*p.view, *spec, lo);
      }
    }
    return *p.labels_status;
  }

  // info --order's numbers plus, for the strip, how many samples of each
  // label fall in each of `width` equal slices of the order.
  Result<std::string> Order(Page& p, uint64_t width) {
    std::lock_guard<std::mutex> lock(p.mu);
    SHARDSET_RETURN_IF_ERROR(Labels(p));
    const LabelColumn& labels = *p.labels;
    const uint64_t n = labels.size();
    OrderStatsOptions oo;
    SHARDSET_ASSIGN_OR_RETURN(OrderStats stats,
                              ComputeOrderStats(labels.data(), n, labels.names(), oo));
    json j = OrderStatsJson(stats);
    j["target"] = p.target;
    j["by"] = options.order_by;
    width = std::max<uint64_t>(1, std::min(width, std::max<uint64_t>(n, 1)));
    std::vector<std::vector<uint32_t>> counts(labels.names().size(),
                                              std::vector<uint32_t>(width, 0));
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t slice = static_cast<uint64_t>((unsigned __int128)i * width / n);
      ++counts[labels[i]][slice];
    }
    json strip = json::array();
    for (size_t l = 0; l < counts.size(); ++l) {
      json row = {{"label", labels.names()[l]}, {"samples", labels.counts()[l]},
                  {"slices", counts[l]}};
      strip.push_back(std::move(row));
    }
    j["strip"] = {{"width", width}, {"samples_per_slice", double(n) / double(width)},
                  {"labels", strip}};
    return Dump(j);
  }

  void RunVerifier() {
    for (auto& page : pages) {
      if (stopping) return;
      {
        std::lock_guard<std::mutex> lock(page->verify_mu);
        page->verify_state = "running";
      }
      VerifyReport report;
      Status st = page->view->Verify(&report, [&](const DatasetVerifyProgress& pr) {
        std::lock_guard<std::mutex> lock(page->verify_mu);
        page->shards_done = pr.shards_done;
        page->shards_total = pr.shards_total;
      });
      std::lock_guard<std::mutex> lock(page->verify_mu);
      page->problems = report.problems;
      if (!st.ok() && report.problems.empty()) page->problems.push_back(st.ToString());
      page->verify_state = "done";
    }
  }

  // ---- handlers

  static void Send(httplib::Response& res, int status, const std::string& body,
                   const char* type) {
    res.status = status;
    res.set_content(body, type);
  }
  static void Error(httplib::Response& res, int status, const std::string& message) {
    Send(res, status, Dump(json{{"error", message}}), "application/json");
  }
  static void SendStatus(httplib::Response& res, const Status& st) {
    int code = 500;
    if (st.code() == Status::Code::kNotFound) code = 404;
    if (st.code() == Status::Code::kInvalidArgument) code = 400;
    Error(res, code, st.ToString());
  }

  // The page of a URL's first number; answers 404 and returns null when there is none.
  Page* PageOf(const httplib::Request& req, httplib::Response& res) {
    auto n = ParseNumber(req.matches[1].str());
    if (!n || *n >= pages.size()) {
      Error(res, 404, fmt::format("no page {}; see /api/pages", req.matches[1].str()));
      return nullptr;
    }
    return pages[*n].get();
  }

  // A sample position from the URL's second number (404 past the end).
  std::optional<uint64_t> PositionOf(const Page& p, const httplib::Request& req,
                                     httplib::Response& res) {
    auto pos = ParseNumber(req.matches[2].str());
    if (!pos) {
      Error(res, 400, fmt::format("'{}' is not a sample position", req.matches[2].str()));
      return std::nullopt;
    }
    if (*pos >= p.view->num_samples()) {
      Error(res, 404, fmt::format("{} has {} samples; there is no sample {}", p.name,
                                  p.view->num_samples(), *pos));
      return std::nullopt;
    }
    return pos;
  }

  // A query parameter as a number within [lo, hi]; `fallback` when absent.
  static std::optional<uint64_t> Query(const httplib::Request& req, httplib::Response& res,
                                       const char* name, uint64_t fallback, uint64_t lo,
                                       uint64_t hi) {
    if (!req.has_param(name)) return fallback;
    const std::string text = req.get_param_value(name);
    auto v = ParseNumber(text);
    if (!v || *v < lo || *v > hi) {
      Error(res, 400, fmt::format("{}={} is not a number from {} to {}", name,
                                  EscapeForDisplay(text), lo, hi));
      return std::nullopt;
    }
    return v;
  }

  // Bytes that never change while the shards do not: revalidated by ETag.
  static bool NotModified(const httplib::Request& req, httplib::Response& res,
                          const std::string& etag) {
    res.set_header("ETag", etag);
    res.set_header("Cache-Control", "private, max-age=60");
    if (req.get_header_value("If-None-Match") == etag) {
      res.status = 304;
      return true;
    }
    return false;
  }

  json SampleSummary(const Page& p, uint64_t pos, const Sample& s) const {
    json j = {{"pos", pos}};
    PutText(&j, "key", s.key);
    if (auto label = SampleLabel(s, options.label_field); label.ok()) PutText(&j, "label", *label);
    for (const Field& f : s.fields) {
      if (!IsImageField(f.name)) continue;
      j["image"] = std::string(f.name);
      if (auto size = ReadImageSize(f.data); size.ok()) {
        j["width"] = size->width;
        j["height"] = size->height;
      }
      break;
    }
    if (const Field* a = s.Find(kAnnotationsField)) {
      json parsed = json::parse(a->data, nullptr, false);
      if (!parsed.is_discarded()) j["annotations"] = std::move(parsed);
    }
    return j;
  }

  // Text that may not be UTF-8 goes out with its bad bytes replaced, and
  // the exact bytes in hex beside it.
  static void PutText(json* j, const std::string& name, std::string_view text) {
    (*j)[name] = std::string(text);
    if (!IsValidUtf8(text)) (*j)[name + "_hex"] = HexBytes(text);
  }
  static std::string HexBytes(std::string_view s) {
    std::string out;
    for (unsigned char c : s) out += fmt::format("{:02x}", c);
    return out;
  }

  void Routes() {
    // The page itself: one document whose script draws every view of it.
    auto shell = [](const httplib::Request&, httplib::Response& res) {
      const Asset* a = FindAsset("index.html");
      res.set_header("Cache-Control", "no-cache");
      res.set_content(std::string(a->data), "text/html; charset=utf-8");
    };
    http.Get("/", shell);
    http.Get(R"(/p/(\d+))", [this, shell](const httplib::Request& req, httplib::Response& res) {
      if (PageOf(req, res)) shell(req, res);
    });
    http.Get(R"(/p/(\d+)/s/(\d+))",
             [this, shell](const httplib::Request& req, httplib::Response& res) {
               Page* p = PageOf(req, res);
               if (p && PositionOf(*p, req, res)) shell(req, res);
             });
    http.Get(R"(/static/([a-z]+\.[a-z]+))", [](const httplib::Request& req,
                                                httplib::Response& res) {
      const Asset* a = FindAsset(req.matches[1].str());
      if (!a) return Error(res, 404, "no such file");
      if (NotModified(req, res, fmt::format("\"{}\"", Hex64(Xxh3(a->data))))) return;
      res.set_content(std::string(a->data), a->content_type);
    });

    http.Get("/api/pages", [this](const httplib::Request&, httplib::Response& res) {
      json list = json::array();
      for (size_t i = 0; i < pages.size(); ++i) {
        const Page& p = *pages[i];
        json j = {{"id", i}, {"kind", p.kind}, {"samples", p.view->num_samples()}};
        PutText(&j, "name", p.name);
        PutText(&j, "target", p.target);
        list.push_back(std::move(j));
      }
      Send(res, 200, Dump(list), "application/json");
    });
    http.Get(R"(/api/p/(\d+)/info)", [this](const httplib::Request& req, httplib::Response& res) {
      Page* p = PageOf(req, res);
      if (!p) return;
      const Result<std::string>& info = Info(*p);
      if (!info.ok()) return SendStatus(res, info.status());
      Send(res, 200, *info, "application/json");
    });
    http.Get(R"(/api/p/(\d+)/order)", [this](const httplib::Request& req, httplib::Response& res) {
      Page* p = PageOf(req, res);
      if (!p) return;
      auto width = Query(req, res, "width", 1000, 1, kMaxStripWidth);
      if (!width) return;
      auto order = Order(*p, *width);
      if (!order.ok()) return SendStatus(res, order.status());
      Send(res, 200, *order, "application/json");
    });
    http.Get(R"(/api/p/(\d+)/shards)", [this](const httplib::Request& req,
                                              httplib::Response& res) {
      Page* p = PageOf(req, res);
      if (!p) return;
      Send(res, 200, Dump(Shards(*p)), "application/json");
    });
    http.Get(R"(/api/p/(\d+)/samples)", [this](const httplib::Request& req,
                                               httplib::Response& res) {
      Page* p = PageOf(req, res);
      if (!p) return;
      auto per = Query(req, res, "per", 48, 1, kMaxPerPage);
      if (!per) return;
      const uint64_t n = p->view->num_samples();
      const uint64_t pages_total = std::max<uint64_t>(1, (n + *per - 1) / *per);
      auto page = Query(req, res, "page", 0, 0, UINT64_MAX);
      if (!page) return;
      if (*page >= pages_total) {
        return Error(res, 404, fmt::format("{} has {} pages of {} samples; there is no page {}",
                                           p->name, pages_total, *per, *page));
      }
      json samples = json::array();
      Sample s;
      for (uint64_t pos = *page * *per; pos < std::min(n, (*page + 1) * *per); ++pos) {
        Status st = p->view->Read(pos, &s);
        if (!st.ok()) {
          json j = {{"pos", pos}};
          PutText(&j, "error", st.ToString());
          samples.push_back(std::move(j));
          continue;
        }
        samples.push_back(SampleSummary(*p, pos, s));
      }
      json j = {{"page", *page}, {"pages", pages_total}, {"per", *per},
                {"samples_total", n}, {"samples", samples}};
      Send(res, 200, Dump(j), "application/json");
    });
    http.Get(R"(/api/p/(\d+)/sample/(\d+))", [this](const httplib::Request& req,
                                                    httplib::Response& res) {
      Page* p = nullptr;
      uint64_t pos = 0;
      Sample s;
      if (!SampleOf(req, res, &p, &pos, &s)) return;
      json j = SampleSummary(*p, pos, s);
      json fields = json::array();
      for (const Field& f : s.fields) {
        json fj = {{"bytes", f.data.size()}, {"derived", bool(f.flags & kFieldDerived)},
                   {"type", ContentType(f.name)}};
        PutText(&fj, "name", f.name);
        if (f.data.size() <= kMaxTextField && IsValidUtf8(f.data) &&
            std::none_of(f.data.begin(), f.data.end(), [](char c) {
              return c == 0;
            })) {
          fj["text"] = std::string(f.data);
        }
        fields.push_back(std::move(fj));
      }
      j["fields"] = std::move(fields);
      j["samples_total"] = p->view->num_samples();
      const ViewEntry e = p->view->entry(pos);
      PutText(&j, "source", p->view->source(e.source).name);
      j["ordinal"] = e.ordinal;
      Send(res, 200, Dump(j), "application/json");
    });
    http.Get(R"(/api/p/(\d+)/key/(.+))", [this](const httplib::Request& req,
                                                httplib::Response& res) {
      Page* p = PageOf(req, res);
      if (!p) return;
      auto pos = p->view->Find(req.matches[2].str());
      if (!pos.ok()) return SendStatus(res, pos.status());
      Send(res, 200, Dump(json{{"pos", *pos}}), "application/json");
    });
    // A field's bytes (httplib answers Range requests from them), and a
    // thumbnail of an image field.
    http.Get(R"(/raw/(\d+)/(\d+)/(.+))", [this](const httplib::Request& req,
                                                httplib::Response& res) {
      FieldBytes(req, res, /*thumbnail=*/false);
    });
    http.Get(R"(/thumb/(\d+)/(\d+)/(.+))", [this](const httplib::Request& req,
                                                  httplib::Response& res) {
      FieldBytes(req, res, /*thumbnail=*/true);
    });

    http.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                  std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      Error(res, 500, what);
    });
    // Unrouted paths (../, unknown verbs) and methods get a JSON 4xx too.
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.body.empty()) {
        Error(res, res.status, fmt::format("{} {}: nothing here", req.method,
                                           EscapeForDisplay(req.path)));
      }
    });
  }

  // The sample a URL names by page and position, read; false when the
  // answer (4xx, or 500 for a sample that fails its checksum) is given.
  bool SampleOf(const httplib::Request& req, httplib::Response& res, Page** page, uint64_t* pos,
                Sample* s) {
    *page = PageOf(req, res);
    if (!*page) return false;
    auto at = PositionOf(**page, req, res);
    if (!at) return false;
    *pos = *at;
    if (Status st = (*page)->view->Read(*pos, s); !st.ok()) {
      SendStatus(res, st);
      return false;
    }
    return true;
  }

  void FieldBytes(const httplib::Request& req, httplib::Response& res, bool thumbnail) {
    Page* p = nullptr;
    uint64_t pos = 0;
    Sample s;
    if (!SampleOf(req, res, &p, &pos, &s)) return;
    const std::string name = req.matches[3].str();
    const Field* f = s.Find(name);
    if (!f) {
      return Error(res, 404, fmt::format("sample {} ({}) has no field '{}'", pos,
                                         EscapeForDisplay(s.key), EscapeForDisplay(name)));
    }
    const std::string etag =
        fmt::format("\"{}-{}\"", Hex64(Xxh3(f->data)), thumbnail ? options.thumbnail_size : 0);
    if (NotModified(req, res, etag)) return;
    if (!thumbnail) {
      res.set_content(std::string(f->data), ContentType(name));
      return;
    }
    bool jpeg = false;
    auto thumb = MakeThumbnail(f->data, options.thumbnail_size, &jpeg);
    if (!thumb.ok()) {
      return Error(res, 422, fmt::format("sample {} ({}), field '{}': {}", pos,
                                         EscapeForDisplay(s.key), EscapeForDisplay(name),
                                         thumb.status().ToString()));
    }
    res.set_content(std::move(*thumb), jpeg ? "image/jpeg" : ContentType(name));
  }

  json Shards(Page& p) {
    json sources = json::array();
    std::lock_guard<std::mutex> lock(p.verify_mu);
    size_t index = 0;  // over every source's shards, in Verify's order
    for (size_t i = 0; i < p.view->num_sources(); ++i) {
      const Dataset& ds = p.view->dataset(i);
      json shards = json::array();
      for (size_t k = 0; k < ds.num_shards(); ++k, ++index) {
        const ManifestShard& ms = ds.manifest().shards[k];
        const std::string location = ds.shard_location(k);
        json s = {{"format", std::string(FormatName(ms.format))},
                  {"samples", ms.num_samples},
                  {"bytes", ms.file_size}};
        PutText(&s, "path", location);
        std::vector<std::string> problems;
        for (const std::string& line : p.problems) {
          if (line.find(location) != std::string::npos) problems.push_back(line);
        }
        std::string status = p.verify_state == "off" ? "not verified" : "pending";
        if (!problems.empty()) {
          status = "failed";
        } else if (p.verify_state == "done" ||
                   (p.verify_state == "running" && index < p.shards_done)) {
          status = "ok";
        }
        s["status"] = status;
        s["problems"] = problems;
        shards.push_back(std::move(s));
      }
      json src = {{"samples", ds.num_samples()}, {"shards", shards}};
      PutText(&src, "name", p.view->source(i).name);
      sources.push_back(std::move(src));
    }
    return {{"verify", p.verify_state},
            {"shards_done", p.shards_done},
            {"shards_total", p.shards_total},
            {"problems", p.problems},
            {"sources", sources}};
  }
};

Server::Server(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
Server::~Server() { Stop(); }

Result<std::unique_ptr<Server>> Server::Open(const std::vector<std::string>& targets,
                                             const ServeOptions& options) {
  if (targets.empty()) return Status::InvalidArgument("serve needs at least one TARGET");
  if (options.thumbnail_size == 0 || options.thumbnail_size > 4096) {
    return Status::InvalidArgument("--thumbnail-size must be from 1 to 4096 pixels");
  }
  if (auto spec = LabelSpec::Parse(options.order_by); !spec.ok()) {
    return spec.status().WithPrefix("--order-by");
  }
  auto rep = std::make_unique<Rep>();
  rep->options = options;
  for (const std::string& t : targets) SHARDSET_RETURN_IF_ERROR(rep->AddTarget(t));
  const int threads = options.threads > 0 ? options.threads : 32;
  rep->http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // Each connection holds a thread while it is kept alive: one request per
  // connection keeps 1,000 clients from starving each other.
  rep->http.set_keep_alive_max_count(1);
  rep->http.set_payload_max_length(1 << 20);
  // Debian's libcpp-httplib is compiled with a listen backlog of 5: a burst of
  // clients (a load test, a grid of thumbnails in many tabs) overflows it and
  // waits seconds for SYN retries. The socket is noted here, before bind, and
  // listened on again with a deeper queue after it (Bind).
  Rep* r = rep.get();
  rep->http.set_socket_options([r](int fd) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    // Inherited by accepted connections: httplib writes a response's header
    // and body separately, and Nagle would hold the body back for the
    // client's delayed ACK (40 ms per request on a kept-alive connection).
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    r->listen_fd = fd;
  });
  rep->Routes();
  return std::unique_ptr<Server>(new Server(std::move(rep)));
}

Status Server::Bind() {
  const int port = rep_->options.port == 0
                       ? rep_->http.bind_to_any_port(rep_->options.host)
                       : (rep_->http.bind_to_port(rep_->options.host, rep_->options.port)
                              ? rep_->options.port
                              : -1);
  if (port < 0) {
    return Status::IOError(fmt::format(
        "cannot listen on {}:{} (taken, or not an address of this machine); choose another "
        "with --host/--port",
        rep_->options.host, rep_->options.port));
  }
  rep_->port = port;
  if (rep_->listen_fd >= 0) ::listen(rep_->listen_fd, kListenBacklog);
  return Status::OK();
}

int Server::port() const { return rep_->port; }

std::vector<std::string> Server::pages() const {
  std::vector<std::string> out;
  for (const auto& p : rep_->pages) out.push_back(p->name + "\t" + p->target);
  return out;
}

Status Server::Run() {
  if (rep_->options.verify && !rep_->verifier.joinable()) {
    rep_->verifier = std::thread([this] { rep_->RunVerifier(); });
  }
  if (!rep_->http.listen_after_bind()) {
    if (rep_->stopping) return Status::OK();
    return Status::IOError(fmt::format("{}:{}: the server stopped accepting connections",
                                       rep_->options.host, rep_->port));
  }
  return Status::OK();
}

void Server::Stop() {
  rep_->stopping = true;
  rep_->http.stop();
}

}  // namespace shardset
