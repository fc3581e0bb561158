"""Catalogs: named directories of samples and their annotations in an SQLite
file beside the data (docs/catalog.md). A thin layer over the C++ library:
every call releases the GIL, errors are shardset's exceptions.

    cat = shardset.Catalog("pets.catalog", create=True)
    cat.create_dir("all")
    cat.add("all", "pets")                          # every sample of a dataset
    cat.mirror("all", "dogs", keys=dog_keys)        # same files, shared annotations
    i = cat.add_instance("dogs", "dogs/1", "dog", box=(2, 3, 10, 12), attributes={"pose": "sit"})
    cat.instances("all", "dogs/1")                  # the same instance, from the other directory
    cat.export_coco("dogs", "dogs.json")
    ds = cat.open("dogs")                           # a shardset.Dataset with an "annotations" field
"""
import json as _json
import os as _os

from . import _shardset as _ext

_SHAPES = ("box", "polygon", "mask")


def _shape(box, polygon, mask, required=True):
    """(kind, geometry, mask) from the one of box/polygon/mask given."""
    given = [(k, v) for k, v in zip(_SHAPES, (box, polygon, mask)) if v is not None]
    if len(given) != 1:
        if not given and not required:
            return None
        raise ValueError("give exactly one of box=(x, y, w, h), polygon=(x1, y1, x2, y2, ...) "
                         "or mask=REFERENCE")
    kind, value = given[0]
    if kind == "mask":
        if not isinstance(value, str):
            value = _json.dumps(value, separators=(",", ":"), sort_keys=True)
        return kind, [], value
    return kind, [float(v) for v in value], ""


def _attributes(attributes):
    if attributes is None:
        return "{}"
    if isinstance(attributes, str):
        return attributes
    if not isinstance(attributes, dict):
        raise TypeError(f"attributes must be a dict, not {type(attributes).__name__}")
    return _json.dumps(attributes, separators=(",", ":"))


def _instance(text, key=None, file=None):
    d = _json.loads(text)
    if key is not None:
        d["key"] = key
    if file is not None:
        d["file"] = file
    return d


class Catalog:
    """A catalog file: `Catalog(path)` opens it, `create=True` makes it when
    missing. Directories hold files (samples found by key in their source
    datasets); instances belong to files, so a file mirrored into several
    directories shows one set of instances in each, while a copy has its own.

    Instances come back as dicts: {"id", "label", "kind", "box" | "polygon" |
    "mask", "attributes", "key", "file"}, boxes as [x, y, w, h] in pixels from
    the top-left corner (COCO's bbox). Writes from many processes at once are
    safe: each waits for the write lock (retrying for up to `busy_seconds`)
    rather than failing with "database is locked". One Catalog object may be
    shared by threads (calls are serialised); it pickles by path, so a
    DataLoader worker opens its own connection."""

    def __init__(self, path, create=False, busy_seconds=60):
        self._path = _os.fspath(path)
        self._create = create
        self._busy = int(busy_seconds)
        self._c = _ext._Catalog(self._path, bool(create), self._busy)

    def __reduce__(self):
        return (Catalog, (self._path, False, self._busy))

    @property
    def path(self):
        return self._path

    def __repr__(self):
        return f"shardset.Catalog({self._path!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Closes the database connection (also done when the object goes)."""
        self._c = None

    # ------------------------------------------------------------ directories

    def create_dir(self, name, exist_ok=False):
        """Makes directory `name` (AlreadyExistsError unless exist_ok)."""
        self._c.create_dir(name, bool(exist_ok))

    def remove_dir(self, name):
        """Removes directory `name`; its files and their instances stay for
        every other directory holding them."""
        self._c.remove_dir(name)

    def dirs(self):
        """[{"name", "files", "instances"}] of every directory, by name."""
        return self._c.dirs()

    def add(self, dir, target):
        """Adds every sample of `target` (a dataset, view, shard, archive or
        another "CATALOG#NAME") to `dir`, each as its one original file;
        returns how many were added (samples already in `dir` are not)."""
        return self._c.add(dir, _targets(target))

    def mirror(self, src, dst, keys=None):
        """Puts the files of `src` (those whose key is in `keys`, when given)
        into `dst` too, made when missing: the same files, so the same
        instances. Returns how many were added."""
        return self._c.mirror_or_copy(src, dst, _keys(keys), False, False)

    def copy(self, src, dst, annotations=True, keys=None):
        """Puts new files over the same samples into `dst` (made when
        missing), with a copy of their instances unless annotations=False;
        later edits on either side do not show on the other."""
        return self._c.mirror_or_copy(src, dst, _keys(keys), True, bool(annotations))

    def files(self, dir):
        """[{"id", "key", "source", "copied_from"}] of `dir`, in order."""
        return self._c.files(dir)

    def open(self, dir, **kw):
        """Directory `dir` as a shardset.Dataset: its samples in order, each
        with the field "annotations" (its instances as JSON)."""
        from . import Dataset
        return Dataset(f"{self._path}#{dir}", **kw)

    # ------------------------------------------------------------ instances

    def add_instance(self, dir, key, label, box=None, polygon=None, mask=None,
                     attributes=None):
        """Adds an instance to the sample with `key` in `dir`: one of
        box=(x, y, w, h), polygon=(x1, y1, x2, y2, ...) in pixels, or
        mask=REFERENCE (a field name, a path, or COCO RLE as a dict or JSON
        text); `attributes` a dict. Returns its id."""
        kind, geometry, ref = _shape(box, polygon, mask)
        return self._c.add_instance(dir, key, str(label), kind, geometry, ref,
                                    _attributes(attributes))

    def instance(self, id):
        """The instance with this id (NotFoundError when there is none)."""
        file, text = self._c.get_instance(int(id))
        return _instance(text, file=file)

    def update_instance(self, id, label=None, box=None, polygon=None, mask=None,
                        attributes=None):
        """Changes instance `id`: what is given replaces what it had (one of
        box/polygon/mask replaces its shape; attributes replace all of its
        attributes)."""
        shape = _shape(box, polygon, mask, required=False)
        current = None
        if label is None or shape is None or attributes is None:
            current = self.instance(id)
        if label is None:
            label = current["label"]
        if shape is None:
            k = current["kind"]
            shape = (k, [], current["mask"]) if k == "mask" else (k, current[k], "")
        if attributes is None:
            attributes = current["attributes"]
        kind, geometry, ref = shape
        self._c.update_instance(int(id), str(label), kind, geometry, ref,
                                _attributes(attributes))

    def remove_instance(self, id):
        """Removes instance `id` (NotFoundError when there is none)."""
        self._c.remove_instance(int(id))

    def instances(self, dir, key=None):
        """The instances of the sample with `key` in `dir`, or of every
        sample of `dir` (in directory order) when key is None."""
        return [_instance(text, key=k, file=f) for k, f, text in self._c.instances(dir, key)]

    # ------------------------------------------------------------ import, export

    def import_coco(self, dir, path, replace=False, skip_missing=False):
        """`shardset annotate import DIR --coco PATH`: adds the COCO file's
        instances to the files of `dir` they match (all or nothing). Returns
        {"images", "matched", "instances", "removed", "missing",
        "missing_names"}."""
        return self._c.import_(dir, _os.fspath(path), False, bool(replace), bool(skip_missing))

    def import_yolo(self, dir, path, replace=False, skip_missing=False):
        """`shardset annotate import DIR --yolo PATH`: labels/**/*.txt with
        names from data.yaml or classes.txt."""
        return self._c.import_(dir, _os.fspath(path), True, bool(replace), bool(skip_missing))

    def export_coco(self, dir, path, sync=True):
        """`shardset annotate export DIR --coco PATH`. Returns {"images",
        "instances", "categories", "skipped", "clipped"}."""
        return self._c.export(dir, _os.fspath(path), False, bool(sync))

    def export_yolo(self, dir, path, sync=True):
        """`shardset annotate export DIR --yolo PATH`: labels/<name>.txt and
        data.yaml."""
        return self._c.export(dir, _os.fspath(path), True, bool(sync))

    def export(self, dir, out, format="native", shard_size="256MiB", shard_samples=0,
               field="json", force=False, sync=True):
        """`shardset dir export`: the samples of `dir` as new shards in the
        dataset folder `out`, each with `field` holding {"instances": [...]}.
        Returns {"path", "samples", "shards", "bytes", "instances",
        "resumed_samples", "already_complete"}."""
        return self._c.export_dir(dir, _os.fspath(out), format, shard_size, int(shard_samples),
                                  field, bool(force), bool(sync))

    def check(self):
        """SQLite's integrity check of the catalog (CorruptionError naming the
        problems)."""
        self._c.check_integrity()


def _targets(target):
    if isinstance(target, (str, bytes, _os.PathLike)):
        return [_os.fspath(target)]
    return [_os.fspath(t) for t in target]


def _keys(keys):
    if keys is None:
        return None
    if isinstance(keys, (str, bytes)):
        raise TypeError("keys is a list of keys, not one string")
    return [str(k) for k in keys]
