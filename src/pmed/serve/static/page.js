// pmed serve's page: a client of the API. Every number shown comes from /api/… with the user's
// token; this file only builds the form from the model's schema and formats the API's answers.
// Data are always inserted as text (textContent), never as HTML.
"use strict";

(function () {
  const KEY = "pmed.serve.token";
  const $ = (id) => document.getElementById(id);
  let schema = null;       // GET /api/models/{name}/schema of the chosen model
  let lastPrediction = null;
  let reportUrl = null;    // blob: URL of the last fetched report

  // ------------------------------------------------------------------ API
  class Problem extends Error {
    constructor(status, body) {
      super(body.detail || body.title || ("HTTP " + status));
      this.status = status;
      this.body = body;
    }
  }

  async function api(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = Object.assign({ Authorization: "Bearer " + sessionStorage.getItem(KEY) }, opts.headers || {});
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      throw new Problem(0, { title: "Network error", detail: "the service could not be reached" });
    }
    if (!resp.ok) {
      let body;
      try { body = await resp.json(); } catch (e) { body = { title: resp.statusText, detail: "HTTP " + resp.status }; }
      throw new Problem(resp.status, body);
    }
    return resp;
  }

  function showProblem(err) {
    const box = $("problem");
    if (!(err instanceof Problem)) { err = new Problem(0, { title: "Error", detail: String(err) }); }
    const b = err.body;
    const lines = [(err.status ? err.status + " " : "") + (b.title || "Error") + ": " + (b.detail || "")];
    if (b.field) lines.push("Field: " + b.field);
    (b.problems || []).forEach((p) => lines.push("• " + p));
    if (b.fix) lines.push("What to do: " + b.fix);
    box.textContent = lines.join("\n");
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
    if (err.status === 401) signOut(false);
  }

  function clearProblem() { $("problem").hidden = true; $("problem").textContent = ""; }

  // ------------------------------------------------------------------ formatting
  const pct = (p) => (100 * p).toFixed(1) + "%";
  const g = (v, digits) => String(Number(Number(v).toPrecision(digits || 6)));

  function show(v, col) {
    if (v === null || v === undefined || (typeof v === "number" && isNaN(v))) return "missing";
    const unit = col && col.unit ? " " + col.unit : "";
    if (col && col.type === "bool") return (v === 1 || v === true || v === "1" || v === "true") ? "yes" : "no";
    return (typeof v === "number" ? g(v) : String(v)) + unit;
  }

  function ordinal(n) {
    const s = { 1: "st", 2: "nd", 3: "rd" }[n % 100 >= 11 && n % 100 <= 13 ? 0 : n % 10] || "th";
    return n + s;
  }

  function column(name) { return (schema.columns || []).find((c) => c.name === name) || null; }

  function factorSentence(f) {
    const c = Number(f.contribution);
    const col = column(f.feature);
    const head = f.feature + " = " + show(f.value, col) + " (typical " + show(f.typical_value, col) + ")";
    const what = { binary: "the predicted probability", survival: "the risk score" }[schema.task] || "the prediction";
    if (schema.task === "binary" && Math.abs(c) < 0.005) {
      return head + " changes the predicted probability by less than 1 percentage point";
    }
    const amount = schema.task === "binary" ? (100 * Math.abs(c)).toFixed(0) + " percentage points" : g(Math.abs(c), 3);
    return head + " " + (c > 0 ? "raises " : "lowers ") + what + " by " + amount;
  }

  function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }

  // ------------------------------------------------------------------ sign in / out
  async function signIn(token) {
    sessionStorage.setItem(KEY, token);
    clearProblem();
    try {
      const models = await (await api("/api/models")).json();
      const sel = $("model");
      sel.replaceChildren();
      models.forEach((m) => {
        const o = document.createElement("option");
        o.value = m.name;
        o.textContent = m.name + " (" + m.task + (m.target ? ", " + m.target : "") + ")";
        sel.appendChild(o);
      });
      $("signin-section").hidden = true;
      $("signout").hidden = false;
      $("model-section").hidden = false;
      $("pgx-section").hidden = false;
      if (models.length) { await chooseModel(sel.value); } else { $("model-info").textContent = "No model is registered."; }
    } catch (e) { showProblem(e); }
  }

  function signOut(clearBox) {
    sessionStorage.removeItem(KEY);
    pgx = null;  // nothing of the last patient stays in the page
    if (clearBox !== false) clearProblem();
    ["model-section", "patient-section", "answer", "pgx-section", "signout"].forEach((id) => { $(id).hidden = true; });
    $("signin-section").hidden = false;
    $("token").value = "";
    if (reportUrl) { URL.revokeObjectURL(reportUrl); reportUrl = null; }
  }

  // ------------------------------------------------------------------ the patient form
  async function chooseModel(name) {
    clearProblem();
    $("answer").hidden = true;
    $("fhir-note").textContent = "";
    let doc;
    try {
      doc = await (await api("/api/models/" + encodeURIComponent(name) + "/schema")).json();
    } catch (e) { showProblem(e); return; }
    if (name !== $("model").value) return;  // another model was chosen meanwhile: its answer wins
    schema = doc;
    const info = [schema.task + " model of " + (schema.target || "the outcome")];
    if (schema.confidence_level) info.push(Math.round(100 * schema.confidence_level) + "% conformal " +
      (schema.task === "binary" ? "prediction sets" : "intervals"));
    if (schema.blocks.length) info.push("also reads data blocks (" + schema.blocks.join(", ") + "): their columns are under " +
      "\u201cOther model inputs\u201d");
    $("model-info").textContent = info.join(" · ");
    buildForm();
    $("patient-section").hidden = false;
  }

  // the patient table's columns, then (collapsed) those of the model's blocks: every one is sent,
  // null when empty, so that the API takes the blocks' columns inline (the model imputes nulls)
  function buildForm() {
    const box = $("fields"), blockBox = $("block-fields");
    box.replaceChildren();
    blockBox.replaceChildren();
    $("patient-id").value = "";
    $("patient-id").placeholder = schema.id;
    schema.columns.forEach((c, i) => { (c.block ? blockBox : box).appendChild(field(c, i)); });
    const n = blockBox.children.length;
    $("block-box").hidden = n === 0;
    $("block-box").open = false;
    $("block-summary").textContent = "Other model inputs (from blocks: " + (schema.blocks.join(", ") || "none named") +
      ") \u2014 " + n + " column" + (n === 1 ? "" : "s") + "; leave empty when unknown";
  }

  function field(c, i) {
    const div = document.createElement("div");
    div.className = "field";
    const id = "f-" + i;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = c.name;
    if (c.unit) { const u = document.createElement("span"); u.className = "unit"; u.textContent = " (" + c.unit + ")"; label.appendChild(u); }
    let input;
    if (c.type === "category" || c.type === "bool") {
      input = document.createElement("select");
      const opts = c.type === "bool" ? [["0", "no"], ["1", "yes"]] : (c.categories || []).map((v) => [v, v]);
      if (c.nullable) opts.unshift(["", "(missing)"]);
      opts.forEach(([v, t]) => { const o = document.createElement("option"); o.value = v; o.textContent = t; input.appendChild(o); });
    } else {
      input = document.createElement("input");
      if (c.type === "float" || c.type === "int") {
        input.type = "number";
        input.inputMode = c.type === "int" ? "numeric" : "decimal";
        input.step = c.type === "int" ? "1" : "any";
        if (c.min !== null) input.min = c.min;
        if (c.max !== null) input.max = c.max;
      } else {
        input.type = "text";
      }
    }
    input.id = id;
    input.name = c.name;
    input.dataset.column = c.name;
    if (!c.nullable) input.required = true;
    div.appendChild(label);
    div.appendChild(input);
    const range = [];
    if (c.min !== null || c.max !== null) range.push("range " + (c.min !== null ? g(c.min) : "…") + "–" + (c.max !== null ? g(c.max) : "…"));
    if (c.description) range.push(c.description);
    if (!c.nullable) range.push("required");
    if (range.length) { const s = document.createElement("small"); s.textContent = range.join("; "); div.appendChild(s); }
    return div;
  }

  const inputs = () => document.querySelectorAll("#fields [data-column], #block-fields [data-column]");
  const inputOf = (name) => Array.from(inputs()).find((el) => el.dataset.column === name) || null;

  function patientRow() {
    const row = {};
    row[schema.id] = $("patient-id").value.trim() || "patient";
    inputs().forEach((el) => {
      const c = column(el.dataset.column);
      const v = el.value.trim();
      if (v === "") { row[c.name] = null; return; }
      row[c.name] = (c.type === "float" || c.type === "int" || c.type === "bool") ? Number(v) : v;
    });
    return row;
  }

  // CSV of a header and one patient row (RFC 4180 quoting), read here and put into the form
  function parseCsv(text) {
    const rows = [];
    let row = [], field = "", quoted = false;
    text = text.replace(/^\ufeff/, "");
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (quoted) {
        if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') { quoted = false; } else { field += ch; }
      } else if (ch === '"') { quoted = true; } else if (ch === ",") { row.push(field); field = ""; } else if (ch === "\n" || ch === "\r") {
        if (ch === "\r" && text[i + 1] === "\n") i++;
        row.push(field); field = ""; if (row.some((x) => x !== "")) rows.push(row); row = [];
      } else { field += ch; }
    }
    row.push(field);
    if (row.some((x) => x !== "")) rows.push(row);
    return rows;
  }

  function fillFromCsv(text) {
    const rows = parseCsv(text);
    if (rows.length !== 2) {
      throw new Problem(0, { title: "CSV not read", detail: "the file must hold a header and exactly one patient row (it has " +
        Math.max(rows.length - 1, 0) + ")" });
    }
    const [head, vals] = rows;
    const unknown = [];
    head.forEach((h, i) => {
      const v = vals[i] === undefined ? "" : vals[i];
      if (h === schema.id) { $("patient-id").value = v; return; }
      const el = inputOf(h);
      if (!el) { unknown.push(h); return; }
      const c = column(h);
      el.value = c.type === "bool" ? ({ "true": "1", "false": "0", "True": "1", "False": "0" }[v] || v) : v;
      if (c.block && v !== "") $("block-box").open = true;  // shown, to be checked as the others
    });
    const missing = schema.columns.filter((c) => !head.includes(c.name)).map((c) => c.name);
    const notes = [];
    if (missing.length) notes.push("not in the file (left as they were): " + missing.join(", "));
    if (unknown.length) notes.push("ignored columns: " + unknown.join(", "));
    $("csv-note").textContent = "Read " + (head.length - unknown.length) + " column(s) from the file" +
      (notes.length ? "; " + notes.join("; ") : "") + ". Check the values, then predict.";
  }

  // ------------------------------------------------------------------ the answer
  async function predict() {
    clearProblem();
    $("fhir-note").textContent = "";  // the answer now is the form's
    const btn = $("predict");
    btn.disabled = true;
    try {
      const name = $("model").value;
      const row = patientRow();
      const body = { patients: [row] };
      const recs = pgxFor(row[schema.id]);
      if (recs) body.pgx_recommendations = recs;  // the treatment options flag what CPIC/DPWG say of each arm
      const resp = await api("/api/models/" + encodeURIComponent(name) + "/predict", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const res = await resp.json();
      if (name !== $("model").value) return;  // the model was changed meanwhile: its form is shown now
      lastPrediction = res;
      await render(name, res);
    } catch (e) { showProblem(e); } finally { btn.disabled = false; }
  }

  // a FHIR Bundle (Patients and Observations) read in this browser and sent as it is: the service
  // fills the model's columns from its LOINC-coded Observations and answers as for the form
  async function predictFhir(file) {
    clearProblem();
    const note = $("fhir-note"), input = $("fhir");
    note.textContent = "";
    // the answer on screen is another patient's (or the form's): hidden until this bundle's comes,
    // so that a refused bundle never stands beside an answer it did not give
    $("answer").hidden = true;
    lastPrediction = null;
    input.disabled = true;
    try {
      const name = $("model").value;
      const body = await file.text();
      const resp = await api("/api/models/" + encodeURIComponent(name) + "/predict", {
        method: "POST", headers: { "Content-Type": "application/fhir+json", Accept: "application/json" }, body: body });
      const res = await resp.json();
      if (name !== $("model").value) return;  // the model was changed meanwhile: its form is shown now
      const n = res.predictions.length;
      if (!n) throw new Problem(0, { title: "FHIR Bundle not read", detail: "the bundle holds no Patient" });
      const source = "Patient " + res.predictions[0].patient_id + " of the FHIR Bundle " + file.name +
        (n > 1 ? " (" + n + " patients in the bundle; showing the first)" : "") + "; the form above was not used.";
      note.textContent = source;
      lastPrediction = res;
      await render(name, res, source);
    } catch (e) { showProblem(e); } finally { input.disabled = false; }
  }

  async function render(name, res, source) {
    const p = res.predictions[0];
    // where the answer's patient came from, when not from the form
    $("prediction-source").textContent = source || "";
    $("prediction-source").hidden = !source;
    const level = schema.confidence_level ? Math.round(100 * schema.confidence_level) + "% " : "";
    let value = null;
    $("survival").hidden = true;
    if (schema.task === "binary") {
      value = p.probability;
      $("prediction-label").textContent = "Probability that " + schema.target + " = 1";
      $("prediction-value").textContent = pct(p.probability);
      $("prediction-range").textContent = p.prediction_set !== undefined && p.prediction_set !== null
        ? level + "prediction set: {" + (p.prediction_set ? p.prediction_set.split("|").join(", ") : "empty") + "}"
        : "predicted class " + p.predicted_class;
    } else if (schema.task === "survival") {
      value = p.risk;
      $("prediction-label").textContent = "Risk score";
      $("prediction-value").textContent = g(p.risk, 3);
      $("prediction-range").textContent = p.median_survival !== undefined
        ? "median survival: " + (p.median_survival === null ? "not reached" : g(p.median_survival, 3)) : "";
      const body = $("survival").querySelector("tbody");
      body.replaceChildren();
      Object.keys(p).filter((k) => /^surv_/.test(k) && !/_(low|high)$/.test(k)).forEach((k) => {
        const tr = document.createElement("tr");
        cell(tr, k.slice(5));
        cell(tr, p[k] === null ? "–" : pct(p[k]));
        const lo = p[k + "_low"], hi = p[k + "_high"];
        cell(tr, lo !== undefined && lo !== null ? pct(lo) + "–" + pct(hi) : "–");
        body.appendChild(tr);
      });
      $("survival").hidden = !body.children.length;
    } else {
      value = p.prediction;
      const col = column(schema.target);
      $("prediction-label").textContent = "Predicted " + schema.target;
      $("prediction-value").textContent = show(p.prediction, col);
      $("prediction-range").textContent = p.interval_low !== undefined && p.interval_low !== null
        ? level + "interval: " + g(p.interval_low, 4) + "–" + g(p.interval_high, 4) : "";
    }
    // factors
    const ul = $("factors");
    ul.replaceChildren();
    (p.factors || []).forEach((f) => {
      const li = document.createElement("li");
      li.textContent = factorSentence(f);
      ul.appendChild(li);
    });
    if (!ul.children.length) { const li = document.createElement("li"); li.textContent = "every value is the typical one"; ul.appendChild(li); }
    renderOptions(p.treatment_options);
    $("prediction-meta").textContent = "model " + res.model + " · bundle SHA-256 " + res.model_sha256.slice(0, 12) +
      "… · prediction " + res.prediction_id;
    $("report-link").hidden = true;
    if (reportUrl) { URL.revokeObjectURL(reportUrl); reportUrl = null; }
    $("population").textContent = "…";
    $("population-note").textContent = "";
    $("answer").hidden = false;
    // the population position (the service computes it from the bundle's out-of-fold predictions)
    if (value !== null && value !== undefined) {
      const pos = await (await api("/api/models/" + encodeURIComponent(name) + "/population?value=" + encodeURIComponent(value))).json();
      $("population").textContent = pos.percentile === null ? "–" : ordinal(Math.round(pos.percentile)) + " percentile";
      $("population-note").textContent = pos.percentile === null ? "not available for this model"
        : Math.round(pos.percentile) + "% of the training population had a lower prediction";
    }
  }

  function renderOptions(opts) {
    const body = $("options").querySelector("tbody");
    body.replaceChildren();
    $("options-block").hidden = !(opts && opts.length);
    if (!opts) return;
    const lvl = schema.treatment && schema.treatment.level ? " (" + Math.round(100 * schema.treatment.level) + "% interval)" : "";
    const tr_ = schema.treatment || {};
    const prob = tr_.outcome_type === "binary";  // outcomes are probabilities, effects differences of them
    const out = (v) => (v === null || v === undefined ? "–" : prob ? pct(v) : g(v, 3));
    const eff = (v) => (v === null || v === undefined ? "–" : prob ? (v > 0 ? "+" : "") + (100 * v).toFixed(1) : g(v, 3));
    opts.forEach((o) => {
      const tr = document.createElement("tr");
      cell(tr, o.rank);
      cell(tr, o.treatment);
      cell(tr, out(o.outcome) + " (" + out(o.outcome_low) + " to " + out(o.outcome_high) + ")");
      cell(tr, o.treatment === tr_.control ? "(the control)" : o.effect === null || o.effect === undefined ? "–"
        : eff(o.effect) + " (" + eff(o.effect_low) + " to " + eff(o.effect_high) + ")" + (prob ? " percentage points" : ""));
      const td = cell(tr, o.pgx_flag || "–");
      if (o.pgx_guidance) { const s = document.createElement("small"); s.textContent = " " + o.pgx_guidance; td.appendChild(s); }
      body.appendChild(tr);
    });
    $("options").querySelector("thead th:nth-child(3)").textContent = "expected " + (tr_.outcome_scale || "outcome") + lvl;
    $("options").querySelector("thead th:nth-child(4)").textContent = "effect vs " + (tr_.control || "control");
    $("options-note").textContent = tr_.higher_is_better === undefined ? "" : "ranked best first (" +
      (tr_.higher_is_better ? "higher" : "lower") + " is better); pharmacogenomic flags are shown beside the rank, which they never change";
  }

  // the report needs the token: fetched with it and opened as a blob: URL (no token in any URL)
  async function openReport() {
    if (!lastPrediction) return;
    clearProblem();
    const btn = $("report-button");
    btn.disabled = true;
    try {
      const resp = await api("/api/predictions/" + encodeURIComponent(lastPrediction.prediction_id) + "/report?index=0");
      const blob = new Blob([await resp.text()], { type: "text/html" });
      if (reportUrl) URL.revokeObjectURL(reportUrl);
      reportUrl = URL.createObjectURL(blob);
      const a = $("report-link");
      a.href = reportUrl;
      a.hidden = false;
      a.focus();
    } catch (e) { showProblem(e); } finally { btn.disabled = false; }
  }

  // ------------------------------------------------------------------ pharmacogenomics
  // the last VCF's recommendations, sent with the form's predictions: a one-sample VCF is the
  // patient on the form (its sample name need not be the patient's ID); a VCF of several samples
  // applies to the patient whose ID is one of them
  let pgx = null;
  function pgxFor(id) {
    if (!pgx || !pgx.recommendations.length) return null;
    if (pgx.samples.length === 1) return pgx.recommendations.map((r) => Object.assign({}, r, { sample: id }));
    const mine = pgx.recommendations.filter((r) => r.sample === id);
    return mine.length ? mine : null;
  }

  async function callPgx() {
    clearProblem();
    const f = $("vcf").files[0];
    if (!f) return;
    const data = new FormData();
    data.append("file", f);
    data.append("missing_to_ref", $("missing-to-ref").checked ? "true" : "false");
    try {
      const res = await (await api("/api/pgx/call", { method: "POST", body: data })).json();
      const samples = [...new Set(res.calls.map((c) => c.sample))];
      pgx = { recommendations: res.recommendations, samples: samples };
      $("pgx-applied").textContent = samples.length === 1
        ? "These recommendations (sample " + samples[0] + " of " + f.name + ") go with the next predictions of the patient on the form."
        : "These recommendations go with the next prediction of a patient whose ID is one of the VCF's samples.";
      const calls = $("pgx-calls").querySelector("tbody");
      calls.replaceChildren();
      res.calls.forEach((c) => {
        const tr = document.createElement("tr");
        [c.sample, c.gene, c.diplotypes, c.phenotype].forEach((v) => cell(tr, v === null || v === undefined ? "–" : v));
        calls.appendChild(tr);
      });
      const recs = $("pgx-recs").querySelector("tbody");
      recs.replaceChildren();
      res.recommendations.forEach((r) => {
        const tr = document.createElement("tr");
        [r.sample, r.drug, r.recommendation].forEach((v) => cell(tr, v === null || v === undefined ? "–" : v));
        recs.appendChild(tr);
      });
      const w = $("pgx-warnings");
      w.replaceChildren();
      (res.warnings || []).forEach((t) => { const li = document.createElement("li"); li.textContent = t; w.appendChild(li); });
      $("pgx-result").hidden = false;
    } catch (e) { showProblem(e); }
  }

  // ------------------------------------------------------------------ wiring
  document.addEventListener("DOMContentLoaded", () => {
    $("signin").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("token").value.trim()); });
    $("signout").addEventListener("click", () => signOut(true));
    $("model").addEventListener("change", (ev) => {
      // choosing the model already shown keeps the form as filled
      if (!(schema && schema.name === ev.target.value && !$("patient-section").hidden)) chooseModel(ev.target.value);
    });
    $("patient").addEventListener("submit", (ev) => { ev.preventDefault(); predict(); });
    // a block's value out of its range: the collapsed section opens, so the browser can point at it
    $("block-fields").addEventListener("invalid", () => { $("block-box").open = true; }, true);
    $("report-button").addEventListener("click", openReport);
    $("pgx").addEventListener("submit", (ev) => { ev.preventDefault(); callPgx(); });
    $("fhir").addEventListener("change", async (ev) => {
      const f = ev.target.files[0];
      if (!f) return;
      await predictFhir(f);
      ev.target.value = "";  // the same file may be chosen again (after a fix, or another model)
    });
    $("csv").addEventListener("change", async (ev) => {
      clearProblem();
      $("csv-note").textContent = "";
      const f = ev.target.files[0];
      if (!f) return;
      try { fillFromCsv(await f.text()); } catch (e) { showProblem(e); }
      ev.target.value = "";
    });
    if (sessionStorage.getItem(KEY)) signIn(sessionStorage.getItem(KEY));
  });
})();
