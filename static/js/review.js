/* Focused review: keyboard shortcuts, span selection and the lease timer.
 *
 * Plain JavaScript, no build step. The page is server-rendered; after a boosted
 * (htmx) submit the body is replaced, so everything here reads the DOM afresh on
 * each key press and re-initialises on "htmx:load". Shortcuts never fire while the
 * reviewer types in a field (Esc leaves the field); Ctrl/Cmd+Enter submits anywhere.
 */
(function () {
  "use strict";

  var currentQuestion = 0;
  var currentSpan = 0;

  function root() { return document.getElementById("review-root"); }
  function questions() { return Array.prototype.slice.call(document.querySelectorAll("[data-question]")); }
  function spanRows() { return Array.prototype.slice.call(document.querySelectorAll(".span-row")); }

  function isTyping(element) {
    if (!element) return false;
    if (element.isContentEditable) return true;
    var tag = element.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    if (tag !== "INPUT") return false;
    var type = (element.getAttribute("type") || "text").toLowerCase();
    return ["radio", "checkbox", "button", "submit", "reset", "range", "color", "file"].indexOf(type) === -1;
  }

  // --- spans ------------------------------------------------------------------------------
  function selectSpan(index, options) {
    var rows = spanRows();
    if (!rows.length) return;
    index = Math.max(0, Math.min(rows.length - 1, index));
    currentSpan = index;
    rows.forEach(function (row, i) {
      var selected = i === index;
      row.setAttribute("aria-selected", selected ? "true" : "false");
      row.tabIndex = selected ? 0 : -1;
      var panel = document.getElementById(row.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    });
    rows[index].scrollIntoView({ block: "nearest" });
    if (options && options.focus) rows[index].focus();
  }

  // --- questions --------------------------------------------------------------------------
  function markQuestion(index) {
    var all = questions();
    if (!all.length) return;
    currentQuestion = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (q, i) { q.classList.toggle("focused", i === currentQuestion); });
  }

  function focusQuestion(index) {
    var all = questions();
    if (!all.length) return;
    markQuestion(index);
    var q = all[currentQuestion];
    var target = q.querySelector("input:checked") || q.querySelector("input, textarea, select");
    if (target) target.focus({ preventScroll: false });
  }

  function pickLevel(key) {
    var q = questions()[currentQuestion];
    if (!q) return false;
    var radio = q.querySelector('input[type=radio][data-key="' + key + '"]');
    if (!radio) return false;
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
    radio.focus();
    return true;
  }

  function toggleRubric() {
    var q = questions()[currentQuestion];
    var details = q && q.querySelector("[data-rubric]");
    if (details) details.open = !details.open;
  }

  function focusField(id) {
    var field = document.getElementById(id);
    if (field) { field.focus(); return true; }
    return false;
  }

  function openSkip() {
    var details = document.getElementById("skip");
    if (!details) return;
    details.open = true;
    focusField("skip-reason");
  }

  function submitReview() {
    var form = document.getElementById("review-form");
    if (!form) return;
    var button = document.getElementById("submit-button");
    if (form.requestSubmit) form.requestSubmit(button || undefined); else form.submit();
  }

  function showShortcuts() {
    var dialog = document.getElementById("shortcuts");
    if (dialog && !dialog.open) dialog.showModal();
  }

  // --- keyboard ---------------------------------------------------------------------------
  document.addEventListener("keydown", function (event) {
    if (!root() || event.defaultPrevented || event.isComposing) return;
    var active = document.activeElement;
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      if (active && active.closest && active.closest("#skip-form")) return;  // Enter skips there
      event.preventDefault();
      submitReview();
      return;
    }
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open) return;  // the dialog handles Esc itself
    if (isTyping(active)) {
      if (event.key === "Escape") {
        active.blur();
        focusQuestion(currentQuestion);
        event.preventDefault();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    var handled = true;
    if (key === "j") selectSpan(currentSpan + 1);
    else if (key === "k") selectSpan(currentSpan - 1);
    else if (/^[1-9]$/.test(key)) handled = pickLevel(key);
    else if (key === "e") handled = focusField("explanation");
    else if (key === "c") handled = focusField("comment");
    else if (key === "s") openSkip();
    else if (key === "r") toggleRubric();
    else if (key === "?") showShortcuts();
    else handled = false;
    if (handled) event.preventDefault();
  });

  document.addEventListener("focusin", function (event) {
    var q = event.target.closest && event.target.closest("[data-question]");
    if (q) markQuestion(questions().indexOf(q));
  });

  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest(".span-row");
    if (row) selectSpan(Number(row.getAttribute("data-index")));
    if (event.target.closest && event.target.closest("#shortcuts-open")) showShortcuts();
  });

  // --- lease timer ------------------------------------------------------------------------
  var warned = false;
  function tick() {
    var lease = document.getElementById("lease");
    if (!lease) return;
    var left = Math.round((Date.parse(lease.getAttribute("data-expires-at")) - Date.now()) / 1000);
    var warnAt = Number(lease.getAttribute("data-warning-seconds") || 120);
    var label = document.getElementById("lease-left");
    var banner = document.getElementById("lease-warning");
    if (left <= 0) {
      lease.classList.remove("warning");
      lease.classList.add("expired");
      lease.textContent = "Lease expired";
      if (banner && banner.hidden) {
        banner.hidden = false;
        banner.innerHTML = "";
        var item = document.createElement("li");
        item.className = "error";
        item.append("Your time on this item ran out and it went back to the queue. ");
        var link = document.createElement("a");
        link.href = window.location.pathname;
        link.textContent = "Continue";
        item.append(link);
        banner.append(item);
      }
      return;
    }
    var minutes = Math.floor(left / 60), seconds = left % 60;
    if (label) label.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
    if (left <= warnAt) {
      lease.classList.add("warning");
      if (!warned && banner) {
        warned = true;
        banner.hidden = false;
        banner.innerHTML = "";
        var warning = document.createElement("li");
        warning.textContent = "Less than " + Math.ceil(warnAt / 60) + " minutes left on this item: submit, or it goes back to the queue.";
        banner.append(warning);
      }
    }
  }

  // --- start ------------------------------------------------------------------------------
  function init() {
    if (!root()) return;
    warned = false;
    var initial = root().getAttribute("data-initial-span");
    var rows = spanRows();
    var index = 0;
    rows.forEach(function (row, i) { if (row.getAttribute("data-span") === initial) index = i; });
    selectSpan(index);
    var firstError = document.querySelector(".question .field-error");
    var errored = firstError ? questions().indexOf(firstError.closest("[data-question]")) : -1;
    var skip = document.getElementById("skip");
    if (skip && skip.open) focusField("skip-reason");
    else focusQuestion(errored >= 0 ? errored : 0);
    tick();
  }

  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:load", function (event) {
    if (event.target === document.body || (event.target.querySelector && event.target.querySelector("#review-root"))) init();
  });
})();
