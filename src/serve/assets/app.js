// shardset serve's page: one script drawing the list of pages, a page's
// summary and grid, and a sample, from the server's JSON (docs/serve.md).
// Everything from the data goes in as text nodes, never as markup.
"use strict";

const main = document.getElementById("main");
const crumb = document.getElementById("crumb");

function el(tag, attrs, ...children) {
  const svg = ["svg", "rect", "polygon", "title"].includes(tag);
  const e = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag)
                : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function get(url) {
  const r = await fetch(url);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

const fmtInt = (n) => Number(n).toLocaleString("en-US");
function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; ++i; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

// A colour per label, the same on every chart and in the strip.
function labelColour(index, count, name) {
  if (index < 0) {  // an annotation's label that is not a class: a hue from its name
    let h = 0;
    for (const c of String(name)) h = (h * 31 + c.codePointAt(0)) % 360;
    return `hsl(${h}, 80%, 45%)`;
  }
  return `hsl(${Math.round(360 * index / Math.max(count, 1))}, 65%, 48%)`;
}

function fail(where, err) {
  where.replaceChildren(el("p", {class: "error", id: "error"}, String(err.message || err)));
}

// ---- the list of pages

async function showPages() {
  crumb.textContent = "";
  const pages = await get("/api/pages");
  const rows = pages.map((p) => el("tr", {},
    el("td", {}, el("a", {href: `/p/${p.id}`, class: "page-link"}, p.name)),
    el("td", {}, p.kind), el("td", {class: "num"}, fmtInt(p.samples)),
    el("td", {class: "muted"}, p.target)));
  main.replaceChildren(el("h1", {}, "Datasets, views and catalog directories"),
    el("table", {id: "pages"}, el("tr", {}, el("th", {}, "name"), el("th", {}, "kind"),
      el("th", {class: "num"}, "samples"), el("th", {}, "target")), ...rows));
}

// ---- a page: summary, shards, order strip, grid

function bars(id, counts, colours) {
  const entries = Object.entries(counts);
  const most = Math.max(1, ...entries.map(([, n]) => n));
  const box = el("div", {class: "bars", id});
  entries.forEach(([label, n], i) => {
    box.append(el("span", {class: "bar-label"}, label),
      el("div", {class: "bar", "data-label": label, "data-count": n,
                 style: `width:${(100 * n / most).toFixed(2)}%;` +
                        (colours ? `background:${colours(label, i)}` : "")}),
      el("span", {class: "num bar-count"}, fmtInt(n)));
  });
  return box;
}

async function showPage(id, gridPage) {
  const summary = await get(`/api/p/${id}/info`);
  const info = summary.info;
  crumb.textContent = ` / ${summary.name}`;
  const labelNames = Object.keys(info.labels);
  const colourOf = (label) => labelColour(labelNames.indexOf(label), labelNames.length, label);
  const head = el("div", {},
    el("h1", {id: "title"}, summary.name, " ", el("span", {class: "muted"}, `(${summary.kind})`)),
    el("div", {class: "muted"}, info.target),
    el("p", {},
      el("span", {class: "stat"}, el("b", {id: "samples"}, fmtInt(info.samples)), " samples"),
      info.shards !== undefined ? el("span", {class: "stat"}, el("b", {id: "shard-count"},
        fmtInt(info.shards)), " shards") : null,
      el("span", {class: "stat"}, el("b", {id: "bytes"}, fmtBytes(info.field_bytes)),
        " of fields"),
      el("span", {class: "stat"}, el("b", {id: "label-count"}, labelNames.length),
        ` labels (${info.label_field})`)));
  const sections = [head];
  sections.push(el("h2", {}, "Labels"), labelNames.length
    ? bars("labels", info.labels, colourOf)
    : el("p", {class: "muted"}, `No '${info.label_field}' field.`));
  if (info.sources) {
    const selected = {};
    for (const s of info.sources) selected[s.name] = s.selected;
    sections.push(el("h2", {}, "Sources"), bars("sources", selected));
    for (const s of info.sources) {
      if (Object.keys(s.labels).length) {
        sections.push(el("h3", {}, `${s.name}: labels`),
                      bars(`source-labels-${info.sources.indexOf(s)}`, s.labels, colourOf));
      }
    }
  }
  const fields = el("table", {id: "fields"}, el("tr", {}, el("th", {}, "field"),
    el("th", {class: "num"}, "samples"), el("th", {class: "num"}, "bytes"), el("th", {}, "")));
  for (const [name, f] of Object.entries(info.fields)) {
    fields.append(el("tr", {}, el("td", {}, name), el("td", {class: "num"}, fmtInt(f.samples)),
      el("td", {class: "num"}, fmtBytes(f.bytes)), el("td", {class: "muted"},
        f.derived ? "derived" : "")));
  }
  sections.push(el("h2", {}, "Fields"), fields);
  const order = el("div", {id: "order"}, el("p", {class: "muted"}, "Measuring the order…"));
  const shards = el("div", {id: "shards"}, el("p", {class: "muted"}, "Loading shards…"));
  const grid = el("div", {id: "grid-section"});
  sections.push(el("h2", {}, "Order"), order, el("h2", {}, "Samples"), grid,
                el("h2", {}, "Shards"), shards);
  main.replaceChildren(...sections);
  showOrder(id, order).catch((e) => fail(order, e));
  showShards(id, shards).catch((e) => fail(shards, e));
  await showGrid(id, gridPage, grid, colourOf);
}

// One row per label; each column a slice of the order, darker where more of
// the slice's samples carry that label. An ordered dataset shows blocks, a
// shuffled one even grey, an interleaved one even colour.
async function showOrder(id, box) {
  const o = await get(`/api/p/${id}/order?width=1000`);
  const rows = o.strip.labels;
  const w = o.strip.width, rowH = 12;
  const canvas = el("canvas", {class: "strip", id: "strip", width: w,
                               height: Math.max(1, rows.length) * rowH});
  const ctx = canvas.getContext("2d");
  const per = o.strip.samples_per_slice;
  rows.forEach((row, r) => {
    ctx.fillStyle = labelColour(r, rows.length);
    row.slices.forEach((n, x) => {
      if (!n) return;
      ctx.globalAlpha = Math.min(1, n / Math.max(per, 1));
      ctx.fillRect(x, r * rowH, 1, rowH - 1);
    });
  });
  ctx.globalAlpha = 1;
  const legend = el("div", {class: "muted"}, "rows, top to bottom: ",
    rows.map((r) => r.label).join(", "), `; ${fmtInt(o.samples)} samples in ${w} slices`);
  const nb = o.neighbours;
  box.replaceChildren(
    el("p", {id: "verdict"}, el("b", {}, o.verdict_line)),
    el("p", {}, `Neighbours with the same label: ${(100 * nb.rate).toFixed(2)}% `,
      el("span", {class: "muted"}, `(a random order: ${(100 * nb.expected_rate).toFixed(2)}%)`),
      `; longest run ${fmtInt(o.longest_run.length)} `,
      el("span", {class: "muted"}, `(expected ${Number(o.longest_run.expected).toFixed(1)})`)),
    canvas, legend);
}

async function showShards(id, box) {
  const s = await get(`/api/p/${id}/shards`);
  const table = el("table", {id: "shard-table"}, el("tr", {}, el("th", {}, "shard"),
    el("th", {}, "format"), el("th", {class: "num"}, "samples"), el("th", {class: "num"}, "bytes"),
    el("th", {}, "verify")));
  for (const src of s.sources) {
    if (s.sources.length > 1) table.append(el("tr", {}, el("th", {colspan: 5}, src.name)));
    for (const sh of src.shards) {
      table.append(el("tr", {}, el("td", {}, sh.path), el("td", {}, sh.format),
        el("td", {class: "num"}, fmtInt(sh.samples)), el("td", {class: "num"}, fmtBytes(sh.bytes)),
        el("td", {class: sh.status.split(" ")[0], title: sh.problems.join("\n")},
          sh.status + (sh.problems.length ? `: ${sh.problems[0]}` : ""))));
    }
  }
  const state = s.verify === "off" ? "not run (--no-verify)"
    : s.verify === "done" ? (s.problems.length ? `${s.problems.length} problems` : "every shard verifies")
    : `${s.verify}: ${s.shards_done} of ${s.shards_total || "?"} shards`;
  box.replaceChildren(el("p", {id: "verify-state"}, "Verify: ", state), table);
  if (s.verify === "pending" || s.verify === "running") {
    setTimeout(() => showShards(id, box).catch((e) => fail(box, e)), 1000);
  }
}

function overlay(annotations, width, height, colourOf) {
  if (!annotations || !annotations.length || !width || !height) return null;
  const svg = el("svg", {viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "xMidYMid meet",
                         class: "annotations"});
  for (const a of annotations) {
    const common = {fill: "none", stroke: colourOf(a.label), "stroke-width": 2,
                    "vector-effect": "non-scaling-stroke", "data-kind": a.kind};
    let shape = null;
    if (a.kind === "box" && a.box) {
      const [x, y, w, h] = a.box;
      shape = el("rect", {...common, x, y, width: w, height: h});
    } else if (a.kind === "polygon" && a.polygon) {
      const pts = [];
      for (let i = 0; i + 1 < a.polygon.length; i += 2) pts.push(`${a.polygon[i]},${a.polygon[i + 1]}`);
      shape = el("polygon", {...common, points: pts.join(" ")});
    }
    if (shape) { shape.append(el("title", {}, a.label)); svg.append(shape); }
  }
  return svg;
}

async function showGrid(id, page, box, colourOf) {
  const g = await get(`/api/p/${id}/samples?page=${page}&per=48`);
  const link = (p, text) => p >= 0 && p < g.pages
    ? el("a", {href: `/p/${id}?page=${p}`, class: `pager-${text}`}, text)
    : el("span", {class: "muted"}, text);
  const pager = el("div", {class: "pager"}, link(0, "first"), link(page - 1, "previous"),
    el("span", {id: "page-of"}, `page ${page + 1} of ${fmtInt(g.pages)}`),
    link(page + 1, "next"), link(g.pages - 1, "last"));
  const cells = el("div", {class: "grid", id: "grid"});
  for (const s of g.samples) {
    if (s.error) { cells.append(el("div", {class: "cell error"}, s.error)); continue; }
    const thumb = el("div", {class: "thumb"});
    if (s.image) {
      thumb.append(el("img", {loading: "lazy", alt: s.key,
        src: `/thumb/${id}/${s.pos}/${encodeURIComponent(s.image)}`}));
      const svg = overlay(s.annotations, s.width, s.height, colourOf);
      if (svg) thumb.append(svg);
    }
    cells.append(el("a", {class: "cell", href: `/p/${id}/s/${s.pos}`, "data-pos": s.pos},
      thumb, el("div", {class: "key", title: s.key}, s.key),
      el("div", {class: "label"}, s.label === undefined ? "" : s.label)));
  }
  box.replaceChildren(pager, cells);
}

// ---- a sample

async function showSample(id, pos) {
  const [s, summary] = await Promise.all([get(`/api/p/${id}/sample/${pos}`),
                                          get(`/api/p/${id}/info`)]);
  const labelNames = Object.keys(summary.info.labels);
  const colourOf = (label) => labelColour(labelNames.indexOf(label), labelNames.length, label);
  crumb.replaceChildren(" / ", el("a", {href: `/p/${id}`, style: "color:#fff"}, summary.name),
                        ` / sample ${pos}`);
  const nav = el("div", {class: "pager"},
    pos > 0 ? el("a", {href: `/p/${id}/s/${pos - 1}`, id: "prev"}, "previous") : null,
    el("a", {href: `/p/${id}?page=${Math.floor(pos / 48)}`}, "back to the grid"),
    pos + 1 < s.samples_total ? el("a", {href: `/p/${id}/s/${pos + 1}`, id: "next"}, "next") : null);
  const parts = [el("h1", {id: "sample-key"}, s.key), nav,
    el("p", {}, "position ", el("b", {id: "sample-pos"}, pos), " · source ", s.source,
      ", sample ", s.ordinal, s.label !== undefined ? " · label " : "",
      s.label !== undefined ? el("b", {id: "sample-label"}, s.label) : null)];
  if (s.image) {
    const big = el("div", {class: "big"},
      el("img", {src: `/raw/${id}/${pos}/${encodeURIComponent(s.image)}`, alt: s.key}));
    const svg = overlay(s.annotations, s.width, s.height, colourOf);
    if (svg) big.append(svg);
    parts.push(big);
  }
  const table = el("table", {id: "sample-fields"}, el("tr", {}, el("th", {}, "field"),
    el("th", {class: "num"}, "bytes"), el("th", {}, "type"), el("th", {}, "value")));
  for (const f of s.fields) {
    const url = `/raw/${id}/${pos}/${encodeURIComponent(f.name)}`;
    const value = f.text !== undefined ? el("pre", {}, f.text)
      : el("a", {href: url, download: f.name}, "download");
    table.append(el("tr", {"data-field": f.name}, el("td", {}, el("a", {href: url}, f.name),
      f.derived ? el("span", {class: "muted"}, " (derived)") : null),
      el("td", {class: "num"}, fmtInt(f.bytes)), el("td", {class: "muted"}, f.type),
      el("td", {}, value)));
  }
  parts.push(el("h2", {}, "Fields"), table);
  main.replaceChildren(...parts);
}

async function route() {
  const path = location.pathname;
  let m;
  try {
    if ((m = path.match(/^\/p\/(\d+)\/s\/(\d+)$/))) {
      await showSample(Number(m[1]), Number(m[2]));
    } else if ((m = path.match(/^\/p\/(\d+)$/))) {
      const page = Number(new URLSearchParams(location.search).get("page") || 0);
      await showPage(Number(m[1]), page);
    } else {
      await showPages();
    }
    document.body.dataset.ready = "true";
  } catch (e) {
    fail(main, e);
    document.body.dataset.ready = "error";
  }
}

route();
