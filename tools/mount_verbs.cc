// mount and umount: a view, dataset, shard or archive as a read-only folder
// (docs/mount.md).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/strings.h"
#include "cli.h"
#include "shardset/link.h"
#include "shardset/view.h"
#ifdef SHARDSET_HAVE_FUSE
#include "shardset/mount.h"
#endif

namespace shardset::cli {

struct MountVerbs {
  CLI::App* mount = nullptr;
  CLI::App* umount = nullptr;
  std::string target, mountpoint, layout = "original", label_field = "cls";
  unsigned threads = 16;
  bool foreground = false, allow_other = false, lazy = false, quiet = false;
};

namespace {

// The server changes to "/" once in the background, so the target is opened
// from its absolute path (a view's sources are found relative to it).
std::string Absolute(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  if (real == nullptr) return path;  // View::Open names what is missing
  std::string out(real);
  std::free(real);
  return out;
}

#ifdef SHARDSET_HAVE_FUSE
int RunMount(MountVerbs& m, const ReadOptions& ro) {
  MountOptions o;
  auto layout = ParseLinkLayout(m.layout);
  if (!layout.ok()) return Fail(layout.status());
  o.layout = *layout;
  o.label_field = m.label_field;
  o.foreground = m.foreground;
  o.allow_other = m.allow_other;
  o.threads = m.threads;
  if (Status s = CheckFuse(); !s.ok()) return Fail(s);
  // The background server must not hold the caller's descriptors (a pipe
  // the caller reads to its end would never end); 0-2 become /dev/null.
  if (!m.foreground) ::close_range(3, ~0U, 0);
  auto view = View::Open(Absolute(m.target), ro);
  if (!view.ok()) return Fail(view.status());
  Progress bar(m.quiet);
  const uint64_t n = (*view)->num_samples();
  o.progress = [&](uint64_t done) { bar.Show(fmt::format("mounting: {}/{} samples", done, n)); };
  o.mounted = [&](uint64_t files, uint64_t bytes) {
    bar.Done();
    std::printf("%s: %llu files (%s) of %llu samples, %s layout, read-only; unmount with: "
                "shardset umount %s\n",
                m.mountpoint.c_str(), static_cast<unsigned long long>(files),
                FormatBytes(bytes).c_str(), static_cast<unsigned long long>(n), m.layout.c_str(),
                m.mountpoint.c_str());
    std::fflush(stdout);
  };
  Status s = Mount(**view, m.mountpoint, o);
  bar.Done();
  return s.ok() ? kExitOk : Fail(s);
}

int RunUmount(MountVerbs& m) {
  Status s = Unmount(m.mountpoint, m.lazy);
  return s.ok() ? kExitOk : Fail(s);
}
#else
int NoFuse() {
  return Fail(Status::NotSupported(
      "this shardset was built without libfuse3; install libfuse3-dev (Debian) and rebuild, or "
      "use shardset link --mode copy / shardset extract instead"));
}
int RunMount(MountVerbs&, const ReadOptions&) { return NoFuse(); }
int RunUmount(MountVerbs&) { return NoFuse(); }
#endif

}  // namespace

MountVerbs* AddMountVerbs(CLI::App* app, ReadArgs* read_args) {
  auto* m = new MountVerbs;
  m->mount = app->add_subcommand(
      "mount", "Serve a view, dataset, shard or archive as a read-only folder (FUSE)");
  m->mount->add_option("TARGET", m->target,
                       "View file, dataset folder, shard or archive (tar, tar.gz, zip, tsv)")
      ->required();
  m->mount->add_option("MOUNTPOINT", m->mountpoint, "An existing empty folder")->required();
  m->mount->add_option("--layout", m->layout,
                       "original (key.field), imagefolder (label/name.field) or yolo "
                       "(images/ + labels/), as shardset link makes them")
      ->check(CLI::IsMember({"original", "imagefolder", "yolo"}))
      ->capture_default_str();
  m->mount->add_option("--label-field", m->label_field, "Field holding the label (imagefolder)")
      ->capture_default_str();
  m->mount->add_flag("-f,--foreground", m->foreground,
                     "Serve in the foreground until unmounted or interrupted (Ctrl-C "
                     "unmounts); read errors are printed");
  m->mount->add_option("--threads", m->threads, "Most threads serving requests at once")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();
  m->mount->add_flag("--allow-other", m->allow_other,
                     "Let other users read it (non-root needs user_allow_other in "
                     "/etc/fuse.conf)");
  m->mount->add_flag("-q,--quiet", m->quiet, "No progress");
  AddReadFlags(m->mount, read_args);
  m->mount->footer(
      "Example: shardset mount mix.view /mnt/fm --layout imagefolder   (then: shardset umount "
      "/mnt/fm)");

  m->umount = app->add_subcommand("umount", "Unmount a folder shardset mount serves");
  m->umount->add_option("MOUNTPOINT", m->mountpoint, "The mounted folder")->required();
  m->umount->add_flag("--lazy", m->lazy,
                      "Detach it now even if busy; it goes away when no longer used");
  return m;
}

int RunMountVerb(MountVerbs* m, CLI::App* sub, const ReadOptions& ro) {
  if (sub == m->mount) return RunMount(*m, ro);
  if (sub == m->umount) return RunUmount(*m);
  return -1;
}

}  // namespace shardset::cli
