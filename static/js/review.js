/* Focused review (and the history and adjudication pages, which share its markup):
 * keyboard shortcuts, span selection, comments on spans, the lease timer, and the
 * next item fetched ahead.
 *
 * Plain JavaScript, no build step. The page is server-rendered; after a boosted
 * (htmx) submit the body is replaced, so everything here reads the DOM afresh on
 * each key press and re-initialises on "htmx:load". Shortcuts never fire while the
 * reviewer types in a field (Esc leaves the field); Ctrl/Cmd+Enter submits anywhere.
 *
 * Next item ahead: on a review page the script asks the server to claim the next
 * item now (POST data-prefetch-url, an ordinary lease) and fetches that item's page
 * into memory. Submit and skip then post with the X-Review-Buffered header; the
 * server answers 204 naming the next item when it is still the one held, and the
 * held page is shown at once. Anything else (validation errors, a lease that ran
 * out meanwhile) comes back as a page and is shown as such. Closing the tab loses
 * nothing: the lease fetched ahead expires like any other.
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

  function focusedSpanRow() {
    var active = document.activeElement;
    return active && active.classList && active.classList.contains("span-row") ? active : null;
  }

  function commentOnSpan() {
    return focusField("span-comment-" + currentSpan);
  }

  function openPrevious() {
    var link = document.getElementById("previous-item");
    if (!link || link.hidden) return false;
    window.location.assign(link.href);
    return true;
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
      var spanForm = active && active.closest && active.closest(".span-comment-form");
      if (spanForm) {
        if (spanForm.requestSubmit) spanForm.requestSubmit(); else spanForm.submit();
        return;
      }
      submitReview();
      return;
    }
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open) return;  // the dialog handles Esc itself
    if (isTyping(active)) {
      if (event.key === "Escape") {
        var inSpanComment = active.closest && active.closest(".span-comment-form");
        active.blur();
        if (inSpanComment) selectSpan(currentSpan, { focus: true });
        else focusQuestion(currentQuestion);
        event.preventDefault();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    var handled = true;
    var onSpan = focusedSpanRow();
    if (key === "j") selectSpan(currentSpan + 1, { focus: !!onSpan });
    else if (key === "k") selectSpan(currentSpan - 1, { focus: !!onSpan });
    else if (key === "f") selectSpan(currentSpan, { focus: true });
    else if (/^[1-9]$/.test(key)) handled = pickLevel(key);
    else if (key === "e") handled = focusField("explanation");
    else if (key === "c") handled = onSpan ? commentOnSpan() : focusField("comment");
    else if (key === "p") handled = openPrevious();
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

  // --- the next item, fetched ahead -------------------------------------------------------
  var ahead = null;       // {assignment, url, doc} once the next item's page is held
  var aheadFor = null;    // the assignment whose page asked for it
  var submitting = false;

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function prefetchNext() {
    var r = root();
    var url = r && r.getAttribute("data-prefetch-url");
    var current = r && r.getAttribute("data-assignment");
    if (!url || !window.fetch || aheadFor === current) return;
    aheadFor = current;
    ahead = null;
    r.removeAttribute("data-next-ready");
    fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() } })
      .then(function (response) { return response.ok ? response.json() : { url: null }; })
      .then(function (next) {
        if (!next.url) return null;
        var pageUrl = next.url + (next.url.indexOf("?") === -1 ? "?" : "&") + "buffered=1";
        return fetch(pageUrl, { credentials: "same-origin" }).then(function (response) {
          if (!response.ok) return null;
          return response.text().then(function (html) {
            if (aheadFor !== current) return null;  // the page moved on meanwhile
            // Parsed now, while the reviewer reads, so showing it costs only the swap.
            var doc = new DOMParser().parseFromString(html, "text/html");
            ahead = { assignment: String(next.assignment), url: next.url, doc: doc };
            var now = root();
            if (now) now.setAttribute("data-next-ready", ahead.assignment);
            return null;
          });
        });
      })
      .catch(function () { ahead = null; });
  }

  function showDocument(page, url) {
    var doc = typeof page === "string" ? new DOMParser().parseFromString(page, "text/html") : page;
    document.title = doc.title;
    document.body.replaceWith(document.adoptNode(doc.body));
    if (url && url !== window.location.pathname + window.location.search) {
      window.history.pushState({}, "", url);
    }
    window.scrollTo(0, 0);
    if (window.htmx) window.htmx.process(document.body);
    init();
  }

  function showStatus(text) {
    var status = document.getElementById("review-status");
    if (!status) return;
    status.innerHTML = "";
    var item = document.createElement("li");
    item.className = "success";
    item.textContent = text;
    status.append(item);
    status.hidden = false;
  }

  // Whether the server will surely accept the form: every required question answered
  // (skip: a reason given). Only then is the held page shown before the answer comes.
  function looksComplete(form) {
    if (form.id === "skip-form") {
      var reason = form.querySelector("[name=reason]");
      return !!(reason && reason.value.trim());
    }
    return Array.prototype.every.call(form.querySelectorAll("[data-required]"), function (q) {
      if (q.querySelector("input[type=radio]")) return !!q.querySelector("input[type=radio]:checked");
      var field = q.querySelector("input, textarea");
      return !field || field.value.trim() !== "";
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!root() || !root().getAttribute("data-prefetch-url")) return;
    if (form.id !== "review-form" && form.id !== "skip-form") return;
    if (!ahead || !window.fetch) return;  // nothing held: the boosted form goes as usual
    event.preventDefault();
    event.stopPropagation();
    if (submitting) return;
    submitting = true;
    var held = ahead;
    var skipped = form.id === "skip-form";
    var body = new FormData(form, event.submitter || undefined);
    // Shown at once when the answers are complete; the server's answer confirms it, or
    // (rarely: a lease that ran out, a refused answer) replaces it with what it says.
    var early = looksComplete(form);
    ahead = null;
    if (early) showDocument(held.doc, held.url);
    fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-Review-Buffered": held.assignment, "X-CSRFToken": csrfToken() },
    }).then(function (response) {
      if (response.status === 204 && response.headers.get("X-Review-Next") === held.url) {
        var previous = response.headers.get("X-Review-Previous");
        if (!early) showDocument(held.doc, held.url);
        var link = document.getElementById("previous-item");
        if (link && previous) { link.href = previous; link.hidden = false; }
        showStatus(skipped ? "Skipped. Here is the next item." : "Saved. Here is the next item.");
        return null;
      }
      return response.text().then(function (html) {
        showDocument(html, response.redirected ? response.url : form.action.replace(/[a-z]+\/$/, ""));
      });
    }).catch(function () {
      window.location.reload();  // the network failed: show what the server has now
    }).then(function () {
      submitting = false;
      prefetchNext();  // only now: the lease just submitted must not look like one ahead
    });
  }, true);

  window.addEventListener("popstate", function () { window.location.reload(); });

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
    if (!submitting) prefetchNext();
  }

  // A comment on a span was added (htmx swapped its list): back to the span.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && /^span-comments-/.test(target.id || "")) selectSpan(currentSpan, { focus: true });
  });

  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:load", function (event) {
    if (event.target === document.body || (event.target.querySelector && event.target.querySelector("#review-root"))) init();
  });
})();
