// TSV files: one sample per line, tab-separated columns, the key first and
// binary fields in base64, with the row-offset sidecars of Microsoft's TSVFile
// (docs/formats/tsv.md): "<stem>.lineidx" (one decimal offset per line) and
// "<stem>.lineidx.8b" (8-byte little-endian offsets), where <stem> is the
// path without its extension (Python's os.path.splitext).
//
// Readers are immutable after Open and thread-safe. Text fields are views
// into the file's memory map; base64 fields are decoded into Sample::storage.
#ifndef SHARDSET_FORMATS_TSV_TSV_SHARD_H_
#define SHARDSET_FORMATS_TSV_TSV_SHARD_H_

#include <memory>
#include <string>
#include <vector>

#include "formats/archive_entry.h"
#include "formats/probe.h"
#include "shardset/shard.h"

namespace shardset::tsv {

// True when the probe's bytes are this format (by content, never by name):
// they start with the shardset header line, or they are text whose first line
// has a tab and most of whose lines have as many (docs/formats/tsv.md
// "Detection"). Asked last, after every format with a magic number.
bool Looks(const Probe& probe);

// Opens a tsv file. Row offsets come from "<stem>.lineidx.8b" (mapped, O(1)),
// else "<stem>.lineidx" (parsed), else one scan of the file. Offsets are
// checked at open (first row, last row, count) and on every read (each row is
// exactly one whole line), so a stale or foreign line index is Corruption
// naming the row and saying to rerun `shardset index`, never other bytes.
// Columns come from options.tsv_columns, else the header line, else a guess
// from the first rows. A row with another column count or an invalid base64
// cell is Corruption when read; a decoded field larger than
// options.max_field_bytes, or more rows than options.max_entries, is
// ResourceExhausted naming the flag.
Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions& options);

// Writes a tsv file atomically (temporary name, fsync, rename): a header line
// naming the columns (from the first sample's fields; binary fields base64),
// then one row per sample; with options.sidecar_index also both line
// indexes, after the commit. Add() refuses (InvalidArgument) keys that are
// empty, not UTF-8 or hold tab/LF/CR/NUL, field names a header cannot hold,
// a field set other than the first sample's, and values a text column cannot
// hold.
Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions& options);

// Writes both line indexes of `path` atomically, binary first (`shardset
// index`), in one memchr pass; returns the number of rows indexed.
Result<uint64_t> WriteIndex(const std::string& path, const ReadOptions& options, bool sync);
// {"<stem>.lineidx", "<stem>.lineidx.8b"}: what WriteIndex writes and Open reads.
std::vector<std::string> SidecarPaths(const std::string& path);

}  // namespace shardset::tsv

#endif  // SHARDSET_FORMATS_TSV_TSV_SHARD_H_
