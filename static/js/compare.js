// The comparison review page and a comparison's adjudication: keys answer the current question and move to the next;
// Enter submits (and the server opens the next item); "d" shows the words that differ
// between the outputs (each against output A). Plain DOM, no inline script (CSP).
(function () {
  "use strict";
  var root = document.getElementById("compare-root");
  if (!root) return;
  // A decided comparison shows no form (the adjudication page): a detached one stands in,
  // so the keys that answer do nothing and the differences still show.
  var form = document.getElementById("compare-form") || document.createElement("form");
  var mode = root.getAttribute("data-mode");
  var letters = root.getAttribute("data-letters") || "";
  var questions = Array.prototype.slice.call(form.querySelectorAll(".compare-question"));
  var current = 0;

  function focusQuestion(index) {
    current = Math.max(0, Math.min(index, questions.length - 1));
    questions.forEach(function (q, i) { q.classList.toggle("current", i === current); });
    var q = questions[current];
    if (q) q.scrollIntoView({ block: "nearest" });
  }

  function answered(q) {
    if (mode === "ranking") {
      var input = q.querySelector("input[type=text]");
      return input.value.length === letters.length;
    }
    return !!q.querySelector("input[type=radio]:checked");
  }

  function pick(value) {
    var q = questions[current];
    if (!q) return;
    var radio = q.querySelector('input[type=radio][value="' + value + '"]');
    if (!radio) return;
    radio.checked = true;
    if (current < questions.length - 1) focusQuestion(current + 1);
  }

  function rankNext(letter) {
    var q = questions[current];
    if (!q) return;
    var input = q.querySelector("input[type=text]");
    if (input.value.indexOf(letter) !== -1) return;
    input.value += letter;
    if (input.value.length === letters.length && current < questions.length - 1) {
      focusQuestion(current + 1);
    }
  }

  function typing(target) {
    return target && (target.tagName === "TEXTAREA" ||
      (target.tagName === "INPUT" && target.type === "text"));
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
        event.preventDefault();
        form.requestSubmit();
      }
      return;
    }
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    var key = event.key;
    if (key === "Enter") {
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (key === "d") { event.preventDefault(); toggleDiff(); return; }
    if (key === "e") {
      var explanation = document.getElementById("explanation");
      if (explanation) { event.preventDefault(); explanation.focus(); }
      return;
    }
    if (key === "ArrowDown" || key === "j") { event.preventDefault(); focusQuestion(current + 1); return; }
    if (key === "ArrowUp" || key === "k") { event.preventDefault(); focusQuestion(current - 1); return; }
    var letter = null;
    if (mode === "pairwise" && (key === "a" || key === "b")) letter = key;
    if (/^[1-9]$/.test(key) && Number(key) <= letters.length) letter = letters.charAt(Number(key) - 1);
    if (mode === "pairwise" && key === "=") { event.preventDefault(); pick("tie"); return; }
    if (mode === "pairwise" && key === "m") {
      var strength = questions[current] && questions[current].querySelector("input[type=checkbox]");
      if (strength) { event.preventDefault(); strength.checked = !strength.checked; }
      return;
    }
    if (mode === "ranking" && key === "Backspace") {
      var input = questions[current].querySelector("input[type=text]");
      event.preventDefault();
      input.value = input.value.slice(0, -1);
      return;
    }
    if (letter) {
      event.preventDefault();
      if (mode === "ranking") rankNext(letter); else pick(letter);
    }
  });

  form.addEventListener("submit", function (event) {
    var missing = questions.filter(function (q) { return !answered(q); });
    if (missing.length) {
      event.preventDefault();
      focusQuestion(questions.indexOf(missing[0]));
      return;
    }
    var button = document.getElementById("compare-submit");
    if (button.disabled) { event.preventDefault(); return; }
    button.disabled = true;  // a double press never answers the next item
  });

  // --- word diff, each output against output A --------------------------------------------
  var pres = Array.prototype.slice.call(document.querySelectorAll(".compare-output [data-text]"));
  var originals = pres.map(function (pre) { return pre.textContent; });
  var showing = false;

  function words(text) { return text.split(/(\s+)/).filter(function (w) { return w.length; }); }

  function diff(a, b) {
    // Longest common subsequence over words; small texts only (else no diff).
    if (a.length * b.length > 4000000) return null;
    var n = a.length, m = b.length, i, j;
    var table = [];
    for (i = 0; i <= n; i++) { table.push(new Uint32Array(m + 1)); }
    for (i = n - 1; i >= 0; i--) {
      for (j = m - 1; j >= 0; j--) {
        table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
      }
    }
    var out = [];
    i = 0; j = 0;
    while (i < n && j < m) {
      if (a[i] === b[j]) { out.push(["same", b[j]]); i++; j++; }
      else if (table[i + 1][j] >= table[i][j + 1]) { out.push(["del", a[i]]); i++; }
      else { out.push(["ins", b[j]]); j++; }
    }
    while (i < n) { out.push(["del", a[i++]]); }
    while (j < m) { out.push(["ins", b[j++]]); }
    return out;
  }

  function render(pre, parts) {
    pre.textContent = "";
    parts.forEach(function (part) {
      var node = part[0] === "same" ? document.createTextNode(part[1]) : document.createElement(part[0]);
      if (part[0] !== "same") node.textContent = part[1];
      pre.appendChild(node);
    });
  }

  function toggleDiff() {
    showing = !showing;
    var button = document.getElementById("diff-toggle");
    button.setAttribute("aria-pressed", showing ? "true" : "false");
    button.firstChild.textContent = showing ? "Hide differences " : "Show differences ";
    pres.forEach(function (pre, index) {
      if (!showing || index === 0) { pre.textContent = originals[index]; return; }
      var parts = diff(words(originals[0]), words(originals[index]));
      if (parts) render(pre, parts);
    });
  }

  document.getElementById("diff-toggle").addEventListener("click", toggleDiff);
  focusQuestion(0);
})();
