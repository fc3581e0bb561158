// shardset._shardset: the thin pybind11 layer over the C++ library
// (docs/python.md). Status codes become the exception classes below; the GIL
// is released around every read, write and long call. Field bytes come back
// as read-only memoryviews that point into the shard's memory map (or into
// the sample's own decoded bytes) and keep what they point into alive: no
// copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "base/strings.h"
#include "image/image.h"
#include "shardset/annotation_io.h"
#include "shardset/catalog.h"
#include "shardset/dataset.h"
#include "shardset/pack.h"
#include "shardset/select.h"
#include "shardset/shuffle.h"
#include "shardset/view.h"
#include "shardset/writer.h"

namespace py = pybind11;

namespace shardset::python {
namespace {

// A label field's text as an integer: optional sign, decimal digits, then
// only whitespace (what pack and Writer store for int labels).
std::optional<int64_t> ParseLabel(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

// ------------------------------------------------------------ errors

struct StatusError {
  Status status;
};

PyObject* g_errors[8] = {};  // by Status::Code

PyObject* MakeError(py::module_& m, const char* name, PyObject* base, std::vector<PyObject*> more,
                    const char* doc) {
  std::vector<PyObject*> bases{base};
  bases.insert(bases.end(), more.begin(), more.end());
  py::tuple t(bases.size());
  for (size_t i = 0; i < bases.size(); ++i) t[i] = py::reinterpret_borrow<py::object>(bases[i]);
  const std::string full = std::string("shardset.") + name;
  PyObject* cls = PyErr_NewExceptionWithDoc(full.c_str(), doc, t.ptr(), nullptr);
  if (!cls) throw py::error_already_set();
  m.add_object(name, py::reinterpret_borrow<py::object>(cls));
  return cls;
}

void Check(const Status& s) {
  if (!s.ok()) throw StatusError{s};
}

template <typename T>
T Take(Result<T> r) {
  if (!r.ok()) throw StatusError{r.status()};
  return std::move(r).value();
}

ReadOptions MakeReadOptions(bool verify_checksums) {
  ReadOptions o;
  o.verify_checksums = verify_checksums;
  return o;
}

uint64_t SizeArg(const py::object& v, const char* what) {
  if (py::isinstance<py::int_>(v)) {
    const long long n = v.cast<long long>();
    if (n < 0) Check(Status::InvalidArgument(std::string(what) + " must be 0 or more"));
    return static_cast<uint64_t>(n);
  }
  return Take(ParseSize(v.cast<std::string>()));
}

// ------------------------------------------------------------ samples

// What field bytes keep alive when they are not in a dataset's map: the
// sample's own storage (decoded bytes).
struct Owned {
  std::string bytes;
};

// A read-only buffer over bytes another object owns (the dataset, whose
// maps hold them, or an Owned capsule). Fields are memoryviews of it, which
// keep it, and so the owner, alive: no copy, and about a tenth of what a
// numpy array costs to make.
struct BytesRef {
  PyObject_HEAD
  const char* data;
  Py_ssize_t size;
  PyObject* owner;
};

int BytesRefGetBuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* r = reinterpret_cast<BytesRef*>(self);
  return PyBuffer_FillInfo(view, self, const_cast<char*>(r->data), r->size, /*readonly=*/1,
                           flags);
}

void BytesRefDealloc(PyObject* self) {
  auto* r = reinterpret_cast<BytesRef*>(self);
  Py_XDECREF(r->owner);
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyTypeObject* g_bytes_ref_type = nullptr;
PyObject* g_sample_type = nullptr;  // shardset.Sample, registered at import
PyObject* g_key_name = nullptr;     // "key", "index": Sample's slots
PyObject* g_index_name = nullptr;

void InitTypes(py::module_& m) {
  static PyType_Slot slots[] = {{Py_bf_getbuffer, reinterpret_cast<void*>(BytesRefGetBuffer)},
                                {Py_tp_dealloc, reinterpret_cast<void*>(BytesRefDealloc)},
                                {0, nullptr}};
  static PyType_Spec spec = {"shardset._BytesRef", sizeof(BytesRef), 0, Py_TPFLAGS_DEFAULT,
                             slots};
  g_bytes_ref_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&spec));
  if (!g_bytes_ref_type) throw py::error_already_set();
  g_key_name = PyUnicode_InternFromString("key");
  g_index_name = PyUnicode_InternFromString("index");
  m.def("_register_sample_type", [](py::object cls) {
    Py_XDECREF(g_sample_type);
    g_sample_type = cls.release().ptr();
  });
}

// A memoryview of `size` bytes at `data`, owned by `owner`.
py::object MemoryView(const char* data, size_t size, PyObject* owner) {
  auto* r = PyObject_New(BytesRef, g_bytes_ref_type);
  if (!r) throw py::error_already_set();
  r->data = data;
  r->size = static_cast<Py_ssize_t>(size);
  Py_INCREF(owner);
  r->owner = owner;
  PyObject* mv = PyMemoryView_FromObject(reinterpret_cast<PyObject*>(r));
  Py_DECREF(r);
  if (!mv) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(mv);
}

// Keys and field names are bytes (tar and zip member names, file names, a
// damaged tsv cell): a str of their UTF-8, any other byte as a lone surrogate
// (surrogateescape, as os.fsdecode does), never a UnicodeDecodeError that
// names no sample. KeyBytes is the inverse, for keys given back to find().
py::str Text(std::string_view s) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()),
                                     "surrogateescape");
  if (!o) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(o);
}

std::string KeyBytes(const py::object& key) {
  if (PyBytes_Check(key.ptr())) return key.cast<std::string>();
  PyObject* b = PyUnicode_AsEncodedString(key.ptr(), "utf-8", "surrogateescape");
  if (!b) throw py::error_already_set();
  py::bytes owned = py::reinterpret_steal<py::bytes>(b);
  return owned.cast<std::string>();
}

// A shardset.Sample (a dict subclass with slots key and index) made without
// running its Python __init__.
py::object NewSample(const std::string& key, uint64_t pos) {
  if (!g_sample_type) throw py::type_error("shardset.Sample is not registered");
  PyObject* s = PyDict_Type.tp_new(reinterpret_cast<PyTypeObject*>(g_sample_type),
                                   py::tuple().ptr(), nullptr);
  if (!s) throw py::error_already_set();
  py::object sample = py::reinterpret_steal<py::object>(s);
  py::str k = Text(key);
  py::int_ i(pos);
  if (PyObject_SetAttr(s, g_key_name, k.ptr()) != 0 ||
      PyObject_SetAttr(s, g_index_name, i.ptr()) != 0) {
    throw py::error_already_set();
  }
  return sample;
}

// Sample `s` (read at position `pos`) as a shardset.Sample of memoryviews.
// Bytes in s.storage move into one owner shared by the views over them;
// the others are in the dataset's maps.
py::object ToPython(Sample& s, uint64_t pos, py::handle dataset) {
  py::object sample = NewSample(s.key, pos);
  // Names and storage offsets first: both may point into the storage that
  // moves below.
  const char* lo = s.storage.data();
  const char* hi = lo + s.storage.size();
  std::vector<py::str> names;
  std::vector<size_t> in_storage(s.fields.size(), SIZE_MAX);
  names.reserve(s.fields.size());
  for (size_t i = 0; i < s.fields.size(); ++i) {
    const Field& f = s.fields[i];
    names.emplace_back(Text(f.name));
    const char* p = f.data.data();
    if (!s.storage.empty() && p >= lo && p + f.data.size() <= hi) {
      in_storage[i] = static_cast<size_t>(p - lo);
    }
  }
  py::object owner;
  Owned* kept = nullptr;
  for (size_t i = 0; i < s.fields.size(); ++i) {
    const Field& f = s.fields[i];
    py::object value;
    if (in_storage[i] != SIZE_MAX) {
      if (!owner) {
        kept = new Owned{std::move(s.storage)};
        owner = py::capsule(kept, [](void* o) { delete static_cast<Owned*>(o); });
      }
      value = MemoryView(kept->bytes.data() + in_storage[i], f.data.size(), owner.ptr());
    } else {
      value = MemoryView(f.data.data(), f.data.size(), dataset.ptr());
    }
    if (PyDict_SetItem(sample.ptr(), names[i].ptr(), value.ptr()) != 0) {
      throw py::error_already_set();
    }
  }
  return sample;
}

// A decoded image as an HWC uint8 array owning its pixels.
py::array ImageArray(Image&& img) {
  auto* kept = new Image(std::move(img));
  py::capsule owner(kept, [](void* p) { delete static_cast<Image*>(p); });
  py::array a(py::dtype::of<uint8_t>(),
              {static_cast<py::ssize_t>(kept->height), static_cast<py::ssize_t>(kept->width),
               static_cast<py::ssize_t>(kept->channels)},
              kept->pixels.data(), owner);
  return a;
}

// ------------------------------------------------------------ datasets

class PyDataset {
 public:
  PyDataset(std::vector<std::string> targets, bool verify_checksums) {
    py::gil_scoped_release release;
    view_ = Take(View::Open(targets, MakeReadOptions(verify_checksums)));
  }
  const View& view() const { return *view_; }
  uint64_t size() const { return view_->num_samples(); }

  uint64_t Position(long long i) const {
    const long long n = static_cast<long long>(size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) {
      throw py::index_error(fmt_index(i, n, view_->target()));
    }
    return static_cast<uint64_t>(i);
  }

  // A shardset.Sample.
  py::object Read(py::object self, long long i) const {
    const uint64_t pos = Position(i);
    Sample s;
    {
      py::gil_scoped_release release;
      Check(view_->Read(pos, &s));
    }
    return ToPython(s, pos, self);
  }

  long long Find(const py::object& key_object) const {
    const std::string key = KeyBytes(key_object);
    Result<uint64_t> r = [&] {
      py::gil_scoped_release release;
      return view_->Find(key);
    }();
    if (!r.ok() && r.status().code() == Status::Code::kNotFound) return -1;
    return static_cast<long long>(Take(std::move(r)));
  }

  py::str Key(long long i) const {
    const uint64_t pos = Position(i);
    Result<std::string> key = [&] {
      py::gil_scoped_release release;
      return view_->Key(pos);
    }();
    return Text(Take(std::move(key)));
  }

  // Samples at `positions`, read (and the fields in `decode` decoded to HWC
  // arrays) by `threads` threads without the GIL; a list of shardset.Sample.
  struct Item {
    Sample sample;
    std::vector<std::pair<size_t, Image>> images;  // field index, pixels
    Status status;
  };

  // Reads (and decodes the `decode` fields of) the samples at `pos` in
  // `threads` threads, without the GIL.
  std::vector<Item> ReadItems(const std::vector<uint64_t>& pos,
                              const std::vector<std::string>& decode, int threads) const {
    std::vector<Item> items(pos.size());
    py::gil_scoped_release release;
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t k; (k = next.fetch_add(1)) < pos.size();) {
        Item& it = items[k];
        it.status = view_->Read(pos[k], &it.sample);
        if (!it.status.ok()) continue;
        for (size_t f = 0; f < it.sample.fields.size() && it.status.ok(); ++f) {
          const Field& field = it.sample.fields[f];
          if (std::find(decode.begin(), decode.end(), field.name) == decode.end()) continue;
          auto img = DecodeImage(field.data);
          if (!img.ok()) {
            it.status = img.status().WithPrefix(
                fmt_sample(view_->target(), pos[k], it.sample.key, field.name));
          } else {
            it.images.emplace_back(f, std::move(*img));
          }
        }
      }
    };
    const int n = std::clamp<int>(threads, 1, 64);
    std::vector<std::thread> pool;
    for (int t = 1; t < n && static_cast<size_t>(t) < pos.size(); ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    return items;
  }

  std::vector<uint64_t> Positions(const std::vector<long long>& positions) const {
    std::vector<uint64_t> pos(positions.size());
    for (size_t i = 0; i < positions.size(); ++i) pos[i] = Position(positions[i]);
    return pos;
  }

  py::list ReadBatch(py::object self, const std::vector<long long>& positions,
                     const std::vector<std::string>& decode, int threads) const {
    const std::vector<uint64_t> pos = Positions(positions);
    std::vector<Item> items = ReadItems(pos, decode, threads);
    py::list out;
    for (size_t k = 0; k < items.size(); ++k) {
      Item& it = items[k];
      Check(it.status);
      std::vector<std::string> decoded_names;
      for (auto& [f, img] : it.images) decoded_names.emplace_back(it.sample.fields[f].name);
      py::object sample = ToPython(it.sample, pos[k], self);
      for (size_t j = 0; j < it.images.size(); ++j) {
        sample[Text(decoded_names[j])] = ImageArray(std::move(it.images[j].second));
      }
      out.append(sample);
    }
    return out;
  }

  // A batch as one buffer per field (docs/python.md "Packed batches"):
  // "__key__" a list, "__index__" int64 [B]; an undecoded field a tuple
  // (uint8 [total bytes], int64 offsets [B + 1]), empty where a sample lacks
  // it; a decoded field uint8 [B, H, W, C] (every image one shape); `label`
  // int64 [B] parsed from its text. Two allocations per field instead of
  // Python objects per sample.
  py::dict ReadPacked(const std::vector<long long>& positions,
                      const std::vector<std::string>& decode, const std::string& label,
                      int threads) const {
    const std::vector<uint64_t> pos = Positions(positions);
    std::vector<Item> items = ReadItems(pos, decode, threads);
    for (const Item& it : items) Check(it.status);
    const size_t n = items.size();
    // Fields in order of first appearance, with each sample's field index.
    std::vector<std::string> names;
    std::vector<std::vector<int>> at;  // [field][sample] -> index in sample.fields, -1
    for (size_t k = 0; k < n; ++k) {
      const auto& fields = items[k].sample.fields;
      for (size_t f = 0; f < fields.size(); ++f) {
        auto it = std::find(names.begin(), names.end(), fields[f].name);
        size_t j = it - names.begin();
        if (it == names.end()) {
          names.emplace_back(fields[f].name);
          at.emplace_back(n, -1);
        }
        at[j][k] = static_cast<int>(f);
      }
    }
    py::dict out;
    py::list keys;
    py::array_t<int64_t> index(static_cast<py::ssize_t>(n));
    for (size_t k = 0; k < n; ++k) {
      keys.append(Text(items[k].sample.key));
      index.mutable_data()[k] = static_cast<int64_t>(pos[k]);
    }
    out["__key__"] = keys;
    out["__index__"] = index;
    for (size_t j = 0; j < names.size(); ++j) {
      const std::string& name = names[j];
      auto where = [&](size_t k) -> const Field* {
        return at[j][k] < 0 ? nullptr : &items[k].sample.fields[at[j][k]];
      };
      if (name == label) {
        py::array_t<int64_t> v(static_cast<py::ssize_t>(n));
        for (size_t k = 0; k < n; ++k) {
          const Field* f = where(k);
          auto parsed = f ? ParseLabel(f->data) : std::optional<int64_t>();
          if (!parsed) {
            throw py::value_error(fmt_sample(view_->target(), pos[k], items[k].sample.key, name) +
                                  ": not an integer label; read it with label=None");
          }
          v.mutable_data()[k] = *parsed;
        }
        out[Text(name)] = v;
        continue;
      }
      if (std::find(decode.begin(), decode.end(), name) != decode.end()) {
        out[Text(name)] = StackImages(items, name, pos);
        continue;
      }
      py::array_t<int64_t> offsets(static_cast<py::ssize_t>(n + 1));
      int64_t* o = offsets.mutable_data();
      o[0] = 0;
      for (size_t k = 0; k < n; ++k) o[k + 1] = o[k] + (where(k) ? where(k)->data.size() : 0);
      py::array_t<uint8_t> data(static_cast<py::ssize_t>(o[n]));
      uint8_t* d = data.mutable_data();
      {
        py::gil_scoped_release release;
        for (size_t k = 0; k < n; ++k) {
          if (const Field* f = where(k)) std::memcpy(d + o[k], f->data.data(), f->data.size());
        }
      }
      out[Text(name)] = py::make_tuple(data, offsets);
    }
    return out;
  }

  // The decoded images of field `name` as one array [B, H, W, C].
  py::array StackImages(const std::vector<Item>& items, const std::string& name,
                        const std::vector<uint64_t>& pos) const {
    const Image* first = nullptr;
    std::vector<const Image*> imgs(items.size());
    for (size_t k = 0; k < items.size(); ++k) {
      for (auto& [f, img] : items[k].images) {
        if (items[k].sample.fields[f].name == name) imgs[k] = &img;
      }
      if (!imgs[k]) {
        throw py::value_error(fmt_sample(view_->target(), pos[k], items[k].sample.key, name) +
                              ": the sample has no such field to decode");
      }
      if (!first) first = imgs[k];
      if (imgs[k]->height != first->height || imgs[k]->width != first->width ||
          imgs[k]->channels != first->channels) {
        throw py::value_error(
            fmt_sample(view_->target(), pos[k], items[k].sample.key, name) +
            fmt::format(": {}x{}x{} pixels, the batch's first image is {}x{}x{}; packed batches "
                        "need one shape (resize in a transform and use packed=False)",
                        imgs[k]->height, imgs[k]->width, imgs[k]->channels, first->height,
                        first->width, first->channels));
      }
    }
    const size_t each = first ? first->pixels.size() : 0;
    py::array_t<uint8_t> a({static_cast<py::ssize_t>(items.size()),
                            static_cast<py::ssize_t>(first ? first->height : 0),
                            static_cast<py::ssize_t>(first ? first->width : 0),
                            static_cast<py::ssize_t>(first ? first->channels : 0)});
    uint8_t* d = a.mutable_data();
    {
      py::gil_scoped_release release;
      for (size_t k = 0; k < imgs.size(); ++k) std::memcpy(d + k * each, imgs[k]->pixels.data(), each);
    }
    return a;
  }

  py::dict Info() const {
    py::dict d;
    d["target"] = view_->target();
    d["samples"] = view_->num_samples();
    d["is_view"] = view_->is_view_file();
    d["recipe"] = view_->recipe_json();
    py::list sources;
    for (size_t i = 0; i < view_->num_sources(); ++i) {
      const ViewSource& s = view_->source(i);
      py::dict sd;
      sd["name"] = s.name;
      sd["targets"] = s.targets;
      sd["samples"] = s.num_samples;
      sd["selected"] = s.selected;
      sd["shards"] = s.shards.size();
      sources.append(sd);
    }
    d["sources"] = sources;
    return d;
  }

  py::dict Verify() const {
    VerifyReport report;
    Status s;
    {
      py::gil_scoped_release release;
      s = view_->Verify(&report);
    }
    py::dict d;
    d["ok"] = s.ok() && report.problems.empty();
    d["samples_checked"] = report.samples_checked;
    d["problems"] = report.problems;
    if (!s.ok()) d["error"] = s.ToString();
    return d;
  }

 private:
  static std::string fmt_index(long long i, long long n, const std::string& target) {
    return "sample " + std::to_string(i) + " is out of range: " + target + " has " +
           std::to_string(n) + " samples";
  }
  static std::string fmt_sample(const std::string& target, uint64_t pos, const std::string& key,
                                std::string_view field) {
    return target + ": sample " + std::to_string(pos) + " ('" + key + "'), field '" +
           std::string(field) + "'";
  }

  std::unique_ptr<View> view_;
};

// ------------------------------------------------------------ writer

InputSample ToInput(const std::string& key, const py::dict& fields) {
  InputSample s;
  s.key = key;
  for (auto [k, v] : fields) {
    InputField f;
    f.name = py::cast<std::string>(k);
    if (py::isinstance<py::str>(v)) {
      f.data = v.cast<std::string>();
    } else if (py::isinstance<py::int_>(v) && !py::isinstance<py::bool_>(v)) {
      f.data = py::str(v).cast<std::string>();
    } else if (PyObject_CheckBuffer(v.ptr())) {
      Py_buffer view;
      if (PyObject_GetBuffer(v.ptr(), &view, PyBUF_C_CONTIGUOUS) == 0) {
        f.data.assign(static_cast<const char*>(view.buf), static_cast<size_t>(view.len));
        PyBuffer_Release(&view);
      } else {
        // Not C-contiguous (a strided numpy slice): bytes() copies it in order.
        PyErr_Clear();
        py::bytes b = py::reinterpret_steal<py::bytes>(PyBytes_FromObject(v.ptr()));
        if (!b) throw py::error_already_set();
        f.data = std::string(b);
      }
    } else {
      throw py::type_error("field '" + f.name + "' of sample '" + key +
                           "': give bytes, a buffer (numpy array, memoryview), str or int, not " +
                           py::str(py::type::of(v)).cast<std::string>());
    }
    s.fields.push_back(std::move(f));
  }
  return s;
}

class PyWriter {
 public:
  PyWriter(const std::string& path, const std::string& format, py::object shard_size,
           uint64_t shard_samples, bool resume, bool overwrite, bool sync, int zip_deflate,
           int gzip_level) {
    WriterOptions o;
    o.format = Take(ParseFormat(format));
    o.shard_size = SizeArg(shard_size, "shard_size");
    o.shard_samples = shard_samples;
    o.resume = resume;
    o.overwrite = overwrite;
    o.sync = sync;
    o.zip_deflate_level = zip_deflate;
    o.gzip_level = gzip_level;
    py::gil_scoped_release release;
    w_ = Take(Writer::Open(path, o));
  }
  void Write(const std::string& key, const py::dict& fields) {
    InputSample s = ToInput(key, fields);
    py::gil_scoped_release release;
    Check(w_->Add(s));
  }
  void Flush() {
    py::gil_scoped_release release;
    Check(w_->Flush());
  }
  py::dict Close() {
    Manifest m;
    {
      py::gil_scoped_release release;
      m = Take(w_->Close());
    }
    py::dict d;
    d["samples"] = m.num_samples;
    d["shards"] = m.shards.size();
    d["bytes"] = m.total_bytes;
    return d;
  }
  uint64_t samples() const { return w_->samples(); }
  uint64_t resumed() const { return w_->resumed_samples(); }
  uint64_t shards() const { return w_->shards_sealed(); }
  const std::string& path() const { return w_->path(); }

 private:
  std::unique_ptr<Writer> w_;
};

// ------------------------------------------------------------ verbs

std::string PyRecipe(const std::string& call) {
  std::string escaped;
  for (char c : call) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    escaped += c;
  }
  return "{\"command\": \"" + escaped + "\", \"api\": \"python\"}";
}

py::list MadeList(const std::vector<ViewMade>& made) {
  py::list out;
  for (const ViewMade& m : made) {
    py::dict d;
    d["path"] = m.path;
    d["samples"] = m.samples;
    d["per_source"] = m.per_source;
    out.append(d);
  }
  return out;
}

// What pack and shuffle report about a dataset they wrote.
py::dict Written(const std::string& out, uint64_t samples, uint64_t shards, uint64_t bytes,
                 uint64_t resumed_samples, bool already_complete) {
  py::dict d;
  d["path"] = out;
  d["samples"] = samples;
  d["shards"] = shards;
  d["bytes"] = bytes;
  d["resumed_samples"] = resumed_samples;
  d["already_complete"] = already_complete;
  return d;
}

py::list PySplit(const std::string& src, const std::string& out, const std::string& ratios,
                 const std::string& by_prefix, uint64_t seed, bool stratify,
                 const std::string& label_field, bool sync, const std::string& call) {
  SplitOptions o;
  if (ratios.empty() == by_prefix.empty()) {
    Check(Status::InvalidArgument("give ratios (e.g. train=0.8,val=0.1,test=0.1) or by_prefix "
                                  "(e.g. training=train,testing=test), not both"));
  }
  if (!ratios.empty()) {
    o.parts = Take(ParseSplitRatios(ratios));
  } else {
    o.by_prefix = true;
    o.parts = Take(ParseSplitPrefixes(by_prefix));
  }
  o.seed = seed;
  o.stratify = stratify;
  o.label_field = label_field;
  o.sync = sync;
  o.recipe_json = PyRecipe(call);
  py::gil_scoped_release release;
  auto v = Take(View::Open(src));
  SplitResult r = Take(Split(*v, out, o));
  py::gil_scoped_acquire acquire;
  return MadeList(r.views);
}

py::dict PySelect(const std::string& src, const std::string& out,
                  const std::vector<std::string>& labels, const std::string& keys_file,
                  const std::string& glob, const std::string& label_field, bool sync,
                  const std::string& call) {
  SelectOptions o;
  o.labels = labels;
  o.keys_file = keys_file;
  o.glob = glob;
  o.label_field = label_field;
  o.sync = sync;
  o.recipe_json = PyRecipe(call);
  if (o.labels.empty() && o.keys_file.empty() && o.glob.empty()) {
    Check(Status::InvalidArgument("say what to select: labels, keys or glob"));
  }
  py::gil_scoped_release release;
  auto v = Take(View::Open(src));
  ViewMade m = Take(Select(*v, out, o));
  py::gil_scoped_acquire acquire;
  return MadeList({m})[0];
}

py::list PyMix(const std::vector<std::string>& parts, const std::string& out, uint64_t seed,
               bool replace, uint64_t size, const std::string& sweep, bool sync,
               const std::string& call) {
  MixOptions o;
  o.seed = seed;
  o.replace = replace;
  o.size = size;
  o.sync = sync;
  o.recipe_json = PyRecipe(call);
  std::vector<std::unique_ptr<View>> views;
  py::gil_scoped_release release;
  for (const std::string& spec : parts) {
    std::string path;
    MixPart part = Take(ParseMixPart(spec, &path));
    auto v = View::Open(path);
    if (!v.ok()) Check(v.status().WithPrefix("mix part '" + part.name + "' (" + path + ")"));
    part.source = v->get();
    views.push_back(std::move(*v));
    o.parts.push_back(std::move(part));
  }
  std::vector<ViewMade> made;
  if (!sweep.empty()) {
    MixSweepSpec s = Take(ParseMixSweep(sweep));
    made = Take(MixSweep(o, s.part, s.start, s.stop, s.step, out));
  } else {
    made.push_back(Take(Mix(o, out)));
  }
  py::gil_scoped_acquire acquire;
  return MadeList(made);
}

py::dict PyShuffle(const std::string& src, const std::string& out, uint64_t seed,
                   const std::string& interleave_by, bool view, const std::string& format,
                   py::object shard_size, uint64_t shard_samples, py::object memory,
                   const std::string& temp_dir, bool force, bool sync, const std::string& call) {
  ShuffleOptions o;
  o.seed = seed;
  o.interleave_by = interleave_by;
  o.shard_size = SizeArg(shard_size, "shard_size");
  o.shard_samples = shard_samples;
  o.memory = SizeArg(memory, "memory");
  o.temp_dir = temp_dir;
  o.force = force;
  o.sync = sync;
  o.recipe_json = PyRecipe(call);
  py::gil_scoped_release release;
  auto v = Take(View::Open(src));
  o.format = format.empty() ? SourceShardFormat(*v) : Take(ParseFormat(format));
  if (view) {
    ViewMade m = Take(ShuffleView(*v, out, o));
    py::gil_scoped_acquire acquire;
    return MadeList({m})[0];
  }
  ShuffleResult r = Take(Shuffle(*v, out, o));
  py::gil_scoped_acquire acquire;
  py::dict d = Written(out, r.samples, r.shards, r.bytes_out, r.resumed_samples,
                       r.already_complete);
  d["temp_bytes"] = r.temp_bytes;
  return d;
}

py::dict PyPack(const std::vector<std::string>& sources, const std::string& out,
                const std::string& format, py::object shard_size, uint64_t shard_samples,
                bool label_from_dir, int jobs, bool sync) {
  PackOptions o;
  o.format = Take(ParseFormat(format));
  o.shard_size = SizeArg(shard_size, "shard_size");
  o.shard_samples = shard_samples;
  o.label_from_dir = label_from_dir;
  o.jobs = jobs > 0 ? jobs : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  o.sync = sync;
  py::gil_scoped_release release;
  PackResult r = Take(Pack(sources, out, o));
  py::gil_scoped_acquire acquire;
  return Written(out, r.samples, r.shards, r.bytes_out, r.resumed_samples, r.already_complete);
}

// The uniform order of n samples for `seed` (shuffle's, docs/shuffle.md).
py::array_t<uint64_t> UniformOrder(uint64_t n, uint64_t seed) {
  std::vector<uint64_t> order;
  {
    py::gil_scoped_release release;
    ShuffleOptions o;
    o.seed = seed;
    order = Take(ShuffleOrder(n, {}, o));
  }
  py::array_t<uint64_t> a(static_cast<py::ssize_t>(order.size()));
  std::memcpy(a.mutable_data(), order.data(), order.size() * sizeof(uint64_t));
  return a;
}

py::array DecodeOne(py::buffer data) {
  py::buffer_info b = data.request();
  Result<Image> img = [&] {
    py::gil_scoped_release release;
    return DecodeImage(std::string_view(static_cast<const char*>(b.ptr), b.size * b.itemsize));
  }();
  return ImageArray(Take(std::move(img)));
}

// ------------------------------------------------------------ catalogs

// A catalog (docs/catalog.md "Python"). Every call runs without the GIL and
// under one mutex: a Catalog is used by one thread at a time. Instances
// cross as InstanceJson text (the loader's form), which shardset.Catalog
// turns into dicts.
class PyCatalog {
 public:
  PyCatalog(const std::string& path, bool create, int busy_seconds) {
    py::gil_scoped_release release;
    cat_ = Take(Catalog::Open(path, create, busy_seconds));
  }

  template <typename F>
  auto Run(F&& f) {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mu_);
    return f(*cat_);
  }

  const std::string& path() const { return cat_->path(); }

  void CreateDir(const std::string& name, bool exist_ok) {
    Run([&](Catalog& c) {
      Status s = c.CreateDirectory(name);
      if (exist_ok && s.code() == Status::Code::kAlreadyExists) return;
      Check(s);
    });
  }

  void RemoveDir(const std::string& name) {
    Run([&](Catalog& c) { Check(c.RemoveDirectory(name)); });
  }

  py::list Dirs() {
    auto dirs = Run([](Catalog& c) { return Take(c.Directories()); });
    py::list out;
    for (const DirectoryInfo& d : dirs) {
      py::dict e;
      e["name"] = Text(d.name);
      e["files"] = d.files;
      e["instances"] = d.instances;
      out.append(e);
    }
    return out;
  }

  uint64_t Add(const std::string& dir, const std::vector<std::string>& targets) {
    return Run([&](Catalog& c) {
      auto view = Take(View::Open(targets));
      return Take(c.Add(dir, *view));
    });
  }

  // mirror and copy: DST made when missing; `keys` (when given) the keys
  // of SRC's files to take.
  uint64_t MirrorOrCopy(const std::string& src, const std::string& dst,
                        const std::optional<std::vector<std::string>>& keys, bool copy,
                        bool annotations) {
    return Run([&](Catalog& c) {
      std::function<bool(const CatalogFile&)> keep;
      std::shared_ptr<std::unordered_set<std::string>> wanted;
      if (keys) {
        wanted = std::make_shared<std::unordered_set<std::string>>(keys->begin(), keys->end());
        keep = [wanted](const CatalogFile& f) { return wanted->count(f.key) > 0; };
      }
      Status made = c.CreateDirectory(dst);
      if (!made.ok() && made.code() != Status::Code::kAlreadyExists) Check(made);
      return Take(copy ? c.Copy(src, dst, annotations, keep) : c.Mirror(src, dst, keep));
    });
  }

  py::list Files(const std::string& dir) {
    std::vector<CatalogFile> files;
    std::vector<std::string> sources;
    Run([&](Catalog& c) {
      files = Take(c.Files(dir));
      for (const CatalogSource& s : c.sources()) sources.push_back(s.name);
    });
    py::list out;
    for (const CatalogFile& f : files) {
      py::dict e;
      e["id"] = f.id;
      e["key"] = Text(f.key);
      e["source"] = Text(sources[f.source]);
      e["copied_from"] = f.copied_from ? py::object(py::int_(f.copied_from)) : py::none();
      out.append(e);
    }
    return out;
  }

  static Instance MakeInstance(int64_t id, const std::string& label, const std::string& kind,
                               const std::vector<double>& geometry, const std::string& mask,
                               const std::string& attributes) {
    Instance in;
    in.id = id;
    in.label = label;
    in.kind = Take(ParseInstanceKind(kind));
    in.geometry = geometry;
    in.mask = mask;
    in.attributes = attributes;
    return in;
  }

  int64_t AddInstance(const std::string& dir, const py::object& key, const std::string& label,
                      const std::string& kind, const std::vector<double>& geometry,
                      const std::string& mask, const std::string& attributes) {
    const std::string k = KeyBytes(key);
    return Run([&](Catalog& c) {
      const CatalogFile f = Take(c.FindFile(dir, k));
      return Take(c.AddInstance(f.id, MakeInstance(0, label, kind, geometry, mask, attributes)));
    });
  }

  void UpdateInstance(int64_t id, const std::string& label, const std::string& kind,
                      const std::vector<double>& geometry, const std::string& mask,
                      const std::string& attributes) {
    Run([&](Catalog& c) {
      Check(c.UpdateInstance(MakeInstance(id, label, kind, geometry, mask, attributes)));
    });
  }

  void RemoveInstance(int64_t id) {
    Run([&](Catalog& c) { Check(c.RemoveInstance(id)); });
  }

  // (file id, InstanceJson text)
  py::tuple GetInstance(int64_t id) {
    Instance in = Run([&](Catalog& c) { return Take(c.GetInstance(id)); });
    return py::make_tuple(in.file, py::str(InstanceJson(in)));
  }

  // [(key, file id, InstanceJson text)] of one sample of `dir`, or of all.
  py::list Instances(const std::string& dir, const py::object& key) {
    std::vector<std::tuple<std::string, int64_t, std::string>> rows;
    const bool one = !key.is_none();
    const std::string k = one ? KeyBytes(key) : std::string();
    Run([&](Catalog& c) {
      auto emit = [&](const CatalogFile& f, const std::vector<Instance>& list) {
        for (const Instance& in : list) rows.emplace_back(f.key, f.id, InstanceJson(in));
      };
      if (one) {
        const CatalogFile f = Take(c.FindFile(dir, k));
        emit(f, Take(c.Instances(f.id)));
        return;
      }
      Check(c.Scan(dir, [&](const CatalogFile& f, std::vector<Instance>&& list) {
        emit(f, list);
        return Status::OK();
      }));
    });
    py::list out;
    for (const auto& [fkey, file, text] : rows) {
      out.append(py::make_tuple(Text(fkey), file, py::str(text)));
    }
    return out;
  }

  py::dict Import(const std::string& dir, const std::string& path, bool yolo, bool replace,
                  bool skip_missing) {
    AnnotationImportOptions o;
    o.replace = replace;
    o.skip_missing = skip_missing;
    AnnotationImportResult r = Run([&](Catalog& c) {
      return Take(yolo ? ImportYolo(c, dir, path, o) : ImportCoco(c, dir, path, o));
    });
    py::dict d;
    d["images"] = r.images;
    d["matched"] = r.matched;
    d["instances"] = r.instances;
    d["removed"] = r.removed;
    d["missing"] = r.missing;
    d["missing_names"] = r.missing_names;
    return d;
  }

  py::dict Export(const std::string& dir, const std::string& path, bool yolo, bool sync) {
    AnnotationExportOptions o;
    o.sync = sync;
    AnnotationExportResult r = Run([&](Catalog& c) {
      return Take(yolo ? ExportYolo(c, dir, path, o) : ExportCoco(c, dir, path, o));
    });
    py::dict d;
    d["images"] = r.images;
    d["instances"] = r.instances;
    d["categories"] = r.categories;
    d["skipped"] = r.skipped;
    d["clipped"] = r.clipped;
    return d;
  }

  py::dict ExportDir(const std::string& dir, const std::string& out, const std::string& format,
                     py::object shard_size, uint64_t shard_samples, const std::string& field,
                     bool force, bool sync) {
    DirExportOptions o;
    o.format = Take(ParseFormat(format));
    o.shard_size = SizeArg(shard_size, "shard_size");
    o.shard_samples = shard_samples;
    o.field = field;
    o.force = force;
    o.sync = sync;
    DirExportResult r = Run([&](Catalog& c) { return Take(ExportDirectory(c, dir, out, o)); });
    py::dict d = Written(out, r.samples, r.shards, r.bytes, r.resumed_samples,
                         r.already_complete);
    d["instances"] = r.instances;
    return d;
  }

  void CheckIntegrity() {
    Run([](Catalog& c) { Check(c.CheckIntegrity()); });
  }

 private:
  std::mutex mu_;
  std::unique_ptr<Catalog> cat_;
};

}  // namespace
}  // namespace shardset::python

using namespace shardset;          // NOLINT: the module body names many of them
using namespace shardset::python;  // NOLINT

PYBIND11_MODULE(_shardset, m) {
  m.doc() = "shardset's C++ core (use the shardset package, not this module)";
  InitTypes(m);
  PyObject* base = MakeError(m, "Error", PyExc_RuntimeError, {},
                             "Base of every shardset error; the message names the file, the "
                             "sample and what to do.");
  g_errors[static_cast<int>(Status::Code::kNotFound)] = MakeError(
      m, "NotFoundError", base, {PyExc_KeyError, PyExc_FileNotFoundError},
      "A file, key, ordinal or field that does not exist.");
  g_errors[static_cast<int>(Status::Code::kCorruption)] =
      MakeError(m, "CorruptionError", base, {}, "Bytes that fail their checksum or structure.");
  g_errors[static_cast<int>(Status::Code::kInvalidArgument)] = MakeError(
      m, "InvalidArgumentError", base, {PyExc_ValueError}, "A malformed request.");
  g_errors[static_cast<int>(Status::Code::kIOError)] = MakeError(
      m, "StorageError", base, {PyExc_OSError}, "The operating system refused (permission, "
      "disk full, ...).");
  g_errors[static_cast<int>(Status::Code::kNotSupported)] = MakeError(
      m, "NotSupportedError", base, {}, "A valid request this format or build cannot serve.");
  g_errors[static_cast<int>(Status::Code::kAlreadyExists)] = MakeError(
      m, "AlreadyExistsError", base, {PyExc_FileExistsError}, "Refusing to overwrite.");
  g_errors[static_cast<int>(Status::Code::kResourceExhausted)] = MakeError(
      m, "ResourceExhaustedError", base, {}, "An input exceeds a configured bound.");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const StatusError& e) {
      const int code = static_cast<int>(e.status.code());
      PyObject* cls = code > 0 && code < 8 && g_errors[code] ? g_errors[code] : g_errors[0];
      PyErr_SetString(cls ? cls : PyExc_RuntimeError, e.status.message().c_str());
    }
  });
  g_errors[0] = base;

  py::class_<PyDataset>(m, "_Dataset")
      .def(py::init<std::vector<std::string>, bool>(), py::arg("targets"),
           py::arg("verify_checksums") = true)
      .def("__len__", &PyDataset::size)
      .def("read", [](py::object self, long long i) { return self.cast<PyDataset&>().Read(self, i); })
      .def("read_batch",
           [](py::object self, const std::vector<long long>& positions,
              const std::vector<std::string>& decode, int threads) {
             return self.cast<PyDataset&>().ReadBatch(self, positions, decode, threads);
           },
           py::arg("positions"), py::arg("decode") = std::vector<std::string>{},
           py::arg("threads") = 1)
      .def("read_packed", &PyDataset::ReadPacked, py::arg("positions"), py::arg("decode"),
           py::arg("label"), py::arg("threads"))
      .def("find", &PyDataset::Find)
      .def("key", &PyDataset::Key)
      .def("info", &PyDataset::Info)
      .def("verify", &PyDataset::Verify);

  py::class_<PyWriter>(m, "_Writer")
      .def(py::init<const std::string&, const std::string&, py::object, uint64_t, bool, bool, bool,
                    int, int>(),
           py::arg("path"), py::arg("format"), py::arg("shard_size"), py::arg("shard_samples"),
           py::arg("resume"), py::arg("overwrite"), py::arg("sync"), py::arg("zip_deflate"),
           py::arg("gzip_level"))
      .def("write", &PyWriter::Write)
      .def("flush", &PyWriter::Flush)
      .def("close", &PyWriter::Close)
      .def_property_readonly("samples", &PyWriter::samples)
      .def_property_readonly("resumed", &PyWriter::resumed)
      .def_property_readonly("shards", &PyWriter::shards)
      .def_property_readonly("path", &PyWriter::path);

  py::class_<PyCatalog>(m, "_Catalog")
      .def(py::init<const std::string&, bool, int>(), py::arg("path"), py::arg("create"),
           py::arg("busy_seconds"))
      .def_property_readonly("path", &PyCatalog::path)
      .def("create_dir", &PyCatalog::CreateDir)
      .def("remove_dir", &PyCatalog::RemoveDir)
      .def("dirs", &PyCatalog::Dirs)
      .def("add", &PyCatalog::Add)
      .def("mirror_or_copy", &PyCatalog::MirrorOrCopy)
      .def("files", &PyCatalog::Files)
      .def("add_instance", &PyCatalog::AddInstance)
      .def("update_instance", &PyCatalog::UpdateInstance)
      .def("remove_instance", &PyCatalog::RemoveInstance)
      .def("get_instance", &PyCatalog::GetInstance)
      .def("instances", &PyCatalog::Instances)
      .def("import_", &PyCatalog::Import)
      .def("export", &PyCatalog::Export)
      .def("export_dir", &PyCatalog::ExportDir)
      .def("check_integrity", &PyCatalog::CheckIntegrity);

  m.def("split", &PySplit);
  m.def("select", &PySelect);
  m.def("mix", &PyMix);
  m.def("shuffle", &PyShuffle);
  m.def("pack", &PyPack);
  m.def("uniform_order", &UniformOrder, py::arg("n"), py::arg("seed"));
  m.def("decode_image", &DecodeOne, py::arg("data"));
}
