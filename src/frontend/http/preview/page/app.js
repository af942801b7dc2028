// The preview page: browses the tree (.atlas/tree) and draws 2-D slices of arrays
// (.atlas/render.png). A pyramid view (a group whose attributes carry `multiscales`) is one
// picture: zoom step z shows level min(z, last) — the coarsest level first — and every
// picture asks for the visible region only, in the level's own indices.
"use strict";

const MAX_CANVAS = [800, 520]; // canvas width, height at most (CSS pixels)
const $ = (id) => document.getElementById(id);

// Every picture URL asked for, in order (for people and tests to follow the page).
window.atlasRequests = [];

let tree = null; // the root's JSON
let view = null; // what is drawn: see open()
let drawing = null; // the AbortController of the picture being fetched

// ---- the tree -------------------------------------------------------------------------

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

function nodeAt(path) {
  let node = tree;
  for (const part of path.split("/").filter((p) => p)) {
    node = (node.children || []).find((c) => c.name === part);
    if (!node) return null;
  }
  return node;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function arrayItem(node) {
  const li = el("li", { class: "array", "data-path": node.path },
    el("span", { class: "name", textContent: node.name }),
    el("span", { class: "shape", textContent: node.shape.join("×") || "scalar" }),
    el("span", { class: "dtype", textContent: node.dtype }),
    el("span", { class: "dims", textContent: `(${node.dims.join(", ")})` }));
  li.addEventListener("click", (event) => {
    event.stopPropagation();
    open([node], node.dims, li);
  });
  return li;
}

// The levels of a pyramid group, coarsest first, or null.
function pyramidOf(group) {
  const ms = group.attrs && group.attrs.multiscales;
  const first = Array.isArray(ms) ? ms[0] : null;
  if (!first || !Array.isArray(first.datasets) || first.datasets.length < 2) return null;
  const levels = first.datasets.map((d) => String(d.path));
  if (levels.some((p) => p === "." || p === "")) return null;
  const kw = (first.metadata && first.metadata.kwargs) || {};
  return { levels, dims: Array.isArray(kw.dims) ? kw.dims : null };
}

function groupItem(node) {
  const summary = el("summary", {}, el("span", { class: "name", textContent: node.name || "/" }));
  const pyramid = pyramidOf(node);
  if (pyramid) summary.append(el("span", { class: "tag", textContent: `pyramid, ${pyramid.levels.length} levels` }));
  const details = el("details", { class: "group", "data-path": node.path, open: true }, summary);
  const list = el("ul");
  details.append(list);
  const fill = () => {
    if (pyramid) {
      const coarsest = (node.children || []).find((c) => c.name === pyramid.levels[0]);
      for (const a of (coarsest && coarsest.children) || []) {
        if (a.kind !== "array" || a.dims.length < 2) continue;
        if (pyramid.dims && !pyramid.dims.every((d) => a.dims.includes(d))) continue;
        const li = el("li", { class: "pyramid-var", "data-pyramid": node.path, "data-var": a.name },
          el("span", { class: "name", textContent: `${a.name}` }),
          el("span", { class: "tag", textContent: "zoomable" }));
        li.addEventListener("click", (event) => { event.stopPropagation(); openPyramid(node, pyramid, a.name, li); });
        list.append(li);
      }
    }
    for (const child of node.children || []) {
      list.append(child.kind === "group" ? groupItem(child) : arrayItem(child));
    }
  };
  if (node.children === null) {
    // Cut from the document (a large tree): fetched when opened.
    details.open = false;
    details.addEventListener("toggle", async function load() {
      if (!details.open) return;
      details.removeEventListener("toggle", load);
      const full = await fetchJson(`.atlas/tree?path=${encodeURIComponent(node.path)}`);
      node.children = full.children;
      fill();
    });
  } else {
    fill();
  }
  return el("li", {}, details);
}

async function loadTree() {
  tree = await fetchJson(".atlas/tree");
  const nav = $("tree");
  nav.textContent = "";
  const list = el("ul", { class: "root" });
  for (const child of tree.children || []) {
    list.append(child.kind === "group" ? groupItem(child) : arrayItem(child));
  }
  nav.append(list);
  $("summary").textContent = `${(tree.children || []).length} datasets`;
  nav.setAttribute("data-loaded", "true");
}

// ---- what is drawn ----------------------------------------------------------------------

function select(item) {
  for (const e of document.querySelectorAll("#tree .selected")) e.classList.remove("selected");
  if (item) item.classList.add("selected");
}

function openPyramid(group, pyramid, name, item) {
  const levels = [];
  for (const path of pyramid.levels) {
    const node = nodeAt(`${group.path}/${path}/${name}`);
    if (!node) { showError(`${group.path}/${path}/${name} is not in the tree`); return; }
    levels.push(node);
  }
  open(levels, pyramid.dims, item);
}

// Opens `levels` (one array, or a pyramid's levels coarsest first) at zoom 0.
function open(levels, dims, item) {
  select(item);
  const finest = levels[levels.length - 1];
  if (finest.dims.length < 2) {
    showDetails(finest);
    showError(`${finest.path} has ${finest.dims.length} dimension(s): nothing to draw`);
    $("stage").hidden = true;
    return;
  }
  $("stage").hidden = false;
  const yx = dims && dims.length === 2 ? dims : finest.dims.slice(-2);
  view = { levels, y: yx[0], x: yx[1], index: {}, zoom: 0, center: null };
  showDetails(finest);
  fillControls();
  recentre();
  draw();
}

function showDetails(node) {
  $("welcome").hidden = true;
  $("details").hidden = false;
  $("title").textContent = node.path;
  $("meta").textContent = `${node.dtype}, shape ${node.shape.join("×")}, dims (${node.dims.join(", ")}), chunks ${node.chunks.join("×")}`;
  const table = $("attrs");
  table.textContent = "";
  for (const [k, v] of Object.entries(node.attrs || {})) {
    const text = typeof v === "string" ? v : JSON.stringify(v);
    table.append(el("tr", {}, el("td", { textContent: k }), el("td", { textContent: text })));
  }
  showError("");
}

function fillControls() {
  const finest = view.levels[view.levels.length - 1];
  const pyramid = view.levels.length > 1;
  for (const [id, chosen] of [["y-dim", view.y], ["x-dim", view.x]]) {
    const s = $(id);
    s.textContent = "";
    for (const d of finest.dims) s.append(el("option", { value: d, textContent: d, selected: d === chosen }));
    s.disabled = pyramid;
  }
  const indices = $("indices");
  indices.textContent = "";
  finest.dims.forEach((d, axis) => {
    if (d === view.y || d === view.x) return;
    view.index[d] = Math.min(view.index[d] || 0, finest.shape[axis] - 1);
    const input = el("input", { type: "number", min: 0, max: finest.shape[axis] - 1, value: view.index[d], "data-dim": d });
    const slider = el("input", { type: "range", min: 0, max: finest.shape[axis] - 1, value: view.index[d] });
    const set = (value) => {
      const i = Math.max(0, Math.min(finest.shape[axis] - 1, parseInt(value, 10) || 0));
      input.value = slider.value = i;
      if (view.index[d] !== i) { view.index[d] = i; later(draw); }
    };
    input.addEventListener("input", () => set(input.value));
    input.addEventListener("change", () => set(input.value));
    slider.addEventListener("input", () => set(slider.value));
    indices.append(el("label", { class: "index" }, `${d} `, input, slider));
  });
}

let timer = null;
function later(f) {
  clearTimeout(timer);
  timer = setTimeout(f, 200);
}

// ---- geometry: everything in the finest level's indices --------------------------------

function axes(node) {
  return [node.dims.indexOf(view.y), node.dims.indexOf(view.x)];
}

function extent() {
  const finest = view.levels[view.levels.length - 1];
  const [ya, xa] = axes(finest);
  return [finest.shape[ya], finest.shape[xa]];
}

function recentre() {
  const [h, w] = extent();
  view.center = [h / 2, w / 2];
  const s = Math.min(MAX_CANVAS[0] / w, MAX_CANVAS[1] / h);
  const canvas = $("view");
  canvas.width = Math.max(1, Math.round(w * s));
  canvas.height = Math.max(1, Math.round(h * s));
  view.scale = s; // canvas pixels per finest element at zoom 0
}

function levelNow() {
  return Math.min(view.zoom, view.levels.length - 1);
}

// The visible part of the finest level: [y0, y1, x0, x1] (fractional).
function visible() {
  const [h, w] = extent();
  const f = 2 ** view.zoom;
  const [cy, cx] = view.center;
  return [cy - h / f / 2, cy + h / f / 2, cx - w / f / 2, cx + w / f / 2];
}

function clampCentre() {
  const [h, w] = extent();
  view.center[0] = Math.max(0, Math.min(h, view.center[0]));
  view.center[1] = Math.max(0, Math.min(w, view.center[1]));
}

// ---- pictures ---------------------------------------------------------------------------

function pictureUrl() {
  const k = levelNow();
  const node = view.levels[k];
  const finest = view.levels[view.levels.length - 1];
  const [ya, xa] = axes(node);
  const [fya, fxa] = axes(finest);
  const fy = finest.shape[fya] / node.shape[ya];
  const fx = finest.shape[fxa] / node.shape[xa];
  const params = new URLSearchParams({ array: node.path, y: view.y, x: view.x });
  const index = node.dims
    .map((d, axis) => (d === view.y || d === view.x ? null : `${d}:${Math.min(view.index[d] || 0, node.shape[axis] - 1)}`))
    .filter((e) => e);
  if (index.length) params.set("index", index.join(","));
  let region = [0, node.shape[ya], 0, node.shape[xa]];
  if (view.zoom > 0) {
    const [y0, y1, x0, x1] = visible();
    const clip = (v, n) => Math.max(0, Math.min(n, v));
    region = [
      clip(Math.floor(y0 / fy), node.shape[ya] - 1), clip(Math.ceil(y1 / fy), node.shape[ya]),
      clip(Math.floor(x0 / fx), node.shape[xa] - 1), clip(Math.ceil(x1 / fx), node.shape[xa]),
    ];
    region[1] = Math.max(region[1], region[0] + 1);
    region[3] = Math.max(region[3], region[2] + 1);
    params.set("region", `${region[0]}:${region[1]},${region[2]}:${region[3]}`);
  }
  params.set("cmap", $("cmap").value);
  for (const bound of ["vmin", "vmax"]) {
    const v = $(bound).value.trim();
    if (v !== "" && Number.isFinite(Number(v))) params.set(bound, v);
  }
  // Where the region lies in the finest level's indices.
  const box = [region[0] * fy, region[1] * fy, region[2] * fx, region[3] * fx];
  return { url: `.atlas/render.png?${params}`, level: k, node, box };
}

async function draw() {
  if (!view) return;
  const { url, level, node, box } = pictureUrl();
  if (drawing) drawing.abort();
  const controller = new AbortController();
  drawing = controller;
  const canvas = $("view");
  canvas.setAttribute("data-state", "loading");
  window.atlasRequests.push(url);
  try {
    const response = await fetch(url, { signal: controller.signal });
    if (!response.ok) throw new Error(`${response.status}: ${await response.text()}`);
    const vmin = response.headers.get("X-Atlas-Vmin");
    const vmax = response.headers.get("X-Atlas-Vmax");
    const step = response.headers.get("X-Atlas-Step");
    const bitmap = await createImageBitmap(await response.blob());
    if (controller.signal.aborted) return;
    paint(bitmap, box);
    $("vmin-label").textContent = label(vmin);
    $("vmax-label").textContent = label(vmax);
    $("colorbar").src = `.atlas/colorbar.png?cmap=${encodeURIComponent($("cmap").value)}`;
    $("png-link").href = url;
    const levels = view.levels.length > 1 ? `level ${level} of ${view.levels.length} (${node.path}), ` : "";
    $("status").textContent = `${levels}zoom ${view.zoom}, region ${response.headers.get("X-Atlas-Region")}` +
      (step && step !== "1" ? `, ${step}×${step} values per pixel (mean)` : "");
    showError("");
    canvas.setAttribute("data-src", url);
    canvas.setAttribute("data-level", String(level));
    canvas.setAttribute("data-state", "ready");
  } catch (e) {
    if (e.name === "AbortError") return;
    showError(String(e.message || e));
    canvas.setAttribute("data-state", "error");
  }
}

function label(text) {
  const v = Number(text);
  if (text === null || !Number.isFinite(v)) return "no values";
  return Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : String(Number(v.toPrecision(6)));
}

// Draws `bitmap`, which covers `box` of the finest level, where the view puts it.
function paint(bitmap, box) {
  const canvas = $("view");
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const [vy0, , vx0] = visible();
  const s = view.scale * 2 ** view.zoom;
  ctx.drawImage(bitmap, (box[2] - vx0) * s, (box[0] - vy0) * s, (box[3] - box[2]) * s, (box[1] - box[0]) * s);
}

function showError(text) {
  $("error").textContent = text;
}

// ---- controls ---------------------------------------------------------------------------

function zoom(by) {
  if (!view) return;
  view.zoom = Math.max(0, Math.min(view.zoom + by, 16));
  if (view.zoom === 0) recentre();
  draw();
}

function pan(dy, dx) {
  if (!view || view.zoom === 0) return;
  const [y0, y1, x0, x1] = visible();
  view.center[0] += dy * (y1 - y0) / 4;
  view.center[1] += dx * (x1 - x0) / 4;
  clampCentre();
  draw();
}

function wire() {
  $("zoom-in").addEventListener("click", () => zoom(1));
  $("zoom-out").addEventListener("click", () => zoom(-1));
  $("reset").addEventListener("click", () => { if (view) { view.zoom = 0; recentre(); draw(); } });
  $("pan-left").addEventListener("click", () => pan(0, -1));
  $("pan-right").addEventListener("click", () => pan(0, 1));
  $("pan-up").addEventListener("click", () => pan(-1, 0));
  $("pan-down").addEventListener("click", () => pan(1, 0));
  for (const id of ["y-dim", "x-dim"]) {
    $(id).addEventListener("change", () => {
      if (!view) return;
      view[id[0]] = $(id).value;
      if (view.y === view.x) { showError("y and x must be different dimensions"); return; }
      view.zoom = 0;
      fillControls();
      recentre();
      draw();
    });
  }
  for (const id of ["cmap", "vmin", "vmax"]) $(id).addEventListener("change", draw);
  const canvas = $("view");
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    if (!view) return;
    // Zoom about the pointer: keep the element under it in place.
    const rect = canvas.getBoundingClientRect();
    const [vy0, , vx0] = visible();
    const s = view.scale * 2 ** view.zoom;
    const py = vy0 + (event.clientY - rect.top) / s;
    const px = vx0 + (event.clientX - rect.left) / s;
    const by = event.deltaY < 0 ? 1 : -1;
    const next = Math.max(0, Math.min(view.zoom + by, 16));
    const ratio = 2 ** (view.zoom - next);
    view.center = [py + (view.center[0] - py) * ratio, px + (view.center[1] - px) * ratio];
    view.zoom = next;
    if (next === 0) recentre();
    clampCentre();
    later(draw);
  }, { passive: false });
  let drag = null;
  canvas.addEventListener("mousedown", (event) => {
    if (view && view.zoom > 0) drag = [event.clientY, event.clientX, ...view.center, false];
  });
  window.addEventListener("mouseup", () => {
    const moved = drag && drag[4];
    drag = null;
    if (moved) draw();
  });
  window.addEventListener("mousemove", (event) => {
    if (!drag || !view || view.zoom === 0) return;
    const s = view.scale * 2 ** view.zoom;
    view.center = [drag[2] - (event.clientY - drag[0]) / s, drag[3] - (event.clientX - drag[1]) / s];
    drag[4] = true;
    clampCentre();
  });
}

wire();
loadTree().catch((e) => {
  $("tree").textContent = `cannot read the tree: ${e.message || e}`;
});
