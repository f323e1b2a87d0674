// The clinician's page: builds the form from the data contract's fields (embedded by the
// server), reads them from the URL, asks POST /explain and GET /model like any client, and
// shows the answer as "N out of 100", an icon array, curves, reasons and warnings.
// Plain script, no library, nothing fetched from elsewhere.
(function () {
  "use strict";

  var FIELDS = JSON.parse(document.getElementById("fields").textContent);
  var TOKEN_KEY = "bonemet-api-token";
  var CURVE_MONTHS = [];
  for (var m = 3; m <= 60; m += 3) CURVE_MONTHS.push(m); // 20 horizons: the API's maximum
  // Okabe-Ito colours, told apart with every common colour-vision deficiency; the curves also
  // differ in line style and marker shape, the icons in shape.
  var COLOURS = { bm: "#D55E00", death: "#0072B2", neither: "#BBBBBB" };
  var SVG = "http://www.w3.org/2000/svg";

  var form = document.getElementById("patient-form");
  var drawList = document.getElementById("draw-list");
  var statusBox = document.getElementById("result-status");
  var pending = []; // what to retry once a token is given (loading the model, the result)
  var drawCount = 0;

  // -- building the form --------------------------------------------------------------------

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function hintText(spec) {
    var parts = [];
    if (spec.kind === "number" || spec.kind === "integer") {
      if (spec.range) parts.push("Allowed: " + spec.range + (spec.unit ? " " + spec.unit : ""));
      if (spec.kind === "integer") parts.push("whole number");
    }
    if (spec.help && spec.name !== "patient_id") parts.push(spec.help);
    if (spec.name === "patient_id") parts.push("1-64 characters: letters, digits, _ or -; never a name");
    return parts.join("; ");
  }

  function buildField(spec, id, required) {
    var wrap = el("div", { class: "field", "data-field": spec.name });
    var label = el("label", { for: id });
    label.textContent = spec.label + (spec.unit ? " (" + spec.unit + ")" : "");
    if (required) {
      label.appendChild(document.createTextNode(" "));
      label.appendChild(el("span", { class: "req" }, "(required)"));
    }
    wrap.appendChild(label);
    var hint = hintText(spec);
    var described = [];
    if (hint) {
      wrap.appendChild(el("p", { class: "hint", id: id + "-hint" }, hint));
      described.push(id + "-hint");
    }
    var control;
    if (spec.kind === "category" || spec.kind === "boolean") {
      control = el("select", { id: id, name: spec.name });
      control.appendChild(el("option", { value: "" }, required ? "Choose..." : "Not given"));
      var options = spec.kind === "boolean" ? [["true", "Yes"], ["false", "No"]] : spec.allowed;
      options.forEach(function (pair) {
        control.appendChild(el("option", { value: pair[0] }, pair[1]));
      });
    } else {
      control = el("input", { id: id, name: spec.name, type: "text", autocomplete: "off" });
      if (spec.kind === "number" || spec.kind === "integer") {
        control.setAttribute("inputmode", spec.kind === "integer" ? "numeric" : "decimal");
      }
    }
    if (required) {
      control.setAttribute("required", "");
      control.setAttribute("aria-required", "true");
    }
    control.dataset.kind = spec.kind;
    var error = el("p", { class: "error", id: id + "-error", hidden: "" });
    described.push(id + "-error");
    control.setAttribute("aria-describedby", described.join(" "));
    wrap.appendChild(control);
    wrap.appendChild(error);
    return wrap;
  }

  function addPatientFields(container, specs) {
    specs.forEach(function (spec) {
      container.appendChild(buildField(spec, "f-" + spec.name, spec.required));
    });
  }

  function addDraw(values) {
    var index = drawCount++;
    var set = el("fieldset", { class: "draw", "data-draw": String(index) });
    set.appendChild(el("legend", {}, "Blood draw " + (drawList.children.length + 1)));
    FIELDS.draw.forEach(function (spec) {
      var field = buildField(spec, "d" + index + "-" + spec.name, spec.required);
      set.appendChild(field);
      if (values && values[spec.name] !== undefined && values[spec.name] !== null) {
        setValue(field.querySelector("input, select"), values[spec.name]);
      }
    });
    var remove = el("button", { type: "button", class: "secondary" }, "Remove this blood draw");
    remove.addEventListener("click", function () {
      set.remove();
      renumberDraws();
      document.getElementById("add-draw").focus();
    });
    set.appendChild(remove);
    drawList.appendChild(set);
    return set;
  }

  function renumberDraws() {
    Array.prototype.forEach.call(drawList.children, function (set, k) {
      set.querySelector("legend").textContent = "Blood draw " + (k + 1);
    });
  }

  function timingFields() {
    var box = document.getElementById("timing");
    box.appendChild(
      buildField(
        {
          name: "prediction_day",
          label: "Prediction day",
          kind: "number",
          unit: "days since enrollment",
          range: "0-36500",
          help: "default: the day of the latest blood draw given, or 0 (enrollment)",
        },
        "f-prediction_day",
        false
      )
    );
    var wrap = el("div", { class: "field", "data-field": "horizon_months" });
    wrap.appendChild(el("label", { for: "f-horizon_months" }, "Show the risk within"));
    var select = el("select", {
      id: "f-horizon_months",
      name: "horizon_months",
      "aria-describedby": "f-horizon_months-error",
    });
    FIELDS.horizons_months.forEach(function (h) {
      var years = h / 12;
      select.appendChild(el("option", { value: String(h) }, years + (years === 1 ? " year" : " years")));
    });
    select.value = "36";
    wrap.appendChild(select);
    wrap.appendChild(el("p", { class: "error", id: "f-horizon_months-error", hidden: "" }));
    box.appendChild(wrap);
  }

  // -- values -------------------------------------------------------------------------------

  function setValue(control, raw) {
    var text = String(raw);
    if (control.dataset.kind === "boolean") {
      var lower = text.toLowerCase();
      if (["true", "1", "yes"].indexOf(lower) >= 0) text = "true";
      else if (["false", "0", "no"].indexOf(lower) >= 0) text = "false";
    }
    if (control.tagName === "SELECT") {
      var known = Array.prototype.some.call(control.options, function (o) {
        return o.value === text;
      });
      if (!known) {
        // Keep the unknown value so the server names the problem next to the field.
        control.appendChild(el("option", { value: text }, text + " (not an allowed value)"));
      }
    }
    control.value = text;
  }

  // The value to send: numbers as numbers; anything that is not a number is sent as typed,
  // so the service answers with the contract's message for it.
  function readValue(control) {
    var text = control.value.trim();
    if (text === "") return undefined;
    var kind = control.dataset.kind;
    if (kind === "boolean") return text === "true" ? true : text === "false" ? false : text;
    if (kind === "number" || kind === "integer") {
      // A decimal comma is read as a point ("0,061" is 0.061); "1,000" is ambiguous (a
      // thousands separator?) and is sent as typed, so the message explains what to type.
      if (kind === "number" && /^[+-]?\d*,\d+$/.test(text) && !/^[+-]?[1-9]\d{0,2},\d{3}$/.test(text)) {
        text = text.replace(",", ".");
      }
      var n = Number(text);
      return text !== "" && isFinite(n) ? n : text;
    }
    return text;
  }

  function patientRecord() {
    var record = {};
    FIELDS.patient.concat(FIELDS.marker).forEach(function (spec) {
      var value = readValue(document.getElementById("f-" + spec.name));
      if (value !== undefined) record[spec.name] = value;
    });
    var draws = [];
    Array.prototype.forEach.call(drawList.children, function (set) {
      var draw = {};
      set.querySelectorAll("input, select").forEach(function (control) {
        var value = readValue(control);
        if (value !== undefined) draw[control.name] = value;
      });
      draws.push(draw);
    });
    if (draws.length) record.oc_measurements = draws;
    var day = readValue(document.getElementById("f-prediction_day"));
    if (day !== undefined) record.prediction_day = day;
    return record;
  }

  function horizonMonths() {
    return Number(document.getElementById("f-horizon_months").value);
  }

  // Every field from the URL, by its contract name; horizon_months for the horizon.
  function prefillFromUrl() {
    var params = new URLSearchParams(window.location.search);
    var problems = [];
    FIELDS.patient.concat(FIELDS.marker).forEach(function (spec) {
      if (params.has(spec.name)) setValue(document.getElementById("f-" + spec.name), params.get(spec.name));
    });
    if (params.has("prediction_day")) {
      setValue(document.getElementById("f-prediction_day"), params.get("prediction_day"));
    }
    if (params.has("horizon_months")) {
      var h = params.get("horizon_months");
      if (FIELDS.horizons_months.map(String).indexOf(h) >= 0) {
        document.getElementById("f-horizon_months").value = h;
      } else {
        problems.push(["f-horizon_months", "The time frame in the link must be 1, 2, 3, 4 or 5 years (" +
          FIELDS.horizons_months.join(", ") + " months); it gave " + h + ". Choose one in the list."]);
      }
    }
    if (params.has("oc_measurements")) {
      var draws = null;
      try {
        draws = JSON.parse(params.get("oc_measurements"));
      } catch (err) {
        draws = null;
      }
      if (Array.isArray(draws)) {
        draws.forEach(function (d) {
          addDraw(d && typeof d === "object" ? d : {});
        });
      } else {
        problems.push(["err-oc_measurements", "oc_measurements must be a JSON list of draws, " +
          'e.g. [{"day": 90, "oc_positive_percent": 0.07}]']);
      }
    }
    var complete = FIELDS.patient.every(function (spec) {
      return !spec.required || (params.get(spec.name) || "").trim() !== "";
    });
    return { problems: problems, complete: complete };
  }

  // -- errors -------------------------------------------------------------------------------

  function clearErrors() {
    form.querySelectorAll(".error").forEach(function (p) {
      p.hidden = true;
      p.textContent = "";
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (c) {
      c.removeAttribute("aria-invalid");
    });
    document.getElementById("error-summary").hidden = true;
    document.getElementById("error-list").textContent = "";
  }

  function label(control) {
    var l = form.querySelector('label[for="' + control.id + '"]');
    return l ? l.firstChild.textContent.trim() : control.name;
  }

  function showFieldError(id, message) {
    var control = document.getElementById(id);
    var box = control && control.tagName !== "P" ? document.getElementById(id + "-error") : control;
    if (!box) return false;
    box.textContent = message;
    box.hidden = false;
    var item = el("li");
    if (control && control.tagName !== "P") {
      control.setAttribute("aria-invalid", "true");
      var link = el("a", { href: "#" + id }, label(control) + ": " + message);
      link.addEventListener("click", function (event) {
        event.preventDefault();
        control.focus();
      });
      item.appendChild(link);
    } else {
      item.textContent = message;
    }
    document.getElementById("error-list").appendChild(item);
    return true;
  }

  function showSummary() {
    var summary = document.getElementById("error-summary");
    summary.hidden = false;
    summary.focus();
  }

  // loc from the API: ["patients", 0, field] or ["patients", 0, "oc_measurements", j, field].
  function controlId(loc) {
    if (loc[0] !== "patients") return null;
    if (loc[2] === "oc_measurements") {
      if (loc.length < 5) return "err-oc_measurements";
      var set = drawList.children[loc[3]];
      return set ? "d" + set.dataset.draw + "-" + loc[4] : "err-oc_measurements";
    }
    if (typeof loc[2] === "string" && document.getElementById("f-" + loc[2])) return "f-" + loc[2];
    return null;
  }

  // The service's message in the clinician's words: what is wrong and what to type (no
  // pattern syntax, no validator jargon); a contract rule keeps its words, fields by label.
  function plainMessage(msg) {
    var text = String(msg || "");
    var m;
    if (/match pattern/.test(text)) {
      return "Use 1 to 64 letters, digits, _ or - (no spaces, not starting with -); never a name or record number.";
    }
    if (/valid integer|fractional part/.test(text)) {
      return "Type a whole number without separators, e.g. 100000.";
    }
    if (/valid number|finite number|multiple of/.test(text)) {
      return "Type a number, e.g. 0.05 (a decimal comma, 0,05, works too; no thousands separators).";
    }
    if ((m = /greater than or equal to ([^\s,]+)/.exec(text))) return "Must be at least " + m[1] + ".";
    if ((m = /less than or equal to ([^\s,]+)/.exec(text))) return "Must be at most " + m[1] + ".";
    if ((m = /greater than ([^\s,]+)/.exec(text))) return "Must be more than " + m[1] + ".";
    if ((m = /less than ([^\s,]+)/.exec(text))) return "Must be less than " + m[1] + ".";
    // pydantic's words, or the service's contract words (serving/errors.py) for the same rule.
    if (/Field required|Missing required|^required by data contract/i.test(text)) return "Required: please fill this in.";
    if (/^(Input should be|must be) /.test(text)) return "Choose one of the options in the list.";
    if (/Extra inputs|^unknown field/.test(text)) return "This is not a field of the form.";
    return plainWarning(text);
  }

  function showViolations(detail) {
    detail.forEach(function (v) {
      var loc = Array.isArray(v.loc) ? v.loc : [];
      var id = controlId(loc);
      var message = plainMessage(v.msg);
      if (!id || !showFieldError(id, message)) {
        document.getElementById("error-list").appendChild(el("li", {}, message));
      }
    });
    showSummary();
  }

  // -- talking to the API -------------------------------------------------------------------

  function headers(json) {
    var h = { Accept: "application/json" };
    if (json) h["Content-Type"] = "application/json";
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }

  // A 401 to a request sent with token `sentWith`: ask for a token, unless a newer one was
  // given while the request was on its way (then it is retried with that one). Two requests
  // leave on loading (the model, the prefilled result); the answer to one can come back after
  // the user has already typed the next token.
  function askForToken(retry, sentWith) {
    var current = sessionStorage.getItem(TOKEN_KEY);
    if (current && current !== sentWith) {
      retry();
      return;
    }
    var rejected = Boolean(sentWith);
    if (pending.indexOf(retry) < 0) pending.push(retry);
    var panel = document.getElementById("token-panel");
    var error = document.getElementById("token-error");
    panel.hidden = false;
    error.hidden = !rejected;
    error.textContent = rejected ? "This token was not accepted. Please check it." : "";
    var input = document.getElementById("token");
    if (rejected) input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  function loadModel() {
    var sent = sessionStorage.getItem(TOKEN_KEY);
    return fetch("/model", { headers: headers(false) }).then(function (r) {
      if (r.status === 401) {
        askForToken(loadModel, sent);
        return;
      }
      if (!r.ok) {
        document.getElementById("model-text").textContent = "The model's description is not available (HTTP " + r.status + ").";
        return;
      }
      return r.json().then(showModel);
    });
  }

  function showModel(info) {
    var trained = info.trained_at ? info.trained_at.replace("T", " ").slice(0, 16) + " UTC" : "unknown";
    var text = "Model " + info.name + ", version " + info.version +
      (info.alias ? " (" + info.alias + ")" : "") + ", family " + info.family +
      ", trained " + trained + ". Data contract " + info.contract_version + ".";
    if (info.landmark_days && info.landmark_days.length) {
      text += " Predicts from any prediction day with the blood draws known by then.";
    }
    document.getElementById("model-text").textContent = text;
    document.getElementById("model-accuracy").textContent = accuracyText(info.performance || {});
    document.getElementById("model-population").textContent = populationText(info.development);
    if (info.model_card_url) document.getElementById("card-link").setAttribute("href", info.model_card_url);
  }

  function withInterval(m, digits) {
    var text = m.estimate.toFixed(digits);
    if (m.low !== null && m.low !== undefined && m.high !== null && m.high !== undefined) {
      text += " (95% CI " + m.low.toFixed(digits) + " to " + m.high.toFixed(digits) + ")";
    }
    return text;
  }

  function accuracyText(p) {
    var parts = [];
    if (p.uno_c) parts.push("C-index " + withInterval(p.uno_c, 2) + " (0.5 is chance, 1 perfect ranking)");
    if (p.td_auc_24m) parts.push("AUC at 2 years " + withInterval(p.td_auc_24m, 2));
    if (p.calibration_slope_24m) parts.push("calibration slope at 2 years " + withInterval(p.calibration_slope_24m, 2) + " (1 is ideal)");
    if (p.calibration_in_the_large_24m) parts.push("observed minus predicted at 2 years " + withInterval(p.calibration_in_the_large_24m, 3) + " (0 is ideal)");
    return parts.length
      ? "Accuracy on patients not used to fit it: " + parts.join("; ") + "."
      : "The accuracy of this model version was not recorded with it: see the model card.";
  }

  function populationText(d) {
    if (!d) return "The population this version was developed on was not recorded with it: see the model card.";
    var settings = Object.keys(d.disease_setting || {}).map(function (k) {
      return Math.round(100 * d.disease_setting[k]) + "% " + k;
    }).join(", ");
    return "Developed on " + d.patients.toLocaleString("en") + " patients (" + settings + " disease), with " +
      d.bone_metastases + " first bone metastases and " + d.deaths_before_bone_metastasis +
      " deaths before any bone metastasis; median follow-up " + d.median_follow_up_years.toFixed(1) +
      " years (longest " + d.longest_follow_up_years.toFixed(1) + "). It applies to patients like these.";
  }

  function submit(event) {
    if (event) event.preventDefault();
    clearErrors();
    statusBox.classList.remove("visually-hidden");
    var body = { patients: [patientRecord()], horizons_months: CURVE_MONTHS };
    statusBox.textContent = "Computing the risk...";
    var sent = sessionStorage.getItem(TOKEN_KEY);
    return fetch("/explain", { method: "POST", headers: headers(true), body: JSON.stringify(body) })
      .then(function (r) {
        if (r.status === 401) {
          statusBox.textContent = "An access token is needed.";
          askForToken(submit, sent);
          return;
        }
        return r.json().then(
          function (data) {
            if (r.status === 400 && Array.isArray(data.detail)) {
              document.getElementById("result-body").hidden = true;
              statusBox.textContent = "The form has " + data.detail.length + " problem(s): see the list above the form.";
              showViolations(data.detail);
            } else if (!r.ok) {
              statusBox.textContent = "The service answered HTTP " + r.status + ": " + (data.error || "no result");
            } else {
              showResult(data, horizonMonths());
              rememberInUrl(body.patients[0]);
            }
          },
          function () {
            statusBox.textContent = "The service answered HTTP " + r.status + " without a readable body.";
          }
        );
      })
      .catch(function () {
        statusBox.textContent = "The service could not be reached.";
      });
  }

  // The address bar then holds a link that reopens this patient's result.
  function rememberInUrl(record) {
    var params = new URLSearchParams();
    Object.keys(record).forEach(function (k) {
      var v = record[k];
      params.set(k, k === "oc_measurements" ? JSON.stringify(v) : String(v));
    });
    params.set("horizon_months", String(horizonMonths()));
    window.history.replaceState(null, "", "?" + params.toString());
  }

  // -- the answer ---------------------------------------------------------------------------

  function at(curve, months) {
    for (var i = 0; i < curve.length; i++) if (curve[i].months === months) return curve[i].probability;
    return null;
  }

  function years(months) {
    var y = months / 12;
    return y + (y === 1 ? " year" : " years");
  }

  // Counts out of 100 that always sum to 100: bone metastasis first, then death.
  function counts(pBm, pDeath) {
    var bm = Math.round(100 * pBm);
    var death = pDeath === null ? 0 : Math.min(Math.round(100 * pDeath), 100 - bm);
    return { bm: bm, death: death, neither: 100 - bm - death };
  }

  function showResult(data, horizon) {
    var pred = data.predictions[0];
    var resultBody = document.getElementById("result-body");
    resultBody.hidden = false;
    var bmCurve = pred.bone_metastasis_probability;
    var deathCurve = pred.death_probability || [];
    var figures = resultBody.querySelectorAll(".figure");
    // Missing inputs are listed with what they could change (below); not again as warnings.
    var shown = pred.warnings.filter(function (w) {
      return !((pred.missing_inputs || []).length && / missing: imputed$/.test(w));
    });
    showList("warnings", shown.length ? shown.map(plainWarning) : ["None."]);
    if (!bmCurve.length) {
      document.getElementById("headline").textContent = pred.warnings[0] || "No risk to predict for this patient.";
      document.getElementById("subline").textContent = "";
      figures.forEach(function (f) {
        f.hidden = true;
      });
      showList("reasons", ["None: there is no risk to explain."]);
      statusBox.textContent = "No risk to predict: see the warnings.";
      return;
    }
    figures.forEach(function (f) {
      f.hidden = false;
    });
    var pBm = at(bmCurve, horizon);
    var pDeath = deathCurve.length ? at(deathCurve, horizon) : null;
    var c = counts(pBm, pDeath);
    var within = years(horizon);
    var bounds = outOf100(entry(bmCurve, horizon));
    var headlineBox = document.getElementById("headline");
    showMissing(pred.missing_inputs || [], pred.too_uncertain, horizon);
    showTreatment(pred, horizon, c.bm);
    if (pred.too_uncertain) {
      var short = "Too uncertain to show a number: too little is known about this patient.";
      headlineBox.textContent = short;
      headlineBox.dataset.n = "";
      document.getElementById("subline").textContent =
        "Fill in the missing information listed below (the fields that could change the answer " +
        "most come first), then choose \"Show the risk\" again.";
      figures.forEach(function (f) {
        f.hidden = true;
      });
      showReasons(pred.explanation || []);
      statusBox.textContent = "Result: " + short;
      statusBox.classList.add("visually-hidden");
      focusHeadline();
      return;
    }
    var headline = c.bm + " out of 100 women like this develop bone metastasis within " + within +
      (bounds ? ", likely between " + bounds.low + " and " + bounds.high : "") + ".";
    headlineBox.textContent = headline;
    headlineBox.dataset.n = String(c.bm);
    headlineBox.dataset.low = bounds ? String(bounds.low) : "";
    headlineBox.dataset.high = bounds ? String(bounds.high) : "";
    document.getElementById("subline").textContent = pDeath === null
      ? "This model version does not estimate deaths before bone metastasis."
      : c.death + " out of 100 die before any bone metastasis (from any cause, breast cancer " +
        "included); " + c.neither + " have neither.";
    drawIcons(c, within, pDeath !== null);
    drawCurves(bmCurve, deathCurve, horizon);
    showReasons(pred.explanation || []);
    statusBox.textContent = "Result: " + headline;
    statusBox.classList.add("visually-hidden"); // the headline shows it; screen readers hear it
    focusHeadline();
  }

  // The answer is what the clinician asked for: scrolled into view and focused (1366x768, phone).
  function focusHeadline() {
    var box = document.getElementById("headline");
    box.scrollIntoView({ block: "start" });
    box.focus({ preventScroll: true });
  }

  function entry(curve, months) {
    for (var i = 0; i < curve.length; i++) if (curve[i].months === months) return curve[i];
    return null;
  }

  // An interval as whole women out of 100; null when the version has none.
  function outOf100(e) {
    if (!e || e.low === null || e.low === undefined || e.high === null || e.high === undefined) return null;
    return { low: Math.round(100 * e.low), high: Math.round(100 * e.high) };
  }

  function fieldLabel(name) {
    var spec = FIELDS.patient.concat(FIELDS.marker).filter(function (s) { return s.name === name; })[0];
    return spec ? spec.label : name;
  }

  function showMissing(missing, tooUncertain, horizon) {
    var section = document.getElementById("missing-section");
    var list = document.getElementById("missing");
    list.textContent = "";
    section.hidden = !missing.length;
    document.getElementById("missing-intro").textContent = tooUncertain
      ? "Too little is known to show a number. These are missing; the first ones could change the answer most:"
      : "These are missing. The model filled each with a typical value; with its real value the " +
        "answer could lie in the range shown. Fill them in for a better answer.";
    missing.forEach(function (m) {
      var here = (m.at_horizons || []).filter(function (r) { return r.months === horizon; })[0] || m;
      var low = Math.round(100 * here.low), high = Math.round(100 * here.high);
      var text = fieldLabel(m.input) + ": " + (low === high
        ? "would hardly change the answer"
        : "the answer could be anywhere from " + low + " to " + high + " out of 100 within " + years(here.months) +
          ", depending on its value");
      var item = el("li", { "data-input": m.input, "data-low": String(low), "data-high": String(high) });
      var control = document.getElementById("f-" + m.input);
      if (control) {
        var link = el("a", { href: "#f-" + m.input }, text);
        link.addEventListener("click", function (event) {
          event.preventDefault();
          control.focus();
        });
        item.appendChild(link);
      } else {
        item.textContent = text;
      }
      list.appendChild(item);
    });
  }

  function showTreatment(pred, horizon, untreated) {
    var box = document.getElementById("treatment");
    box.textContent = "";
    var benefits = pred.treatment_benefit || [];
    if (!benefits.length) {
      box.appendChild(el("p", { id: "treatment-none" }, "No treatment benefit from the trials is shown: " +
        (pred.treatment_benefit_note || "none applies to this patient") + "."));
      return;
    }
    benefits.forEach(function (b) {
      var treated = entry(b.bone_metastasis_probability, horizon);
      if (!treated) return;
      var n = Math.round(100 * treated.probability);
      var bounds = outOf100(treated);
      var name = b.treatment === "adjuvant_bisphosphonate" ? "adjuvant bisphosphonate" : b.treatment.replace(/_/g, " ");
      box.appendChild(el("p", {
        class: "treatment", "data-treatment": b.treatment, "data-n": String(n),
        "data-low": bounds ? String(bounds.low) : "", "data-high": bounds ? String(bounds.high) : "",
      }, "With " + name + ": " + n + " out of 100 within " + years(horizon) +
        (bounds ? ", likely between " + bounds.low + " and " + bounds.high : "") +
        ", instead of " + untreated + " without it."));
      box.appendChild(el("p", { class: "hint" }, "From the trials, not from this model: the bone-metastasis " +
        "rate is multiplied by " + b.relative_risk + " (95% CI " + b.relative_risk_low + "-" +
        b.relative_risk_high + "). Source: " + b.source + "."));
    });
  }

  // Contract names in a warning read as the form's labels ("ki67_percent missing: imputed"
  // -> "Ki-67 index (ki67_percent) missing: imputed"); the name stays for the record.
  function plainWarning(text) {
    return FIELDS.patient.concat(FIELDS.marker).reduce(function (out, spec) {
      return out.replace(new RegExp("\\b" + spec.name + "\\b", "g"), spec.label + " (" + spec.name + ")");
    }, text);
  }

  function showList(id, items) {
    var list = document.getElementById(id);
    list.textContent = "";
    items.forEach(function (text) {
      list.appendChild(el("li", {}, text));
    });
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    return node;
  }

  // One woman: a head and a body, filled by outcome; bone metastasis and death also carry a
  // mark (a cross, a bar) so the three are told apart without colour.
  function icon(x, y, kind) {
    var g = svg("g", { class: "icon icon-" + kind, "data-kind": kind });
    g.appendChild(svg("circle", { cx: x + 10, cy: y + 6, r: 5, fill: COLOURS[kind] }));
    g.appendChild(svg("path", {
      d: "M" + (x + 3) + " " + (y + 26) + " L" + (x + 6) + " " + (y + 13) + " H" + (x + 14) +
        " L" + (x + 17) + " " + (y + 26) + " Z",
      fill: COLOURS[kind],
    }));
    if (kind === "bm") {
      g.appendChild(svg("path", {
        d: "M" + (x + 8) + " " + (y + 17) + " h4 M" + (x + 10) + " " + (y + 15) + " v4",
        stroke: "#fff", "stroke-width": 1.6,
      }));
    } else if (kind === "death") {
      g.appendChild(svg("path", { d: "M" + (x + 7) + " " + (y + 19) + " h6", stroke: "#fff", "stroke-width": 1.6 }));
    }
    return g;
  }

  function drawIcons(c, within, withDeath) {
    var box = document.getElementById("icons");
    box.textContent = "";
    var text = "Of 100 women like this, within " + within + ": " + c.bm +
      " develop bone metastasis, " + (withDeath ? c.death + " die before any bone metastasis, " : "") +
      c.neither + " have neither.";
    document.getElementById("icon-text").textContent = text;
    var picture = svg("svg", {
      viewBox: "0 0 200 280",
      role: "img",
      "aria-labelledby": "icons-caption icon-text",
      class: "icon-array",
    });
    var kinds = [];
    for (var i = 0; i < c.bm; i++) kinds.push("bm");
    for (i = 0; i < c.death; i++) kinds.push("death");
    for (i = 0; i < c.neither; i++) kinds.push("neither");
    kinds.forEach(function (kind, k) {
      picture.appendChild(icon((k % 10) * 20, Math.floor(k / 10) * 28, kind));
    });
    box.appendChild(picture);
    var legend = document.getElementById("icon-legend");
    legend.textContent = "";
    [
      ["bm", c.bm + " develop bone metastasis"],
      ["death", c.death + " die before any bone metastasis (any cause)"],
      ["neither", c.neither + " have neither"],
    ].forEach(function (pair) {
      if (pair[0] === "death" && !withDeath) return;
      var item = el("li", { "data-kind": pair[0] });
      var swatch = svg("svg", { viewBox: "0 0 20 28", width: 16, height: 22, "aria-hidden": "true", focusable: "false" });
      swatch.appendChild(icon(0, 0, pair[0]));
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(" " + pair[1]));
      legend.appendChild(item);
    });
  }

  function drawCurves(bmCurve, deathCurve, horizon) {
    var W = 460, H = 260, left = 48, right = 16, top = 14, bottom = 40;
    var series = [["bm", bmCurve, "Bone metastasis", ""], ["death", deathCurve, "Death before any bone metastasis (any cause)", "6 4"]];
    var highest = 0;
    series.forEach(function (s) {
      s[1].forEach(function (p) {
        highest = Math.max(highest, p.probability);
      });
    });
    var yMax = Math.max(0.1, Math.ceil(highest * 10) / 10);
    var sx = function (months) { return left + (months / 60) * (W - left - right); };
    var sy = function (p) { return H - bottom - (p / yMax) * (H - top - bottom); };
    var picture = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-labelledby": "curves-caption curves-text", class: "curves" });
    var axis = svg("g", { class: "axis" });
    for (var y = 1; y <= 5; y++) {
      axis.appendChild(svg("line", { x1: sx(12 * y), x2: sx(12 * y), y1: top, y2: H - bottom, class: "grid" }));
      var t = svg("text", { x: sx(12 * y), y: H - bottom + 16, "text-anchor": "middle" });
      t.textContent = y + (y === 1 ? " year" : " years");
      axis.appendChild(t);
    }
    var steps = Math.round(yMax * 10);
    for (var k = 0; k <= steps; k++) {
      var p = k / 10;
      axis.appendChild(svg("line", { x1: left, x2: W - right, y1: sy(p), y2: sy(p), class: "grid" }));
      var label = svg("text", { x: left - 6, y: sy(p) + 4, "text-anchor": "end" });
      label.textContent = Math.round(p * 100) + "%";
      axis.appendChild(label);
    }
    axis.appendChild(svg("line", { x1: left, x2: W - right, y1: H - bottom, y2: H - bottom, class: "axis-line" }));
    axis.appendChild(svg("line", { x1: left, x2: left, y1: top, y2: H - bottom, class: "axis-line" }));
    picture.appendChild(axis);
    picture.appendChild(svg("line", { x1: sx(horizon), x2: sx(horizon), y1: top, y2: H - bottom, class: "chosen" }));
    series.forEach(function (s) {
      if (!s[1].length) return;
      var points = [[sx(0), sy(0)]].concat(s[1].map(function (q) { return [sx(q.months), sy(q.probability)]; }));
      picture.appendChild(svg("polyline", {
        points: points.map(function (xy) { return xy[0].toFixed(1) + "," + xy[1].toFixed(1); }).join(" "),
        fill: "none", stroke: COLOURS[s[0]], "stroke-width": 2.5, "stroke-dasharray": s[3],
        "data-kind": s[0],
      }));
      s[1].forEach(function (q) {
        if (q.months % 12) return;
        var x = sx(q.months), yy = sy(q.probability);
        picture.appendChild(s[0] === "bm"
          ? svg("circle", { cx: x, cy: yy, r: 4, fill: COLOURS.bm })
          : svg("rect", { x: x - 4, y: yy - 4, width: 8, height: 8, fill: COLOURS.death }));
      });
    });
    var box = document.getElementById("curves");
    box.textContent = "";
    box.appendChild(picture);
    var five = counts(at(bmCurve, 60), deathCurve.length ? at(deathCurve, 60) : null);
    box.appendChild(el("p", { id: "curves-text", class: "text-equivalent" },
      "Women out of 100 by each year from the prediction day, rising to " + five.bm +
      " with bone metastasis" + (deathCurve.length ? " and " + five.death + " dead before any bone metastasis" : "") +
      " within 5 years; the vertical line marks " + years(horizon) + "."));
    var legend = document.getElementById("curve-legend");
    legend.textContent = "";
    series.forEach(function (s) {
      if (!s[1].length) return;
      var item = el("li", { "data-kind": s[0] });
      var swatch = svg("svg", { viewBox: "0 0 30 10", width: 30, height: 10, "aria-hidden": "true", focusable: "false" });
      swatch.appendChild(svg("line", { x1: 0, x2: 30, y1: 5, y2: 5, stroke: COLOURS[s[0]], "stroke-width": 2.5, "stroke-dasharray": s[3] }));
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(" " + s[2] + (s[3] ? " (dashed, squares)" : " (solid, circles)")));
      legend.appendChild(item);
    });
    var body = document.querySelector("#curve-table tbody");
    body.textContent = "";
    for (var yr = 1; yr <= 5; yr++) {
      var row = counts(at(bmCurve, 12 * yr), deathCurve.length ? at(deathCurve, 12 * yr) : null);
      var tr = el("tr");
      tr.appendChild(el("th", { scope: "row" }, years(12 * yr)));
      tr.appendChild(el("td", {}, String(row.bm)));
      tr.appendChild(el("td", {}, deathCurve.length ? String(row.death) : "not available"));
      body.appendChild(tr);
    }
  }

  // "subject: +0.42 to the log hazard" -> "subject: raises the risk".
  function showReasons(explanation) {
    var items = explanation
      .filter(function (c) { return Math.abs(c.contribution) >= 0.01; })
      .slice(0, 5)
      .map(function (c) {
        var subject = String(c.text).replace(/: [+-]?[0-9.]+ to the log (hazard|odds)$/, "");
        var size = Math.abs(c.contribution) >= 0.5 ? "clearly " : "";
        return subject + ": " + size + (c.contribution > 0 ? "raises the risk" : "lowers the risk");
      });
    showList("reasons", items.length ? items : ["No single input moves this risk noticeably."]);
  }

  // -- the model card behind a token --------------------------------------------------------

  function openCard(event) {
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return; // the plain link works
    event.preventDefault();
    var tab = window.open("", "_blank");
    fetch(this.getAttribute("href"), { headers: headers(false) }).then(function (r) {
      return r.text().then(function (text) {
        var url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
        if (tab) tab.location = url;
      });
    });
  }

  // -- start --------------------------------------------------------------------------------

  addPatientFields(document.getElementById("clinical-fields"), FIELDS.patient);
  addPatientFields(document.getElementById("marker-fields"), FIELDS.marker);
  timingFields();
  document.getElementById("add-draw").addEventListener("click", function () {
    var set = addDraw();
    set.querySelector("input, select").focus();
  });
  form.addEventListener("submit", submit);
  document.getElementById("card-link").addEventListener("click", openCard);
  document.getElementById("token-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var value = document.getElementById("token").value.trim();
    if (!value) {
      var error = document.getElementById("token-error");
      error.textContent = "Enter the access token.";
      error.hidden = false;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    document.getElementById("token").removeAttribute("aria-invalid");
    document.getElementById("token-panel").hidden = true;
    var retries = pending;
    pending = [];
    retries.forEach(function (retry) {
      retry();
    });
  });

  var start = prefillFromUrl();
  start.problems.forEach(function (p) {
    showFieldError(p[0], p[1]);
  });
  if (start.problems.length) showSummary();
  loadModel();
  if (start.complete && !start.problems.length) submit();
})();
