"""End-to-end tests of `shardset serve` (docs/serve.md, issue 12's acceptance):
Debian's Chromium, driven headless by Selenium, opens the page of a
Fashion-MNIST mix and of a catalog directory with boxes and polygons, checks
the numbers shown against `info --json`, pages through the grid, opens a
sample and keeps screenshots under the build folder (serve-screenshots/);
hostile URLs get 4xx answers and the server lives on; wrk sends 1,000
concurrent thumbnail requests and every answer is checked."""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import BIN, BUILD, ROOT, run, shardset

SCREENSHOTS = BUILD / "serve-screenshots"


class Served:
    """`shardset serve ARGS --port 0` running; .url is its address."""

    def __init__(self, *args, cwd=None):
        self.proc = subprocess.Popen([str(BIN), "serve", *map(str, args), "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
        banner = self.proc.stdout.readline().decode()
        m = re.match(r"shardset serve: (http://127\.0\.0\.1:\d+/)", banner)
        if not m:
            self.proc.kill()
            raise AssertionError(f"no banner: {banner!r} {self.proc.stderr.read()!r}")
        self.url = m.group(1)

    def get(self, path):
        """(status, body bytes, headers) of GET path; 4xx/5xx are returned."""
        try:
            with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=30) as r:
                return r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers

    def json(self, path):
        status, body, _ = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(timeout=30)
        assert rc == 0, f"serve exited {rc}: {self.proc.stderr.read()!r}"


@pytest.fixture(scope="module")
def site(fmnist_tree, tmp_path_factory):
    """train and test datasets, a mix view of them, and a catalog directory
    over test with a box and a polygon on its first sample; served."""
    root = tmp_path_factory.mktemp("serve")
    shardset("pack", fmnist_tree / "training", "-o", root / "train", "--label-from-dir", "-q",
             "--shard-size", "8MiB")
    shardset("pack", fmnist_tree / "testing", "-o", root / "test", "--label-from-dir", "-q")
    shardset("mix", "train=train:0.1", "test=test:0.5", "-o", "mix.view", "--seed", "7", "-q",
             cwd=root)
    cat = root / "fm.catalog"
    shardset("dir", "create", "shirts", "-c", cat)
    shardset("dir", "add", "shirts", "--from", root / "test", "-c", cat)
    first = json.loads(shardset("ls", f"{cat}#shirts", "--json").stdout.splitlines()[0])["key"]
    shardset("annotate", "set", "shirts", first, "--label", "collar", "--box", "2,3,20,22",
             "-c", cat)
    shardset("annotate", "set", "shirts", first, "--label", "sleeve", "--polygon",
             "1,1,10,1,10,10", "-c", cat)
    served = Served("mix.view", "fm.catalog", "train", cwd=root)
    yield root, served
    served.stop()


def test_api_numbers_equal_info_json(site):
    root, s = site
    pages = s.json("/api/pages")
    assert [(p["name"], p["kind"]) for p in pages] == [
        ("mix", "view"), ("shirts", "catalog directory"), ("train", "dataset")]
    for p, target in zip(pages, ["mix.view", "fm.catalog#shirts", "train"]):
        expected = json.loads(shardset("info", target, "--json", cwd=root).stdout)
        assert s.json(f"/api/p/{p['id']}/info")["info"] == expected
        assert p["samples"] == expected["samples"]
    order = s.json("/api/p/0/order?width=100")
    expected = json.loads(shardset("info", "--order", "mix.view", "--json", cwd=root).stdout)
    assert order["verdict_line"] == expected["verdict_line"]
    assert order["neighbours"] == expected["neighbours"]
    strip = order["strip"]
    assert sum(sum(row["slices"]) for row in strip["labels"]) == 11000
    # Verify runs in the background; every shard ends up checked and good.
    for _ in range(300):
        shards = s.json("/api/p/2/shards")
        if shards["verify"] == "done":
            break
        time.sleep(0.1)
    statuses = [sh["status"] for src in shards["sources"] for sh in src["shards"]]
    assert len(statuses) > 1 and set(statuses) == {"ok"}, shards


def test_bytes_thumbnails_ranges_and_caching(site):
    root, s = site
    key = json.loads(shardset("ls", "mix.view", "--json", cwd=root).stdout.splitlines()[5])["key"]
    png = shardset("cat", "mix.view", key, "--field", "png", cwd=root).stdout
    status, body, headers = s.get("/raw/0/5/png")
    assert (status, body, headers["Content-Type"]) == (200, png, "image/png")
    # 28x28 fits a thumbnail: the image itself.
    assert s.get("/thumb/0/5/png")[1] == png
    etag = headers["ETag"]
    req = urllib.request.Request(s.url + "raw/0/5/png", headers={"If-None-Match": etag})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 304
    req = urllib.request.Request(s.url + "raw/0/5/png", headers={"Range": "bytes=8-15"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 206 and r.read() == png[8:16]
    assert s.json(f"/api/p/0/key/{urllib.request.quote(key, safe='')}") == {"pos": 5}
    sample = s.json("/api/p/1/sample/0")
    assert [a["kind"] for a in sample["annotations"]] == ["box", "polygon"]
    assert (sample["width"], sample["height"]) == (28, 28)


@pytest.mark.parametrize("path,status", [
    ("/../../etc/passwd", 404),
    ("/static/../../../../etc/passwd", 404),
    ("/static/%2e%2e/%2e%2e/etc/passwd", 404),
    ("/raw/0/0/../../../../etc/passwd", 404),
    ("/raw/0/0/..%2f..%2f..%2fetc%2fpasswd", 404),
    ("/api/p/0/samples?page=99999999999999999999999", 400),
    ("/api/p/0/samples?page=18446744073709551615", 404),
    ("/api/p/0/samples?page=230", 404),
    ("/api/p/0/samples?page=-1", 400),
    ("/api/p/0/samples?per=0", 400),
    ("/api/p/0/samples?per=100000", 400),
    ("/api/p/99999999999999999999/info", 404),
    ("/api/p/3/info", 404),
    ("/api/p/0/sample/11000", 404),
    ("/api/p/0/sample/18446744073709551616", 400),
    ("/p/0/s/11000", 404),
    ("/api/p/0/key/no%2Fsuch%2Fkey", 404),
    ("/raw/0/0/nosuchfield", 404),
    ("/thumb/0/0/cls", 422),
    ("/api/p/0/order?width=0", 400),
    ("/nothing/here", 404),
])
def test_hostile_requests_get_4xx(site, path, status):
    _, s = site
    got, body, headers = s.get(path)
    assert got == status, (path, got, body)
    assert "error" in json.loads(body)
    assert b"root:" not in body
    assert s.alive()


def test_other_methods_are_refused(site):
    _, s = site
    req = urllib.request.Request(s.url + "api/pages", data=b"x" * 100, method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert 400 <= e.value.code < 500
    assert s.alive()


def test_errors_at_start_are_one_line(tmp_path):
    proc = run(BIN, "serve", tmp_path / "missing", "--port", "0", check=False)
    err = proc.stderr.decode().strip()
    assert proc.returncode != 0 and len(err.splitlines()) == 1 and "missing" in err, err
    (tmp_path / "empty.catalog").write_bytes(b"")
    shardset("dir", "create", "a", "-c", tmp_path / "c.catalog")
    shardset("dir", "rm", "a", "-c", tmp_path / "c.catalog")
    proc = run(BIN, "serve", tmp_path / "c.catalog", "--port", "0", check=False)
    err = proc.stderr.decode().strip()
    assert proc.returncode != 0 and "no directories" in err, err


# ------------------------------------------------------------------ browser

def chrome():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    if not shutil.which("chromedriver"):
        pytest.fail("chromedriver is missing (scripts/install-deps.sh installs chromium-driver)")
    o = Options()
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--window-size=1400,1800"]:
        o.add_argument(a)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=o)


def wait_ready(d):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(d, 60).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    ready = d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
    errors = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#error")]
    assert ready == "true", errors


def test_browser_pages_grid_and_sample(site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    root, s = site
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    info = json.loads(shardset("info", "mix.view", "--json", cwd=root).stdout)
    d = chrome()
    try:
        d.get(s.url)
        wait_ready(d)
        links = d.find_elements(By.CSS_SELECTOR, "a.page-link")
        assert [a.text for a in links] == ["mix", "shirts", "train"]
        links[0].click()
        wait_ready(d)
        # The counts shown are info --json's.
        assert d.find_element(By.ID, "samples").text == f"{info['samples']:,}"
        shown = {b.get_attribute("data-label"): int(b.get_attribute("data-count"))
                 for b in d.find_elements(By.CSS_SELECTOR, "#labels .bar")}
        assert shown == info["labels"]
        sources = {b.get_attribute("data-label"): int(b.get_attribute("data-count"))
                   for b in d.find_elements(By.CSS_SELECTOR, "#sources .bar")}
        assert sources == {src["name"]: src["selected"] for src in info["sources"]}
        WebDriverWait(d, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#verdict"))
        assert d.find_element(By.ID, "verdict").text.startswith("ordered")
        cells = d.find_elements(By.CSS_SELECTOR, "#grid .cell")
        assert len(cells) == 48
        keys = json.loads("[" + ",".join(
            shardset("ls", "mix.view", "--json", cwd=root).stdout.decode().splitlines()[:96])
            + "]")
        assert [c.find_element(By.CLASS_NAME, "key").text for c in cells] == \
            [k["key"] for k in keys[:48]]
        # Every thumbnail loaded.
        WebDriverWait(d, 60).until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('#grid img')].every(i => i.complete"
            " && i.naturalWidth > 0)"))
        d.save_screenshot(str(SCREENSHOTS / "mix.png"))
        # Page through the grid.
        d.find_element(By.CSS_SELECTOR, "a.pager-next").click()
        wait_ready(d)
        assert d.find_element(By.ID, "page-of").text == "page 2 of 230"
        cells = d.find_elements(By.CSS_SELECTOR, "#grid .cell")
        assert [c.find_element(By.CLASS_NAME, "key").text for c in cells] == \
            [k["key"] for k in keys[48:96]]
        d.find_element(By.CSS_SELECTOR, "a.pager-last").click()
        wait_ready(d)
        assert d.find_element(By.ID, "page-of").text == "page 230 of 230"
        assert len(d.find_elements(By.CSS_SELECTOR, "#grid .cell")) == 11000 - 229 * 48
        d.save_screenshot(str(SCREENSHOTS / "mix-last-page.png"))
        # Open a sample.
        cells = d.find_elements(By.CSS_SELECTOR, "#grid .cell")
        key = cells[3].find_element(By.CLASS_NAME, "key").text
        cells[3].click()
        wait_ready(d)
        assert d.find_element(By.ID, "sample-key").text == key
        label = shardset("cat", "mix.view", key, "--field", "cls", cwd=root).stdout.decode()
        assert d.find_element(By.ID, "sample-label").text == label.strip()
        fields = [r.get_attribute("data-field")
                  for r in d.find_elements(By.CSS_SELECTOR, "#sample-fields tr[data-field]")]
        assert sorted(fields) == ["cls", "png"]
        d.save_screenshot(str(SCREENSHOTS / "mix-sample.png"))
        # The catalog directory: boxes and polygons drawn over the image.
        d.get(s.url + "p/1")
        wait_ready(d)
        first = d.find_elements(By.CSS_SELECTOR, "#grid .cell")[0]
        kinds = [e.get_attribute("data-kind")
                 for e in first.find_elements(By.CSS_SELECTOR, "svg.annotations > *")]
        assert kinds == ["box", "polygon"]
        d.save_screenshot(str(SCREENSHOTS / "catalog.png"))
        first.click()
        wait_ready(d)
        assert len(d.find_elements(By.CSS_SELECTOR, ".big svg rect")) == 1
        assert len(d.find_elements(By.CSS_SELECTOR, ".big svg polygon")) == 1
        d.save_screenshot(str(SCREENSHOTS / "catalog-sample.png"))
    finally:
        d.quit()
    assert s.alive()


# --------------------------------------------------------------------- load

WRK_SCRIPT = ROOT / "bench" / "serve_thumbs.lua"


def thumbnail_etags(s, root, page, target, n, out):
    """Fetches the first n thumbnails of page `page` (showing `target`, whose
    keys are unique) one at a time, checks each against `extract`'s bytes, and
    writes "PATH ETAG LENGTH" lines to out (bench/serve_thumbs.lua's list)."""
    keys = [json.loads(line)["key"]
            for line in shardset("ls", target, "--json", cwd=root).stdout.splitlines()[:n]]
    files = out.parent / "extracted"
    shardset("extract", target, "-o", files, "-q", cwd=root)
    lines = []
    for pos, key in enumerate(keys):
        path = f"/thumb/{page}/{pos}/png"
        status, body, headers = s.get(path)
        assert status == 200 and body == (files / f"{key}.png").read_bytes(), (pos, key)
        lines.append(f"{path} {headers['ETag']} {len(body)}")
    out.write_text("\n".join(lines) + "\n")


def test_thousand_concurrent_thumbnail_requests(site, tmp_path):
    """wrk on loopback, 1,000 connections for a few seconds: every answer is a
    200 with the ETag and length the sample had when the server was idle."""
    if not shutil.which("wrk"):
        pytest.fail("wrk is missing (scripts/install-deps.sh installs it)")
    root, s = site
    etags = tmp_path / "etags.txt"
    thumbnail_etags(s, root, 1, "fm.catalog#shirts", 1000, etags)
    env = dict(os.environ, THUMBS_LIST=str(etags))
    proc = run("wrk", "-t2", "-c1000", "-d3s", "--latency", "-s", WRK_SCRIPT, s.url, env=env)
    out = proc.stdout.decode()
    m = re.search(r"^checked (\d+) answers, (\d+) wrong", out, re.M)
    assert m, out
    assert int(m.group(1)) > 1000 and int(m.group(2)) == 0, out
    assert re.search(r"^requests \d+ errors 0 ", out, re.M), out
    assert s.alive()
