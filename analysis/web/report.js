// The bargain report: tables, SVG figures that link to their games, a filterable game list and a
// transcript viewer. Data: #meta (JSON), #index (gzip+base64 game list, columnar) and one
// #block-N per GAMES_PER_BLOCK games (gzip+base64 details, decoded when a game opens).
// Model text is only ever inserted as text nodes, never as HTML.
"use strict";
(() => {
  const META = JSON.parse(document.getElementById("meta").textContent);
  const SVGNS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2856b6", "#d1495b", "#2a9d8f", "#e9a03b", "#7b4fb0", "#5c8001", "#c2407f", "#3d5a80", "#8d6e63"];
  const PAGE = 100;
  const domReady = new Promise((done) => {
    if (document.readyState !== "loading") done();
    else document.addEventListener("DOMContentLoaded", done);
  });

  // ---------------------------------------------------------------- helpers
  function build(ns, tag, attrs, kids) {
    const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }
  const h = (tag, attrs, ...kids) => build(null, tag, attrs, kids);
  const s = (tag, attrs, ...kids) => build(SVGNS, tag, attrs, kids);

  function fmt(v, digits = 3) {
    if (v === null || v === undefined) return "";
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      return a >= 1e4 || (a > 0 && a < 1e-3) ? v.toPrecision(digits) : v.toFixed(digits);
    }
    return String(v);
  }
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const unique = (xs) => [...new Set(xs)];
  const collator = new Intl.Collator(undefined, { numeric: true });
  const byValue = (a, b) => (isNum(a) && isNum(b) ? a - b : collator.compare(String(a), String(b)));
  const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

  async function unpack(b64) {
    const bin = atob(b64.trim());
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }

  // ---------------------------------------------------------------- tables as row objects
  const TABLES = new Map(META.tables.map((t) => [t.name, t]));
  const tableRows = (t) => t.rows.map((r) => Object.fromEntries(t.columns.map((c, i) => [c, r[i]])));
  const rowsOf = (name) => (TABLES.has(name) ? tableRows(TABLES.get(name)) : []);

  // Interval columns: c with c_low/c_high, c_ci_low/c_ci_high, c_boot_low/c_boot_high, or a bare
  // low/high pair belonging to the column before it.
  function intervals(columns) {
    const has = new Set(columns);
    const out = [];
    columns.forEach((c, i) => {
      for (const [lo, hi, kind] of [[`${c}_low`, `${c}_high`, ""], [`${c}_ci_low`, `${c}_ci_high`, "ci"],
        [`${c}_boot_low`, `${c}_boot_high`, "boot"]]) {
        if (has.has(lo) && has.has(hi)) out.push({ col: c, lo, hi, kind });
      }
      if (columns[i + 1] === "low" && has.has("high")) out.push({ col: c, lo: "low", hi: "high", kind: "" });
    });
    return out;
  }

  // ---------------------------------------------------------------- games and filters
  let GAMES = [];
  const GAME_AT = new Map(); // "exp:idx" -> position
  const FOCAL = new Set();
  const OPPONENTS = new Set();
  const FILTERS = [
    { key: "model", label: "model (focal)" }, { key: "opponent", label: "opponent" },
    { key: "competition", label: "competition" }, { key: "seat", label: "focal seat" },
    { key: "outcome", label: "outcome" }, { key: "round", label: "agreement round" },
    { key: "invalid", label: "invalid moves", options: ["any", "by focal", "by opponent", "none"] },
    ...META.conditions.map((c) => ({ key: c, label: c.replaceAll("_", " ") })),
  ];
  if (META.n_judge_labels) FILTERS.push({ key: "label", label: "judge label" });
  const FILTER_KEYS = new Set(FILTERS.map((f) => f.key));
  // Table columns that name something a game can be filtered on.
  const LINKS = { model: "model", focal_model: "model", opponent: "opponent", competition: "competition",
    seat: "seat", focal_seat: "seat", ...Object.fromEntries(META.conditions.map((c) => [c, c])) };

  const state = { filters: {}, page: 0, sort: { key: null, dir: 1 }, rendered: false };

  function matches(g, filters) {
    for (const [k, v] of Object.entries(filters)) {
      if (k === "invalid") {
        const who = g.invalid;
        if (v === "none" ? who !== "none" : v === "any" ? who === "none"
          : v === "by focal" ? !(who === "focal" || who === "both") : !(who === "opponent" || who === "both")) return false;
      } else if (k === "label") {
        if (!(g.labels || []).includes(v)) return false;
      } else if (String(g[k]) !== v) return false;
    }
    return true;
  }

  function filtersOfRow(row) {
    const f = {};
    for (const [col, key] of Object.entries(LINKS)) {
      const v = row[col];
      if (v === undefined || v === null || v === "all") continue;
      f[key] = String(v);
    }
    if (f.model !== undefined && (row.role === "opponent" || (!FOCAL.has(f.model) && OPPONENTS.has(f.model)))) {
      f.opponent = f.model;
      delete f.model;
    }
    return f;
  }
  const hashOf = (filters, game) => "#" + new URLSearchParams({ ...filters, ...(game ? { game } : {}) }).toString();

  const link = (filters, content) => h("a", { href: hashOf(filters), class: "go", title: "show these games" }, content);
  function svgLink(filters, tip, ...kids) {
    return s("a", { href: hashOf(filters), class: "go" }, s("title", { text: tip + "\n(click: show these games)" }), kids);
  }

  // ---------------------------------------------------------------- SVG charts
  function ticks(lo, hi, n = 5) {
    const span = hi - lo || Math.abs(hi) || 1;
    const raw = span / n;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => span / st <= n) || raw;
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toFixed(10)));
    return out;
  }
  // ", competition 0.5" for item games; other games have no competition level (their parameters are conditions)
  const level = (c) => (isNum(c) ? `, competition ${fmt(c, 2)}` : "");

  function extent(values, pad = 0.06) {
    const v = values.filter(isNum);
    if (!v.length) return [0, 1];
    let lo = Math.min(...v), hi = Math.max(...v);
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    const p = (hi - lo) * pad;
    return [lo - p, hi + p];
  }
  const scale = ([d0, d1], [r0, r1]) => (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);

  function axes(g, x, y, xd, yd, w, h_, m, xLabel, yLabel) {
    for (const t of ticks(...yd)) {
      g.append(s("line", { class: "grid", x1: m.l, x2: w - m.r, y1: y(t), y2: y(t) }),
        s("text", { x: m.l - 5, y: y(t) + 3, "text-anchor": "end", text: fmt(t, 2) }));
    }
    for (const t of ticks(...xd)) {
      g.append(s("line", { class: "grid", x1: x(t), x2: x(t), y1: m.t, y2: h_ - m.b }),
        s("text", { x: x(t), y: h_ - m.b + 14, "text-anchor": "middle", text: fmt(t, 2) }));
    }
    g.append(s("path", { class: "axis", d: `M${m.l},${m.t}V${h_ - m.b}H${w - m.r}`, fill: "none", stroke: "#8a96a5" }),
      s("text", { x: (m.l + w - m.r) / 2, y: h_ - 6, "text-anchor": "middle", text: xLabel }),
      s("text", { transform: `translate(12,${(m.t + h_ - m.b) / 2}) rotate(-90)`, "text-anchor": "middle", text: yLabel }));
  }

  // Points with intervals (and optional fitted curves with bands), one colour per series.
  function xyChart({ title, xLabel, yLabel, series, refs }) {
    const w = 430, h_ = 300, m = { l: 52, r: 12, t: 24, b: 40 };
    const xs = series.flatMap((sr) => [...sr.points.map((p) => p.x), ...(sr.curve || []).map((p) => p.x)]);
    const ys = series.flatMap((sr) => [...sr.points.flatMap((p) => [p.y, p.lo, p.hi]),
      ...(sr.curve || []).flatMap((p) => [p.lo, p.hi]), ...(refs ? [sr.ref] : [])]);
    const xd = extent(xs), yd = extent(ys);
    const x = scale(xd, [m.l, w - m.r]), y = scale(yd, [h_ - m.b, m.t]);
    const svg = s("svg", { class: "chart", width: w, height: h_, viewBox: `0 0 ${w} ${h_}` });
    axes(svg, x, y, xd, yd, w, h_, m, xLabel, yLabel);
    svg.append(s("text", { class: "title", x: m.l, y: 15, text: title }));
    const span = xd[1] - xd[0];
    series.forEach((sr, k) => {
      const dodge = (k - (series.length - 1) / 2) * 0.008 * span;
      if (sr.curve && sr.curve.length) {
        const c = sr.curve.filter((p) => isNum(p.y));
        const band = c.filter((p) => isNum(p.lo) && isNum(p.hi));
        if (band.length) {
          svg.append(s("path", { fill: sr.color, "fill-opacity": 0.15, stroke: "none",
            d: "M" + band.map((p) => `${x(p.x)},${y(p.hi)}`).join("L") + "L" + band.slice().reverse().map((p) => `${x(p.x)},${y(p.lo)}`).join("L") + "Z" }));
        }
        svg.append(s("path", { fill: "none", stroke: sr.color, "stroke-width": 2, d: "M" + c.map((p) => `${x(p.x)},${y(p.y)}`).join("L") }));
      }
      if (refs && isNum(sr.ref)) {
        svg.append(s("line", { x1: m.l, x2: w - m.r, y1: y(sr.ref), y2: y(sr.ref), stroke: sr.color, "stroke-dasharray": "2,3" }));
      }
      for (const p of sr.points) {
        if (!isNum(p.y)) continue;
        const px = x(p.x + dodge);
        svg.append(svgLink(p.filters, p.tip,
          isNum(p.lo) && isNum(p.hi) ? s("line", { x1: px, x2: px, y1: y(p.lo), y2: y(p.hi), stroke: sr.color, "stroke-width": 1.5 }) : null,
          s("circle", { cx: px, cy: y(p.y), r: 5, fill: sr.color, stroke: "#fff", "data-point": "1" })));
      }
    });
    series.forEach((sr, k) => {
      const ly = m.t + 4 + k * 14;
      svg.append(s("circle", { cx: w - m.r - 110, cy: ly, r: 4, fill: sr.color }),
        s("text", { x: w - m.r - 102, y: ly + 4, text: sr.name }));
    });
    return svg;
  }

  function heatColor(v, [lo, hi], diverging) {
    if (!isNum(v)) return "#f0f0f0";
    const t = Math.max(0, Math.min(1, (v - lo) / (hi - lo || 1)));
    if (diverging) { // blue (low) - white - red (high)
      const a = Math.abs(t - 0.5) * 2;
      const [r, g, b] = t < 0.5 ? [33, 102, 172] : [178, 24, 43];
      return `rgb(${Math.round(255 + (r - 255) * a)},${Math.round(255 + (g - 255) * a)},${Math.round(255 + (b - 255) * a)})`;
    }
    return `rgb(${Math.round(247 - t * 200)},${Math.round(251 - t * 150)},${Math.round(255 - t * 80)})`;
  }

  // cells: Map "row|col" -> {v, text, tip, filters}
  function heatmap({ title, rows, cols, cells, domain, diverging, colLabel }) {
    const cw = Math.max(46, Math.min(70, 520 / Math.max(cols.length, 1))), ch = 26;
    const labelW = 12 + 6.5 * Math.max(4, ...rows.map((r) => String(r).length));
    const w = labelW + cw * cols.length + 12, h_ = 40 + ch * rows.length + 34;
    const svg = s("svg", { class: "chart", width: w, height: h_, viewBox: `0 0 ${w} ${h_}` });
    svg.append(s("text", { class: "title", x: 8, y: 15, text: title }));
    cols.forEach((c, j) => svg.append(s("text", { x: labelW + cw * j + cw / 2, y: 34, "text-anchor": "middle", text: c })));
    rows.forEach((r, i) => {
      svg.append(s("text", { x: labelW - 6, y: 40 + ch * i + ch / 2 + 4, "text-anchor": "end", text: r }));
      cols.forEach((c, j) => {
        const cell = cells.get(`${r}|${c}`);
        if (!cell) return;
        const dark = diverging ? Math.abs(cell.v - (domain[0] + domain[1]) / 2) > (domain[1] - domain[0]) * 0.3
          : (cell.v - domain[0]) / (domain[1] - domain[0] || 1) > 0.75;
        svg.append(svgLink(cell.filters, cell.tip,
          s("rect", { x: labelW + cw * j + 1, y: 40 + ch * i + 1, width: cw - 2, height: ch - 2, fill: heatColor(cell.v, domain, diverging), "data-cell": "1" }),
          s("text", { x: labelW + cw * j + cw / 2, y: 40 + ch * i + ch / 2 + 4, "text-anchor": "middle", text: cell.text,
            style: `fill:${dark ? "#fff" : "#1d232b"};pointer-events:none` })));
      });
    });
    svg.append(s("text", { x: labelW + (cw * cols.length) / 2, y: h_ - 8, "text-anchor": "middle", text: colLabel }));
    return svg;
  }

  // Horizontal intervals: items [{label, v, lo, hi, tip, filters}]
  function forest({ title, items, xLabel, zero }) {
    const shown = items.filter((it) => isNum(it.v)).slice(0, 80);
    const labelW = 16 + 6.3 * Math.max(6, ...shown.map((it) => it.label.length));
    const w = Math.min(1100, labelW + 420), rowH = 18, m = { t: 28, b: 36 };
    const h_ = m.t + rowH * Math.max(shown.length, 1) + m.b;
    const xd = extent(shown.flatMap((it) => [it.v, it.lo, it.hi]).concat(zero ? [0] : []));
    const x = scale(xd, [labelW, w - 14]);
    const svg = s("svg", { class: "chart", width: w, height: h_, viewBox: `0 0 ${w} ${h_}` });
    svg.append(s("text", { class: "title", x: 8, y: 15, text: title }));
    for (const t of ticks(...xd)) {
      svg.append(s("line", { class: "grid", x1: x(t), x2: x(t), y1: m.t - 4, y2: h_ - m.b }),
        s("text", { x: x(t), y: h_ - m.b + 14, "text-anchor": "middle", text: fmt(t, 2) }));
    }
    if (zero && xd[0] <= 0 && xd[1] >= 0) svg.append(s("line", { x1: x(0), x2: x(0), y1: m.t - 4, y2: h_ - m.b, stroke: "#555" }));
    svg.append(s("text", { x: (labelW + w) / 2, y: h_ - 6, "text-anchor": "middle", text: xLabel }));
    shown.forEach((it, i) => {
      const cy = m.t + rowH * i + rowH / 2;
      svg.append(s("text", { x: labelW - 6, y: cy + 4, "text-anchor": "end", text: it.label }));
      const mark = [isNum(it.lo) && isNum(it.hi) ? s("line", { x1: x(it.lo), x2: x(it.hi), y1: cy, y2: cy, stroke: COLORS[0], "stroke-width": 2 }) : null,
        s("circle", { cx: x(it.v), cy, r: 4.5, fill: COLORS[0], "data-point": "1" })];
      svg.append(Object.keys(it.filters || {}).length ? svgLink(it.filters, it.tip, mark) : s("g", {}, s("title", { text: it.tip }), mark));
    });
    return svg;
  }

  // Grouped horizontal bars: items [{label, values: [{v, tip, filters}]}], one colour per name.
  function bars({ title, items, names, xLabel }) {
    const rowH = 12 * names.length + 10;
    const labelW = 16 + 6.3 * Math.max(6, ...items.map((it) => it.label.length));
    const w = labelW + 380, m = { t: 28 + 14 * names.length, b: 36 };
    const h_ = m.t + rowH * Math.max(items.length, 1) + m.b;
    const max = Math.max(1e-9, ...items.flatMap((it) => it.values.map((v) => v.v).filter(isNum)));
    const xd = [0, max * 1.08], x = scale(xd, [labelW, w - 14]);
    const svg = s("svg", { class: "chart", width: w, height: h_, viewBox: `0 0 ${w} ${h_}` });
    svg.append(s("text", { class: "title", x: 8, y: 15, text: title }));
    names.forEach((n, k) => svg.append(s("rect", { x: labelW, y: 22 + 14 * k, width: 10, height: 10, fill: COLORS[k] }),
      s("text", { x: labelW + 14, y: 31 + 14 * k, text: n })));
    for (const t of ticks(...xd)) {
      svg.append(s("line", { class: "grid", x1: x(t), x2: x(t), y1: m.t - 4, y2: h_ - m.b }),
        s("text", { x: x(t), y: h_ - m.b + 14, "text-anchor": "middle", text: fmt(t, 2) }));
    }
    svg.append(s("text", { x: (labelW + w) / 2, y: h_ - 6, "text-anchor": "middle", text: xLabel }));
    items.forEach((it, i) => {
      const y0 = m.t + rowH * i;
      svg.append(s("text", { x: labelW - 6, y: y0 + rowH / 2 + 3, "text-anchor": "end", text: it.label }));
      it.values.forEach((v, k) => {
        if (!isNum(v.v)) return;
        svg.append(svgLink(v.filters, v.tip, s("rect", { x: labelW, y: y0 + 4 + 12 * k, width: Math.max(1.5, x(v.v) - labelW), height: 10,
          fill: COLORS[k], "data-bar": "1" })));
      });
    });
    return svg;
  }

  // ---------------------------------------------------------------- figures from the analysis tables
  const panelKeys = META.keys.filter((k) => k !== "competition");
  const panelOf = (row) => panelKeys.map((k) => `${k}=${row[k]}`).join(", ");

  function figure(id, title, note, controls, draw) {
    const body = h("div", { class: "panels" });
    const el = h("div", { class: "figure", id }, title ? h("h3", { text: title }) : null, note ? h("p", { class: "note", text: note }) : null,
      controls.length ? h("div", { class: "controls" }, controls) : null, body);
    const redraw = () => { body.replaceChildren(...[draw()].flat()); };
    redraw();
    return [el, redraw];
  }
  function choice(label, options, value, onchange) {
    const sel = h("select", { onchange: (e) => onchange(e.target.value) },
      options.map(([v, text]) => h("option", { value: v, text, selected: v === value })));
    return h("label", {}, label + " ", sel);
  }
  const empty = (text) => h("div", { class: "empty", text });

  function scalingFigure() {
    const points = rowsOf("scaling_points"), curves = rowsOf("scaling_curves");
    const metrics = ["share", "exploitation_index", "discounted_utility"].filter((mt) => points.length && `${mt}_low` in points[0]);
    let metric = metrics[0];
    const labels = { share: "focal share of total utility", exploitation_index: "exploitation index", discounted_utility: "focal discounted utility" };
    const [el, redraw] = figure("fig-scaling", "Outcome vs capability",
      "Points: mean per model with 95% bootstrap intervals over preference draws; lines and bands: the fitted law; dotted: the Nash-bargaining share. Click a point for its games.",
      metrics.length > 1 ? [choice("outcome", metrics.map((mt) => [mt, labels[mt]]), metric, (v) => { metric = v; redraw(); })] : [],
      () => {
        if (!metric) return empty("No scaling points (the focal models have no capability values).");
        const shown = points.filter((r) => isNum(r[metric]));
        if (!shown.length) return empty("No completed games with a capability value.");
        return unique(shown.map(panelOf)).map((panel) => {
          const rows = shown.filter((r) => panelOf(r) === panel);
          const levels = unique(rows.map((r) => r.competition)).sort(byValue);
          const series = levels.map((c, k) => {
            const rs = rows.filter((r) => r.competition === c);
            return {
              name: isNum(c) ? `competition ${fmt(c, 2)}` : "focal model", color: COLORS[k % COLORS.length],
              ref: metric === "share" ? mean(rs.map((r) => r.nbs_share).filter(isNum)) : null,
              curve: curves.filter((r) => panelOf(r) === panel && r.competition === c && r.outcome === metric)
                .map((r) => ({ x: r.capability, y: r.fit, lo: r.fit_low, hi: r.fit_high })),
              points: rs.map((r) => ({ x: r.capability, y: r[metric], lo: r[`${metric}_low`], hi: r[`${metric}_high`],
                filters: filtersOfRow(r),
                tip: `${r.model} vs ${r.opponent}${level(r.competition)}\n${labels[metric]} ${fmt(r[metric])} [${fmt(r[`${metric}_low`])}, ${fmt(r[`${metric}_high`])}]\n${r.n_games} games` })),
            };
          });
          return xyChart({ title: panel || "all games", xLabel: META.capability_label, yLabel: labels[metric], series, refs: metric === "share" });
        });
      });
    return el;
  }

  function modelOrder() {
    const cap = new Map(rowsOf("scaling_points").map((r) => [r.model, r.capability]));
    return (models) => models.sort((a, b) => (cap.has(a) && cap.has(b) ? cap.get(a) - cap.get(b) : byValue(a, b)));
  }

  function heatmapFigure() {
    const t = TABLES.get("competition");
    const rows = rowsOf("competition").filter((r) => r.focal_model !== "all" && r.opponent !== "all");
    const skip = new Set(["n_games", ...intervals(t ? t.columns : []).flatMap((iv) => [iv.lo, iv.hi])]);
    const metrics = t ? t.columns.filter((c) => !skip.has(c) && rows.some((r) => isNum(r[c])) && c !== "competition") : [];
    let metric = metrics.includes("focal_share") ? "focal_share" : metrics[0];
    const unit = new Set(["agreement_rate", "pareto_rate", "ef1_rate", "efficiency", "focal_share", "focal_nbs_share"]);
    const order = modelOrder();
    const panel = (r) => [`vs ${r.opponent}`, ...META.conditions.map((c) => `${c}=${r[c]}`)].join(", ");
    const [el, redraw] = figure("fig-heatmap", "Outcomes by model pair and competition",
      "One cell per focal model, opponent and competition level (the competition table); hover for the cell's summary, click for its games.",
      metrics.length ? [choice("outcome", metrics.map((c) => [c, c.replaceAll("_", " ")]), metric, (v) => { metric = v; redraw(); })] : [],
      () => {
        if (!rows.length) return empty("No completed games.");
        const ivs = intervals(t.columns);
        const values = rows.map((r) => r[metric]).filter(isNum);
        const domain = unit.has(metric) ? [0, 1] : extent(values, 0);
        return unique(rows.map(panel)).map((p) => {
          const rs = rows.filter((r) => panel(r) === p);
          const cells = new Map(rs.map((r) => {
            const summary = t.columns.filter((c) => !skip.has(c) || c === "n_games").map((c) => {
              const iv = ivs.find((i) => i.col === c);
              return `${c}: ${fmt(r[c])}${iv && isNum(r[iv.lo]) ? ` [${fmt(r[iv.lo])}, ${fmt(r[iv.hi])}]` : ""}`;
            });
            return [`${r.focal_model}|${fmt(r.competition, 2)}`, { v: r[metric], text: fmt(r[metric], 2), tip: summary.join("\n"), filters: filtersOfRow(r) }];
          }));
          return heatmap({ title: p, rows: order(unique(rs.map((r) => r.focal_model))), cols: unique(rs.map((r) => r.competition)).sort(byValue).map((c) => fmt(c, 2)),
            cells, domain, diverging: metric === "focal_share", colLabel: `competition · ${metric.replaceAll("_", " ")}` });
        });
      });
    return el;
  }

  function roundsFigure() {
    const [el] = figure("fig-rounds", "Rounds to agreement",
      "Share of each lineup's completed games that ended in each round (or without a deal), per competition level. Click a cell for its games.", [],
      () => {
        const done = GAMES.filter((g) => g.outcome === "deal" || g.outcome === "no deal");
        if (!done.length) return empty("No completed games.");
        const order = modelOrder();
        const maxRound = Math.max(1, ...done.map((g) => g.round || 0));
        const cols = [...Array(maxRound).keys()].map((r) => String(r + 1)).concat(["no deal"]);
        return unique(done.map((g) => g.competition)).sort(byValue).map((c) => {
          const byLineup = new Map();
          for (const g of done.filter((x) => x.competition === c)) {
            const lineup = [`${g.model} vs ${g.opponent}`, ...META.conditions.map((k) => `${k}=${g[k]}`)].join(", ");
            if (!byLineup.has(lineup)) byLineup.set(lineup, []);
            byLineup.get(lineup).push(g);
          }
          const models = order(unique([...byLineup.values()].map((ls) => ls[0].model)));
          const lineups = [...byLineup.keys()].sort((a, b) => models.indexOf(byLineup.get(a)[0].model)
            - models.indexOf(byLineup.get(b)[0].model) || byValue(a, b));
          const cells = new Map();
          for (const lu of lineups) {
            const ls = byLineup.get(lu);
            const base = Object.fromEntries(["model", "opponent", "competition", ...META.conditions].map((k) => [k, String(ls[0][k])]));
            for (const col of cols) {
              const hit = ls.filter((g) => (col === "no deal" ? g.outcome === "no deal" : String(g.round) === col));
              if (!hit.length) continue;
              cells.set(`${lu}|${col}`, { v: hit.length / ls.length, text: fmt(hit.length / ls.length, 2),
                tip: `${lu}${level(c)}: ${hit.length} of ${ls.length} games ${col === "no deal" ? "without a deal" : `agreed in round ${col}`}`,
                filters: col === "no deal" ? { ...base, outcome: "no deal" } : { ...base, round: col } });
            }
          }
          return heatmap({ title: isNum(c) ? `competition ${fmt(c, 2)}` : "games without a competition level", rows: lineups, cols, cells, domain: [0, 1], colLabel: "agreement round" });
        });
      });
    return el;
  }

  function validityFigure() {
    const rows = rowsOf("validity");
    const names = ["invalid_move_rate", "parse_failure_rate"].filter((n) => rows.length && n in rows[0]);
    const [el] = figure("fig-validity", "Format failures",
      "Per model and role: moves finally recorded invalid, and replies that failed to parse (re-asks included). Click a bar for the games with invalid moves.", [],
      () => {
        if (!rows.length || !names.length) return empty("No validity table.");
        if (!rows.some((r) => names.some((n) => r[n] > 0))) return empty("Every reply parsed and every move was valid.");
        return bars({ title: "", names: names.map((n) => n.replaceAll("_", " ")), xLabel: "rate",
          items: rows.map((r) => {
            const f = filtersOfRow(r);
            f.invalid = r.role === "opponent" || f.opponent === r.model ? "by opponent" : "by focal";
            return { label: `${r.model} (${r.role})`, values: names.map((n) => ({ v: r[n], filters: f,
              tip: `${r.model} as ${r.role}: ${n.replaceAll("_", " ")} ${fmt(r[n])}\n${r.n_games} games, ${r.n_calls} calls, ${r.n_moves} moves` })) };
          }) });
      });
    return el;
  }

  function seatFigure() {
    const t = TABLES.get("seat_effect");
    const rows = rowsOf("seat_effect");
    const [el] = figure("fig-seats", "Seat effects",
      "Advantage of each seat in focal share from counterbalanced games (pooled rows: 'all'), with 95% bootstrap intervals. Click for the games.", [],
      () => {
        if (!rows.length) return empty("No counterbalanced games.");
        const keys = t.columns.filter((c) => !["seat", "advantage", "low", "high", "n_sets"].includes(c));
        return forest({ title: "", xLabel: "seat advantage in focal share", zero: true,
          items: rows.map((r) => ({ label: [...keys.map((k) => fmt(r[k], 2)), `seat ${r.seat}`].join(" | "), v: r.advantage, lo: r.low, hi: r.high,
            filters: filtersOfRow(r), tip: `${fmt(r.advantage)} [${fmt(r.low)}, ${fmt(r.high)}], ${r.n_sets} sets` })) });
      });
    return el;
  }

  // ---------------------------------------------------------------- tables
  // Tables with a figure of their own; every other table with intervals gets a forest plot.
  const DESIGNED = new Set(["scaling_points", "scaling_curves", "competition", "validity", "seat_effect"]);

  function forestFigure(t, heading = true) {
    const ivs = intervals(t.columns);
    const rows = tableRows(t);
    if (!ivs.length || !rows.length) return null;
    const hidden = new Set(ivs.flatMap((iv) => [iv.lo, iv.hi, iv.col]));
    const labelCols = t.columns.filter((c) => !hidden.has(c)
      && (c in LINKS || ["role", "method", "outcome", "judge"].includes(c) || rows.some((r) => typeof r[c] === "string")));
    let measure = ivs[0];
    const label = (iv) => iv.col.replaceAll("_", " ") + (iv.kind ? ` (${iv.kind} interval)` : "");
    const [el, redraw] = figure(`forest-${t.name}`, heading ? t.name.replaceAll("_", " ") : "", heading ? t.note : "",
      ivs.length > 1 ? [choice("plot", ivs.map((iv, k) => [String(k), label(iv)]), "0", (v) => { measure = ivs[Number(v)]; redraw(); })] : [],
      () => forest({ title: label(measure) + (rows.length > 80 ? " (first 80 rows)" : ""), xLabel: measure.col.replaceAll("_", " "),
        zero: /slope|advantage|index|effect|error|diff/.test(measure.col),
        items: rows.map((r) => ({ label: labelCols.map((c) => fmt(r[c], 2)).join(" | "), v: r[measure.col], lo: r[measure.lo], hi: r[measure.hi],
          filters: filtersOfRow(r), tip: `${labelCols.map((c) => `${c} ${fmt(r[c])}`).join(", ")}\n${measure.col} ${fmt(r[measure.col])} [${fmt(r[measure.lo])}, ${fmt(r[measure.hi])}]` })) }));
    return el;
  }

  function tableSection(t, open) {
    const ivs = intervals(t.columns);
    const hidden = new Set(ivs.flatMap((iv) => [iv.lo, iv.hi]));
    const cols = t.columns.filter((c) => !hidden.has(c));
    const rows = tableRows(t);
    const linkable = rows.some((r) => Object.keys(filtersOfRow(r)).length);
    const sort = { col: null, dir: 1 };
    const tbody = h("tbody");
    const head = h("tr", {}, linkable ? h("th", { text: "" }) : null, cols.map((c) => h("th", { text: c, "data-col": c,
      onclick: (e) => { sort.dir = sort.col === c ? -sort.dir : 1; sort.col = c; fill();
        head.querySelectorAll("th").forEach((th) => th.classList.remove("sorted-asc", "sorted-desc"));
        e.target.classList.add(sort.dir > 0 ? "sorted-asc" : "sorted-desc"); } })));
    function cell(r, c) {
      const v = r[c];
      const extra = ivs.filter((iv) => iv.col === c && isNum(r[iv.lo]))
        .map((iv) => ` ${iv.kind ? iv.kind + " " : ""}[${fmt(r[iv.lo])}, ${fmt(r[iv.hi])}]`).join("");
      return h("td", { class: typeof v === "number" ? "num" : null }, fmt(v), extra ? h("span", { class: "ci", text: extra }) : null);
    }
    function fill() {
      const sorted = sort.col ? rows.slice().sort((a, b) => {
        const x = a[sort.col], y = b[sort.col];
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return byValue(x, y) * sort.dir;
      }) : rows;
      tbody.replaceChildren(...sorted.map((r) => {
        const f = filtersOfRow(r);
        return h("tr", {}, linkable ? h("td", {}, Object.keys(f).length ? link(f, "games →") : "") : null, cols.map((c) => cell(r, c)));
      }));
    }
    // A closed table is filled when first opened: long tables cost nothing until someone reads them.
    if (open) fill();
    return h("details", { class: "table", id: `table-${t.name}`, open: open || null,
      ontoggle: (e) => { if (e.target.open && !tbody.childElementCount) fill(); } },
      h("summary", {}, t.name.replaceAll("_", " "), h("span", { class: "count", text: ` (${t.n_rows} rows)` })),
      t.note ? h("p", { class: "note", text: t.note }) : null,
      t.n_rows > t.rows.length ? h("p", { class: "cut", text: `Showing the first ${t.rows.length} of ${t.n_rows} rows; ${t.name}.csv beside this report has them all.` }) : null,
      h("div", { class: "scroll" }, h("table", { class: "data" }, h("thead", {}, head), tbody)));
  }

  // One row per experiment (a cell of the sweep), from the game list.
  function cellsTable() {
    const keys = ["model", "opponent", ...META.conditions, "competition"];
    const columns = [...keys, "games", "complete", "failed", "deal_rate", "mean_round", "focal_share", "focal_utility",
      "games_with_invalid", "cost_usd"];
    const byExp = new Map();
    for (const g of GAMES) {
      if (!byExp.has(g.exp)) byExp.set(g.exp, []);
      byExp.get(g.exp).push(g);
    }
    const rows = [...byExp.values()].map((gs) => {
      const done = gs.filter((g) => g.outcome === "deal" || g.outcome === "no deal");
      const deals = done.filter((g) => g.outcome === "deal");
      return [...keys.map((k) => gs[0][k]), gs.length, done.length, gs.length - done.length,
        done.length ? deals.length / done.length : null, mean(deals.map((g) => g.round).filter(isNum)),
        mean(deals.map((g) => g.share).filter(isNum)), mean(done.map((g) => g.utility).filter(isNum)),
        gs.filter((g) => g.invalid !== "none").length, gs.reduce((a, g) => a + (g.cost || 0), 0)];
    });
    rows.sort((a, b) => keys.reduce((acc, _, i) => acc || byValue(a[i], b[i]), 0));
    return { name: "cells", columns, rows, n_rows: rows.length,
      note: "One row per experiment (a cell of the sweep): games played, completed and failed, deal rate, mean agreement round, mean focal share (deals) and utility (completed games), games with invalid moves, spend." };
  }

  // ---------------------------------------------------------------- game list
  let listBody, selectionEl, pagerEl;
  const GAME_COLS = [["exp", "experiment"], ["idx", "game"], ["model", "model"], ["opponent", "opponent"], ["competition", "competition"],
    ["seat", "focal seat"], ...META.conditions.map((c) => [c, c]), ["outcome", "outcome"], ["round", "round"], ["share", "focal share"],
    ["utility", "focal utility"], ["invalid", "invalid moves"]];

  function filtered() {
    const out = GAMES.filter((g) => matches(g, state.filters));
    const k = state.sort.key;
    if (k) out.sort((a, b) => (a[k] === null ? 1 : b[k] === null ? -1 : byValue(a[k], b[k]) * state.sort.dir));
    return out;
  }

  function gamesSection() {
    const filterEls = FILTERS.map((f) => {
      const values = f.options || unique(GAMES.flatMap((g) => (f.key === "label" ? g.labels || [] : [g[f.key]])))
        .filter((v) => v !== null && v !== undefined).sort(byValue).map(String);
      const sel = h("select", { "data-filter": f.key, onchange: (e) => {
        const next = { ...state.filters };
        if (e.target.value) next[f.key] = e.target.value; else delete next[f.key];
        location.hash = hashOf(next);
      } }, h("option", { value: "", text: "all" }), values.map((v) => h("option", { value: v, text: v })));
      return h("label", {}, f.label, sel);
    });
    selectionEl = h("div", { class: "selection", id: "selection" });
    listBody = h("tbody");
    pagerEl = h("div", { class: "pager" });
    const head = h("tr", {}, GAME_COLS.map(([k, label]) => h("th", { text: label, onclick: (e) => {
      state.sort = { key: k, dir: state.sort.key === k ? -state.sort.dir : 1 };
      head.querySelectorAll("th").forEach((th) => th.classList.remove("sorted-asc", "sorted-desc"));
      e.target.classList.add(state.sort.dir > 0 ? "sorted-asc" : "sorted-desc");
      state.page = 0; renderList();
    } })));
    return h("section", { id: "games" }, h("h2", { text: "Games" }),
      h("p", { class: "note", text: "Filter the games, or follow a link from any figure or table; click a game to read it." }),
      h("div", { class: "filters" }, filterEls, h("button", { id: "clear", onclick: () => { location.hash = "#"; }, text: "clear filters" })),
      selectionEl, h("div", { class: "scroll" }, h("table", { class: "data", id: "game-list" }, h("thead", {}, head), listBody)), pagerEl);
  }

  function renderList() {
    const games = filtered();
    const deals = games.filter((g) => g.outcome === "deal");
    const done = games.filter((g) => g.outcome === "deal" || g.outcome === "no deal");
    selectionEl.replaceChildren(h("b", { id: "n-shown", text: String(games.length) }), ` of ${GAMES.length} games`,
      done.length ? ` · deals ${fmt(deals.length / done.length, 2)}` : "",
      deals.length ? ` · mean focal share ${fmt(mean(deals.map((g) => g.share).filter(isNum)))}` : "",
      deals.length ? ` · mean agreement round ${fmt(mean(deals.map((g) => g.round).filter(isNum)), 2)}` : "",
      ` · with invalid moves ${games.filter((g) => g.invalid !== "none").length}`,
      games.length - done.length ? ` · failed ${games.length - done.length}` : "");
    const pages = Math.max(1, Math.ceil(games.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    listBody.replaceChildren(...games.slice(state.page * PAGE, (state.page + 1) * PAGE).map((g) => h("tr", {
      class: "clickable", "data-game": g.key, onclick: () => { location.hash = hashOf(state.filters, g.key); },
    }, GAME_COLS.map(([k]) => {
      if (k === "outcome") return h("td", { class: `outcome-${g.outcome.replaceAll(" ", "-")}`, text: g.outcome });
      if (k === "invalid") return h("td", {}, g.invalid === "none" ? "" : h("span", { class: "badge invalid", text: g.invalid }));
      if (k === "exp") return h("td", { class: "mono", title: g.exp, text: g.exp.slice(0, 8) });
      return h("td", { class: typeof g[k] === "number" ? "num" : null, text: fmt(g[k]) });
    }))));
    pagerEl.replaceChildren(
      h("button", { text: "‹ previous", disabled: state.page === 0 || null, onclick: () => { state.page--; renderList(); } }),
      `page ${state.page + 1} of ${pages}`,
      h("button", { text: "next ›", disabled: state.page >= pages - 1 || null, onclick: () => { state.page++; renderList(); } }));
  }

  // ---------------------------------------------------------------- transcript viewer
  // A block is a script element of this page, or (large reports) a script in the folder beside it
  // that hands its text to bargainBlock.
  const arriving = new Map();
  window.bargainBlock = (b, text) => { arriving.get(b)(text); };
  function blockText(b) {
    if (!META.block_folder) return domReady.then(() => document.getElementById(`block-${b}`).textContent);
    return new Promise((resolve, reject) => {
      const tag = h("script", { src: `${encodeURIComponent(META.block_folder)}/block-${b}.js` });
      arriving.set(b, (text) => { arriving.delete(b); tag.remove(); resolve(text); });
      tag.onerror = () => reject(new Error(`cannot read ${tag.src}: keep the folder ${META.block_folder} beside the report`));
      document.head.append(tag);
    });
  }
  const blocks = new Map();
  async function payload(pos) {
    const b = Math.floor(pos / META.games_per_block);
    if (!blocks.has(b)) {
      blocks.set(b, blockText(b).then(unpack));
      if (blocks.size > 16) blocks.delete(blocks.keys().next().value);
    }
    return (await blocks.get(b))[pos % META.games_per_block];
  }

  function utilityOf(p, owners, seat) {
    const v = p.preferences.values[seat];
    return owners.reduce((sum, owner, k) => sum + (Array.isArray(v[k]) ? v[k][owner] : owner === seat ? v[k] : 0), 0);
  }

  function renderGame(g, p) {
    const names = p.game.agent_names || p.agents.map((a) => a.name);
    const agent = (seat) => p.agents.find((a) => a.seat === seat) || { name: names[seat], model: "?" };
    // Other games describe themselves (analysis/game_views.py): preference cells, facts, proposal and
    // pledge texts, the outcome. The item game is drawn from its record here.
    const view = p.view;
    const items = view ? view.columns : p.game.items || [];
    const gamma = p.game.gamma;
    // Calls grouped into turns: per (round, phase, seat), a new turn starts at attempt 0.
    const turns = new Map();
    for (const c of p.calls) {
      const key = `${c.round}|${c.phase}|${c.seat}`;
      if (!turns.has(key)) turns.set(key, []);
      const list = turns.get(key);
      if (c.attempt === 0 || !list.length) list.push([]);
      list[list.length - 1].push(c);
    }
    const used = new Map();
    const take = (round, phase, seat) => {
      const key = `${round}|${phase}|${seat}`;
      const k = used.get(key) || 0;
      used.set(key, k + 1);
      return (turns.get(key) || [])[k] || null;
    };
    const labels = new Map();
    for (const l of p.labels || []) {
      const key = `${l.round}|${l.phase}|${l.seat}|${l.attempt}`;
      if (!labels.has(key)) labels.set(key, []);
      labels.get(key).push(l);
    }
    const chips = (c) => {
      const ls = labels.get(`${c.round}|${c.phase}|${c.seat}|${c.attempt}`) || [];
      return ls.length ? h("div", { class: "labels" }, ls.flatMap((l) => l.labels.map((name) =>
        h("span", { class: "label", title: l.rationale || "", "data-label": name }, name, h("span", { class: "judge", text: ` · ${l.judge}` }))))) : null;
    };
    const who = (seat, extra) => {
      const a = agent(seat);
      return h("div", { class: "who" }, a.name, h("span", { class: "model", text: ` (${a.model})` }),
        seat === p.focal_seat ? h("span", { class: "badge focal", text: "focal" }) : null, extra);
    };
    const usage = (turn) => {
      const tokens = turn.reduce((n, c) => n + ((c.tokens || [])[1] || 0), 0);
      const seconds = turn.reduce((n, c) => n + (c.latency_s || 0), 0);
      const cost = turn.reduce((n, c) => n + (c.cost_usd || 0), 0);
      return h("span", { class: "usage", text: ` ${tokens} tokens · ${fmt(seconds, 2)} s${cost ? ` · $${fmt(cost, 4)}` : ""}` });
    };
    const attempts = (turn) => turn.filter((c) => c.error !== null && c.error !== undefined).map((c) =>
      h("div", { class: "attempt" + (c === turn[turn.length - 1] ? " final" : "") },
        h("span", { class: "err", text: `attempt ${c.attempt + 1}: ${c === turn[turn.length - 1] ? "invalid move" : "re-asked"}` }),
        ` · parse error: ${c.error}`, h("pre", { text: c.reply ?? "" }), chips(c)));
    const badges = (turn) => {
      const last = turn[turn.length - 1];
      return [turn.length > 1 ? h("span", { class: "badge reask", text: `re-asked ${turn.length - 1}×` }) : null,
        last.error ? h("span", { class: "badge invalid", text: "invalid" }) : null,
        last.drafts ? h("span", { class: "badge draft", text: `draft ${last.draft + 1} of ${last.drafts.filter((d) => d.role === "draft").length + 1}` }) : null];
    };
    const message = (turn, kind, title) => {
      if (!turn) return null;
      const last = turn[turn.length - 1];
      return h("div", { class: `msg ${kind}${last.error ? " invalid" : ""}`, "data-phase": last.phase },
        who(last.seat, [title ? h("span", { class: "model", text: ` · ${title}` }) : null, badges(turn), usage(turn)]),
        last.error ? null : h("div", { class: "text", text: last.reply ?? "" }), last.error ? null : chips(last), attempts(turn),
        drafts(last));
    };
    // Access scaling: the drafts not chosen and the selector's answer, folded under the chosen reply.
    const drafts = (c) => c.drafts && c.drafts.length ? h("details", { class: "raw drafts" },
      h("summary", {}, `${c.drafts.filter((d) => d.role === "draft").length} other draft(s) and the selection`),
      c.drafts.map((d) => h("pre", { text: `${d.role}${d.error ? ` (invalid: ${d.error})` : ""}: ${d.reply ?? ""}` }))) : null;
    const rawReply = (turn, label) => {
      if (!turn) return null;
      const last = turn[turn.length - 1];
      if (last.error) {
        return h("div", { class: "msg invalid", "data-phase": last.phase },
          who(last.seat, [h("span", { class: "model", text: ` · ${label}` }), badges(turn), usage(turn)]), attempts(turn));
      }
      return h("div", {}, attempts(turn), h("details", { class: "raw" },
        h("summary", {}, `${label} by ${agent(last.seat).name}`, badges(turn), usage(turn)), h("pre", { text: last.reply ?? "" }), chips(last),
        drafts(last)));
    };
    const allocation = (owners) => names.map((n, s) => `${n}: ${items.filter((_, k) => owners[k] === s).join(", ") || "—"}`).join(" · ");

    const body = [];
    // the game: lineup, private values, settings
    const prefs = p.preferences;
    body.push(h("table", { class: "game" }, h("thead", {}, h("tr", {}, h("th", { text: "seat" }), h("th", { text: "agent" }), h("th", { text: "model" }),
      h("th", { text: "role" }), items.map((it) => h("th", { text: it })))),
    h("tbody", {}, p.agents.map((a) => h("tr", {}, h("td", { text: a.seat }), h("td", { text: a.name }), h("td", { text: a.model }),
      h("td", {}, a.role, a.seat === p.focal_seat ? h("span", { class: "badge focal", text: "focal" }) : null),
      items.map((_, k) => {
        if (view) return h("td", { class: "num", text: view.private[a.seat][k] });
        const v = prefs.values[a.seat][k];
        return h("td", { class: "num", text: Array.isArray(v) ? v.map((x, j) => `${names[j]} ${fmt(x, 2)}`).join(", ") : fmt(v) });
      }))),
    view ? view.public.map(([label, cells]) => h("tr", {}, h("td", {}), h("td", {}), h("td", {}), h("td", { text: label }),
      cells.map((c) => h("td", { class: "num", text: c })))) : null)));
    const cos = prefs.cosine;
    const facts = view ? view.facts : [
      ["private values", prefs.kind === "matrix" ? "matrix: value to each agent of an item going to each agent" : "vector: each agent's value of each item (sums to 100)"],
      ["competition", `${fmt(p.game.competition, 2)} (target cosine; measured ${cos === null || cos === undefined ? "?"
        : typeof cos === "object" ? Object.entries(cos).map(([pair, c]) => `${pair}: ${fmt(c)}`).join(", ") : fmt(cos)})`],
      ["rules", `${p.game.max_rounds} rounds, γ = ${gamma}, ${p.game.vote_rule} vote, ${p.game.speaking_order} speaking order, memory ${p.game.memory}`]];
    body.push(h("dl", { class: "facts" },
      [...facts,
        ["preference draw", `${p.draw_index} (played once per focal seat when counterbalanced)`],
        ["calls", p.totals ? `${p.totals.calls} calls, ${p.totals.prompt_tokens} prompt + ${p.totals.completion_tokens} completion tokens, $${fmt(p.totals.cost_usd, 4)}` : ""],
        ["record", h("a", { href: `${META.records[g.exp] || g.exp + "/games"}/${String(g.idx).padStart(5, "0")}.json`, text: `${g.exp}/games/${String(g.idx).padStart(5, "0")}.json` })],
      ].flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)])));

    const known = new Set(["discussion", "thinking", "proposal", "pledge", "vote", "reflection"]);
    const discount = (round) => (gamma === undefined ? 1 : gamma ** (round - 1));
    p.rounds.forEach((r, ri) => {
      const order = r.speaking_order || p.agents.map((a) => a.seat);
      const seen = view ? view.rounds[ri] : null;
      body.push(h("h3", { class: "round", "data-round": r.round }, `Round ${r.round}`,
        h("span", { class: "model", text: ` · speaking order ${order.map((x) => names[x]).join(", ")}${gamma === undefined ? "" : ` · discount ${fmt(discount(r.round), 3)}`}` })));
      if ((r.discussion || []).length) {
        body.push(h("div", { class: "phase", text: "Public discussion" }));
        for (const d of r.discussion) body.push(message(take(r.round, "discussion", d.seat), "public"));
      }
      const thinking = order.map((seat) => take(r.round, "thinking", seat)).filter(Boolean);
      if (thinking.length) body.push(h("div", { class: "phase", text: "Private thinking" }), thinking.map((t) => message(t, "private", "thinking")));
      // proposals
      const props = r.proposals || [];
      const valid = props.filter((x) => x.valid);
      if (props.length) {
        body.push(h("div", { class: "phase", text: "Proposals" }));
        body.push(h("table", { class: "game proposals" }, h("thead", {}, h("tr", {}, h("th", { text: "#" }), h("th", { text: "by" }), h("th", { text: view ? "proposal" : "allocation" }),
          names.map((n) => h("th", { text: `worth to ${n}` })), h("th", { text: "result" }))),
        h("tbody", {}, props.map((x, i) => {
          const k = valid.indexOf(x);
          const chosen = k >= 0 && k === r.chosen;
          const result = !x.valid ? "invalid" : chosen ? "accepted · chosen" : (r.accepted || []).includes(k) ? "accepted" : "rejected";
          const shown = seen ? seen.proposals[i] : null;
          return h("tr", { class: chosen ? "chosen" : !x.valid ? "invalid" : null },
            h("td", { text: k >= 0 ? k + 1 : "—" }), h("td", { text: names[x.seat] }),
            h("td", { text: !x.valid ? `invalid: ${x.error || ""}` : shown ? shown.text : Array.isArray(x.owners) ? allocation(x.owners) : JSON.stringify(x) }),
            names.map((_, s) => {
              const u = !x.valid ? null : shown ? shown.worth[s] : Array.isArray(x.owners) ? utilityOf(p, x.owners, s) : null;
              return u === null ? h("td", {}) : h("td", { class: "num", text: `${fmt(u, 2)} → ${fmt(u * discount(r.round), 2)}` });
            }), h("td", {}, result, chosen ? h("span", { class: "badge chosen", text: "chosen" }) : null));
        }))));
        body.push(props.map((x) => rawReply(take(r.round, "proposal", x.seat), "proposal reply")));
      }
      // votes
      if ((r.votes || []).length) {
        body.push(h("div", { class: "phase" }, "Votes ", h("span", { class: "badge private", text: "private ballots" })));
        body.push(h("table", { class: "game votes" }, h("thead", {}, h("tr", {}, h("th", { text: "proposal" }),
          r.votes.map((v) => h("th", { text: names[v.seat] })))),
        h("tbody", {}, valid.map((x, k) => h("tr", { class: k === r.chosen ? "chosen" : null }, h("td", { text: `${k + 1} (${names[x.seat]})` }),
          r.votes.map((v) => {
            const vote = v.votes ? v.votes[k] : null;
            return h("td", { class: vote === "accept" ? "accept" : vote === "reject" ? "reject" : "invalid-vote", text: vote || "invalid" });
          }))))));
        body.push(r.votes.map((v) => rawReply(take(r.round, "vote", v.seat), "ballot reply")));
      }
      // pledges (co-funding): each participant's joint plan, its own row being its pledge, then the totals
      if ((r.pledges || []).length) {
        body.push(h("div", { class: "phase", text: "Pledges" }));
        body.push(h("table", { class: "game pledges" }, h("thead", {}, h("tr", {}, h("th", { text: "by" }), h("th", { text: "joint funding plan (its own row is its pledge)" }))),
          h("tbody", {}, r.pledges.map((x, i) => h("tr", { class: x.valid ? null : "invalid" }, h("td", { text: names[x.seat] }),
            h("td", { text: seen ? seen.pledges[i].text : JSON.stringify(x) }))))));
        if (seen) body.push(h("p", { class: "totals", text: seen.totals }));
        body.push(r.pledges.map((x) => rawReply(take(r.round, "pledge", x.seat), "pledge reply")));
      }
      const reflection = order.map((seat) => take(r.round, "reflection", seat)).filter(Boolean);
      if (reflection.length) body.push(h("div", { class: "phase", text: "Private reflection" }), reflection.map((t) => message(t, "private", "reflection")));
      // phases this viewer does not know (other games): shown as they are, nothing hidden
      const others = unique(p.calls.filter((c) => c.round === r.round && !known.has(c.phase)).map((c) => c.phase));
      for (const ph of others) {
        body.push(h("div", { class: "phase", text: ph }));
        for (const seat of order) for (let t; (t = take(r.round, ph, seat));) body.push(message(t, "public", ph));
      }
    });
    // outcome
    const o = p.outcome;
    if (p.status !== "complete" || !o) {
      body.push(h("div", { class: "outcome-box error", id: "outcome" }, h("b", { text: `Game ${p.status}` }),
        p.error ? h("pre", { text: `${p.error.type}: ${p.error.message}` }) : null));
    } else {
      const total = (o.discounted_utility || []).reduce((a, b) => a + b, 0);
      const ending = view ? view.outcome : null;
      const dealt = ending ? ending.label : "items";
      const share = (s) => (ending ? ending.share && ending.share[s] : o.agreement && total > 0 ? o.discounted_utility[s] / total : null);
      body.push(h("div", { class: `outcome-box${o.agreement ? "" : " none"}`, id: "outcome" },
        h("b", { text: ending ? ending.title : o.agreement ? `Agreement in round ${o.round} on the proposal by ${names[o.proposer_seat]}` : `No agreement in ${p.rounds.length} rounds: everyone gets 0` }),
        h("table", { class: "game" }, h("thead", {}, h("tr", {}, ["agent", "model", dealt, "raw utility", `discounted (×${fmt(discount(o.round || 1), 3)})`, "share"]
          .map((x) => h("th", { text: x })))),
          h("tbody", {}, names.map((n, s) => h("tr", {}, h("td", {}, n, s === p.focal_seat ? h("span", { class: "badge focal", text: "focal" }) : null),
            h("td", { text: agent(s).model }),
            h("td", { text: ending ? ending.cells[s] : o.owners ? items.filter((_, k) => o.owners[k] === s).join(", ") : "—" }),
            h("td", { class: "num", text: fmt(o.raw_utility[s], 2) }), h("td", { class: "num", text: fmt(o.discounted_utility[s], 2) }),
            h("td", { class: "num", text: share(s) === null || share(s) === undefined ? "" : fmt(share(s)) })))))));
    }
    return body;
  }

  let viewerToken = 0;
  async function showGame(key) {
    const viewer = document.getElementById("viewer");
    if (!key) { viewer.hidden = true; viewer.replaceChildren(); return; }
    const pos = GAME_AT.get(key);
    if (pos === undefined) { viewer.hidden = true; return; }
    const token = ++viewerToken;
    const g = GAMES[pos];
    const list = filtered();
    const here = list.findIndex((x) => x.key === key);
    const step = (d) => { const next = list[here + d]; if (next) location.hash = hashOf(state.filters, next.key); };
    const bar = h("div", { class: "bar" }, h("h2", { text: `Game ${g.idx} · ${g.model} vs ${g.opponent}${level(g.competition).replace(",", " ·")} · ${g.outcome}` }),
      h("button", { id: "prev-game", text: "‹", title: "previous game (←)", disabled: here <= 0 || null, onclick: () => step(-1) }),
      h("button", { id: "next-game", text: "›", title: "next game (→)", disabled: here < 0 || here >= list.length - 1 || null, onclick: () => step(1) }),
      h("button", { id: "close-game", text: "close", title: "close (Esc)", onclick: () => { location.hash = hashOf(state.filters); } }));
    viewer.hidden = false;
    viewer.replaceChildren(bar, h("p", { class: "loading", text: "decoding…" }));
    const p = await payload(pos);
    if (token !== viewerToken) return;
    viewer.replaceChildren(bar, h("div", { id: "transcript", "data-game": key }, renderGame(g, p)));
    viewer.scrollTop = 0;
  }

  // ---------------------------------------------------------------- state <-> URL hash
  // Once the page shows the state of a hash, body[data-hash] says so (tests and scripts wait on it).
  async function applyHash() {
    const hash = location.hash;
    const params = new URLSearchParams(hash.slice(1));
    const filters = {};
    for (const [k, v] of params) if (FILTER_KEYS.has(k)) filters[k] = v;
    const changed = JSON.stringify(filters) !== JSON.stringify(state.filters);
    state.filters = filters;
    if (changed) state.page = 0;
    for (const sel of document.querySelectorAll("select[data-filter]")) {
      const v = filters[sel.dataset.filter] || "";
      if (v && ![...sel.options].some((o) => o.value === v)) sel.append(h("option", { value: v, text: v }));
      sel.value = v;
    }
    if (changed || !state.rendered) renderList();
    state.rendered = true;
    await showGame(params.get("game"));
    if (location.hash === hash) document.body.dataset.hash = hash;
  }

  // ---------------------------------------------------------------- page
  async function main() {
    const cols = await unpack(document.getElementById("index").textContent);
    const n = cols.exp.length;
    const keys = Object.keys(cols);
    GAMES = new Array(n);
    for (let i = 0; i < n; i++) {
      const g = { pos: i };
      for (const k of keys) g[k] = cols[k][i];
      g.key = `${g.exp}:${g.idx}`;
      GAMES[i] = g;
      GAME_AT.set(g.key, i);
      FOCAL.add(g.model);
      OPPONENTS.add(g.opponent);
    }
    document.title = META.title;
    document.getElementById("top").replaceChildren(h("h1", { text: META.title }),
      h("div", { class: "sub", text: `${META.store} · ${META.n_games} games in ${META.n_experiments} experiments · capability axis: ${META.capability || "none"}`
        + `${META.n_judge_labels ? ` · ${META.n_judge_labels} judged message${META.n_judge_labels > 1 ? "s" : ""}` : ""} · generated ${META.generated}` }),
      h("nav", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); document.getElementById("results").scrollIntoView(); }, text: "Results" }),
        h("a", { href: "#", onclick: (e) => { e.preventDefault(); document.getElementById("figures").scrollIntoView(); }, text: "Figures" }),
        h("a", { href: "#", onclick: (e) => { e.preventDefault(); document.getElementById("tables").scrollIntoView(); }, text: "Tables" }),
        h("a", { href: "#", onclick: (e) => { e.preventDefault(); document.getElementById("games").scrollIntoView(); }, text: "Games" })));
    const headline = TABLES.get("headline");
    const app = document.getElementById("app");
    app.replaceChildren(
      h("section", { id: "results" }, h("h2", { text: "Headline: focal share vs capability" }),
        headline ? [tableSection(headline, true), forestFigure(headline, false)] : empty("No headline table.")),
      h("section", { id: "figures" }, h("h2", { text: "Figures" }), scalingFigure(), heatmapFigure(), roundsFigure(), validityFigure(), seatFigure(),
        META.tables.filter((t) => t.name !== "headline" && !DESIGNED.has(t.name)).map(forestFigure)),
      h("section", { id: "tables" }, h("h2", { text: "Tables" }),
        h("p", { class: "note", text: "Every table of the analysis (CSV, Parquet and Markdown versions are beside this file), and a summary per experiment. Intervals are 95%; click a column to sort, “games →” for the games behind a row." }),
        META.tables.filter((t) => t.name !== "headline" && !t.figure_only).map((t) => tableSection(t, false)),
        tableSection(cellsTable(), false)),
      gamesSection());
    document.addEventListener("click", (e) => {
      const a = e.target.closest && e.target.closest("a.go");
      if (!a) return;
      e.preventDefault();
      location.hash = a.getAttribute("href");
      document.getElementById("games").scrollIntoView();
    });
    document.addEventListener("keydown", (e) => {
      if (document.getElementById("viewer").hidden || e.target.tagName === "SELECT") return;
      if (e.key === "Escape") document.getElementById("close-game").click();
      else if (e.key === "ArrowLeft") document.getElementById("prev-game").click();
      else if (e.key === "ArrowRight") document.getElementById("next-game").click();
    });
    window.addEventListener("hashchange", () => applyHash().catch(fail));
    await applyHash();
    window.reportReadyMs = performance.now();
    document.body.dataset.ready = "1";
  }
  function fail(err) {
    console.error(err);
    document.getElementById("app").prepend(h("p", { class: "cut", text: `The report failed to load: ${err}` }));
  }
  main().catch(fail);
})();
