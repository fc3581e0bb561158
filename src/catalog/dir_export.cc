// shardset dir export: a directory's samples as new shards with their
// current annotations embedded (docs/catalog.md "dir export").
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "catalog/annotation_util.h"
#include "dataset/dataset_writer.h"
#include "shardset/annotation_io.h"

namespace shardset {

Result<DirExportResult> ExportDirectory(Catalog& catalog, std::string_view dir,
                                        const std::string& out, const DirExportOptions& o) {
  using json = nlohmann::json;
  if (o.field.empty() || o.field == kAnnotationsField) {
    return Status::InvalidArgument(fmt::format(
        "'{}' cannot name the field of the annotations; choose another (json is the default)",
        EscapeForDisplay(o.field)));
  }
  SHARDSET_ASSIGN_OR_RETURN(auto reader, annotations::DirectoryReader::Open(catalog, dir, o.read));
  if (reader->size() == 0) {
    return Status::InvalidArgument(
        fmt::format("{}: the directory is empty; nothing to export", reader->shown()));
  }
  std::error_code ec;
  DatasetWriterOptions wo;
  wo.format = o.format;
  wo.shard_size = o.shard_size;
  wo.shard_samples = o.shard_samples;
  wo.write.sync = o.sync;
  // What changes the bytes written (a resume with other settings is
  // refused); the annotations themselves are read again on a resume.
  wo.recipe_json = json{{"verb", "dir export"},
                        {"catalog", std::filesystem::absolute(catalog.path(), ec).string()},
                        {"directory", std::string(dir)},
                        {"field", o.field},
                        {"format", std::string(FormatName(o.format))},
                        {"shard_size", o.shard_size},
                        {"shard_samples", o.shard_samples}}
                       .dump(-1, ' ', false, json::error_handler_t::replace);
  wo.force = o.force;
  wo.verb = "dir export";
  SHARDSET_ASSIGN_OR_RETURN(auto writer, DatasetWriter::Open(out, wo));
  DirExportResult result;
  if (writer->already_complete()) {
    result.already_complete = true;
    result.samples = writer->manifest().num_samples;
    result.shards = writer->manifest().shards.size();
    result.bytes = writer->manifest().total_bytes;
    return result;
  }
  result.resumed_samples = writer->resumed_samples();
  const uint64_t start = writer->resumed_progress();
  const uint64_t total = reader->size();
  Status s = catalog.ReadSnapshot([&]() -> Status {
    uint64_t pos = 0;
    Sample sample;
    InputSample input;
    SHARDSET_RETURN_IF_ERROR(catalog.Scan(dir, [&](const CatalogFile& f,
                                                   std::vector<Instance>&& list) -> Status {
      SHARDSET_RETURN_IF_ERROR(reader->CheckFile(pos, f));
      if (pos < start) {  // sealed by the interrupted run
        ++pos;
        return Status::OK();
      }
      SHARDSET_RETURN_IF_ERROR(reader->Read(pos, &sample));
      input.key = sample.key;
      input.fields.clear();
      uint64_t source_bytes = 0;
      for (const Field& field : sample.fields) {
        if (field.name == o.field) {
          return Status::InvalidArgument(fmt::format(
              "{} already has a field '{}'; give the annotations another field name (--field)",
              reader->Where(pos, sample.key), EscapeForDisplay(o.field)));
        }
        input.fields.push_back(InputField{std::string(field.name), std::string(field.data),
                                          field.flags});
        if (!(field.flags & kFieldDerived)) source_bytes += field.data.size();
      }
      std::string text = "{\"instances\":[";
      for (size_t i = 0; i < list.size(); ++i) {
        if (i) text += ",";
        text += InstanceJson(list[i]);
      }
      text += "]}";
      result.instances += list.size();
      input.fields.push_back(InputField{o.field, std::move(text), 0});
      SHARDSET_RETURN_IF_ERROR(writer->Add(input, source_bytes, pos + 1));
      ++pos;
      if (o.progress) o.progress(pos, total);
      return Status::OK();
    }));
    return reader->CheckCount(pos);
  });
  if (s.ok()) {
    Result<Manifest> m = writer->Finish(total, {});
    if (m.ok()) {
      result.samples = m->num_samples;
      result.shards = m->shards.size();
      result.bytes = m->total_bytes;
      return result;
    }
    s = m.status();
  }
  writer->Abandon();
  return s;
}

}  // namespace shardset
