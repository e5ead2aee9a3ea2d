/* Focused review (and the history and adjudication pages, which share its markup):
 * keyboard shortcuts, comments on spans, the lease timer, and the next item fetched
 * ahead. The span tree beside the selected span is span_tree.js's (loaded before this
 * file; the trace page has it alone): this file starts it on each page shown and
 * passes it the key presses.
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
 * held page is shown at once. Anything else (refused answers, a lease taken by
 * another reviewer) comes back as a redirect to a page and is shown as such: every
 * POST answers a redirect, so the address bar only ever shows a page. Closing the
 * tab loses nothing: the lease fetched ahead expires like any other.
 *
 * Nothing typed is lost: every change is kept in localStorage at once, and sent to
 * the server as the item's draft after a pause (data-draft-url). Opening the item
 * again restores the server's draft (rendered in the form), or this browser's copy
 * when the server never got it (the session had ended, the network failed). The
 * copy is dropped once the submit is known to be applied.
 *
 * The lease is renewed while the reviewer is active (typing, keys, focus, coming
 * back to the tab): the badge and the banner read the same clock. A lease that ran
 * out is taken again if nobody else took the item; if someone did, the banner says
 * so and the form stays, to copy from.
 *
 * A second Ctrl+Enter right after a submit never reaches the next item's form: a
 * submit in flight blocks others, and a page just shown ignores Ctrl+Enter until the
 * reviewer has touched it or a moment has passed.
 */
(function () {
  "use strict";

  var spans = window.hitlSpanTree;  // span_tree.js
  var currentQuestion = 0;

  function root() { return document.getElementById("review-root"); }
  function questions() { return Array.prototype.slice.call(document.querySelectorAll("[data-question]")); }

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

  // --- judge suggestions ------------------------------------------------------------------
  // A judge's suggestion beside a question: `a` (or its button) takes it as the answer; one
  // shown "after" appears once the question has an answer. Hidden inputs tell the server
  // which suggestions were displayed and taken; it checks them against the queue's mode.
  function questionValue(q) {
    var checked = q.querySelector("input[type=radio]:checked");
    if (checked) return checked.value;
    var field = q.querySelector("input[type=number], textarea");
    return field ? field.value : "";
  }

  function suggestionChanged(q) {
    var box = q && q.querySelector("[data-suggestion]");
    if (!box) return;
    if (box.hidden && box.hasAttribute("data-after") && questionValue(q) !== "") {
      box.hidden = false;
      box.querySelector("[data-suggestion-seen]").disabled = false;
    }
    var accepted = box.querySelector("[data-suggestion-accepted]");
    if (questionValue(q) !== box.getAttribute("data-value")) accepted.disabled = true;
  }

  function acceptSuggestion(q) {
    var box = q && q.querySelector("[data-suggestion]");
    if (!box || box.hidden) return false;
    var value = box.getAttribute("data-value");
    var radio = Array.prototype.filter.call(q.querySelectorAll("input[type=radio]"), function (r) {
      return r.value === value;
    })[0];
    if (radio) {
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));
      radio.focus();
    } else {
      var field = q.querySelector("input[type=number]");
      if (!field) return false;
      field.value = value;
      field.dispatchEvent(new Event("input", { bubbles: true }));
    }
    box.querySelector("[data-suggestion-accepted]").disabled = false;
    return true;
  }

  function toggleRubric() {
    var q = questions()[currentQuestion];
    var details = q && q.querySelector("[data-rubric]");
    if (details) details.open = !details.open;
  }

  // Focuses a field; in text already written the caret goes to its end (and a long
  // textarea scrolls there), so `e` on an explanation continues it.
  function focusField(id) {
    var field = document.getElementById(id);
    if (!field) return false;
    field.focus();
    if (field.tagName === "TEXTAREA" || (field.tagName === "INPUT" && /^(text|search)$/.test(field.type))) {
      var end = field.value.length;
      try { field.setSelectionRange(end, end); } catch (err) { /* a type without a caret */ }
      if (field.tagName === "TEXTAREA") field.scrollTop = field.scrollHeight;
    }
    return true;
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

  function commentOnSpan() {
    return focusField("span-comment-" + spans.current());
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
      if (event.repeat || justShown()) return;  // the same press again
      var spanForm = active && active.closest && active.closest(".span-comment-form");
      if (spanForm) {
        if (spanForm.requestSubmit) spanForm.requestSubmit(); else spanForm.submit();
        return;
      }
      // In a turn's comment: that comment (its button posts the review form to the
      // turn-comment address, so the answers typed so far are kept as the draft).
      var turnComment = active && active.closest && active.closest(".turn-comment");
      var turnButton = turnComment && turnComment.querySelector("[data-turn-comment]");
      var reviewForm = document.getElementById("review-form");
      if (turnButton && reviewForm && reviewForm.requestSubmit) {
        reviewForm.requestSubmit(turnButton);
        return;
      }
      submitReview();
      return;
    }
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open) return;  // the dialog handles Esc itself
    // The span tree's keys: j, k, the arrows on a span, f, n, "/" (and Enter and Esc
    // in its search).
    if (spans.handleKey(event)) return;
    if (spans.isTyping(active)) {
      if (event.key === "Escape") {
        var inSpanComment = active.closest && active.closest(".span-comment-form");
        var inTurn = active.closest && active.closest(".turn");
        active.blur();
        if (inSpanComment) spans.select(spans.current(), { focus: true });
        else if (!inTurn) focusQuestion(currentQuestion);
        event.preventDefault();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    var handled = true;
    var onSpan = spans.focusedRow();
    if (/^[1-9]$/.test(key)) handled = pickLevel(key);
    else if (key === "e") handled = focusField("explanation");
    else if (key === "c") handled = onSpan ? commentOnSpan() : focusField("comment");
    else if (key === "p") handled = openPrevious();
    else if (key === "s") openSkip();
    else if (key === "r") toggleRubric();
    else if (key === "a") handled = acceptSuggestion(questions()[currentQuestion]);
    else if (key === "?") showShortcuts();
    else handled = false;
    if (handled) event.preventDefault();
  });

  document.addEventListener("focusin", function (event) {
    var q = event.target.closest && event.target.closest("[data-question]");
    if (q) markQuestion(questions().indexOf(q));
  });

  document.addEventListener("click", function (event) {
    if (!event.target.closest) return;
    var accept = event.target.closest("[data-accept-suggestion]");
    if (accept) {
      var question = accept.closest("[data-question]");
      markQuestion(questions().indexOf(question));
      acceptSuggestion(question);
    }
    if (event.target.closest("#shortcuts-open")) showShortcuts();
  });

  // --- lease timer and renewal -----------------------------------------------------------
  var taken = "";          // why the lease cannot be renewed (another reviewer took it)
  var signedOut = false;   // a call answered 401/403: the session (or its cookies) ended
  var activeAt = 0;        // the reviewer's last input, key, focus or return to the tab
  var renewedAt = Date.now();
  var renewing = false;

  function leaseSeconds() {
    var r = root();
    return Number((r && r.getAttribute("data-lease-seconds")) || 1800);
  }

  function setBanner(kind, nodes) {
    var banner = document.getElementById("lease-warning");
    if (!banner) return;
    if (banner.getAttribute("data-kind") === kind && kind !== "") return;
    banner.setAttribute("data-kind", kind);
    banner.innerHTML = "";
    if (!kind) { banner.hidden = true; return; }
    var item = document.createElement("li");
    item.className = kind === "warning" ? "" : "error";
    nodes.forEach(function (node) { item.append(node); });
    banner.append(item);
    banner.hidden = false;
  }

  function signInLink() {
    var link = document.createElement("a");
    var r = root();
    var back = (r && r.getAttribute("data-item-url")) || window.location.pathname;
    link.href = "/accounts/login/?next=" + encodeURIComponent(back);
    link.id = "sign-in-again";
    link.textContent = "Sign in again";
    return link;
  }

  // The badge and the banner, both from the same clock (and what the server said).
  function tick() {
    var lease = document.getElementById("lease");
    if (!lease) return;
    var left = Math.round((Date.parse(lease.getAttribute("data-expires-at")) - Date.now()) / 1000);
    var warnAt = Number(lease.getAttribute("data-warning-seconds") || 120);
    maybeRenew(left, warnAt);
    if (taken) {
      setBadge(lease, "Taken by another reviewer", "expired");
      setBanner("taken", ["Taken by another reviewer: copy your notes. " + taken]);
      return;
    }
    if (left <= 0) {
      setBadge(lease, "Lease expired", "expired");
      setBanner(signedOut ? "expired-signed-out" : "expired", signedOut
        ? ["Your time on this item ran out and you are signed out. Your answers are kept in this browser. ", signInLink()]
        : ["Your time on this item ran out. Your answers are kept: keep working and the item is yours again unless another reviewer has taken it; submitting still saves them if nobody has."]);
      return;
    }
    var minutes = Math.floor(left / 60), seconds = left % 60;
    setBadge(lease, "Lease: " + minutes + ":" + (seconds < 10 ? "0" : "") + seconds + " left", left <= warnAt ? "warning" : "");
    if (signedOut) {
      setBanner("signed-out", ["You are signed out: your answers are kept in this browser. ", signInLink()]);
    } else if (left <= warnAt) {
      setBanner("warning", ["Less than " + Math.ceil(warnAt / 60) + " minutes left on this item: it goes back to the queue unless you keep working on it (that renews it) or submit."]);
    } else {
      setBanner("", []);
    }
  }

  function setBadge(lease, text, state) {
    if (lease.textContent !== text) lease.textContent = text;
    lease.classList.toggle("warning", state === "warning");
    lease.classList.toggle("expired", state === "expired");
  }

  function maybeRenew(left, warnAt) {
    var r = root();
    var url = r && r.getAttribute("data-renew-url");
    if (!url || renewing || taken || signedOut || !window.fetch || activeAt <= renewedAt) return;
    var every = Math.max(10, Math.min(300, leaseSeconds() / 3)) * 1000;
    var since = Date.now() - renewedAt;
    var urgent = left <= 0 ? since >= 1000 : left <= warnAt && since >= 5000;
    if (since < every && !urgent) return;
    renewing = true;
    var forAssignment = r.getAttribute("data-assignment");
    fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" } })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          var now = root();
          if (!now || now.getAttribute("data-assignment") !== forAssignment) return;
          renewedAt = Date.now();
          if (response.ok && body.expires_at) {
            var lease = document.getElementById("lease");
            if (lease) lease.setAttribute("data-expires-at", body.expires_at);
            var lapsed = document.querySelector("[data-lapsed]");
            if (lapsed) lapsed.remove();
          } else if (response.status === 401 || response.status === 403) {
            signedOut = true;
          } else if (response.status === 409) {
            taken = body.message || "";
          }
          tick();
        });
      })
      .catch(function () {})
      .then(function () { renewing = false; });
  }

  function noteActivity() { activeAt = Date.now(); }

  // A span's detail answered 401/403 (span_tree.js): the session ended.
  document.addEventListener("spans:signed-out", function () { signedOut = true; tick(); });

  // --- the next item, fetched ahead -------------------------------------------------------
  var ahead = null;       // {assignment, url, doc} once the next item's page is held
  var aheadFor = null;    // the assignment whose page asked for it
  var submitting = false;
  var inFlight = "";      // the lease whose answer is on its way
  var queuedSubmit = null;  // {assignment, form} shown meanwhile, waiting for it

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

  var shownAt = 0;       // when a submit last showed a page
  var touched = false;   // the reviewer changed something on the page shown since

  // A Ctrl+Enter this soon after a submit showed the next item, before the reviewer
  // touched it, is the same press again (a double press, a key bounce): ignored.
  function justShown() { return !touched && Date.now() - shownAt < 1000; }

  function showDocument(page, url) {
    var doc = typeof page === "string" ? new DOMParser().parseFromString(page, "text/html") : page;
    document.title = doc.title;
    document.body.replaceWith(document.adoptNode(doc.body));
    if (url && url !== window.location.pathname + window.location.search) {
      window.history.pushState({}, "", url);
    }
    window.scrollTo(0, 0);
    shownAt = Date.now();
    touched = false;
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
    var conflict = form.closest && form.closest("#conflict");
    if (conflict) { markPending(conflict.getAttribute("data-assignment")); return; }
    if (!root() || !root().getAttribute("data-assignment")) return;  // the focused review page only
    if (form.id !== "review-form" && form.id !== "skip-form") return;
    var assignment = root().getAttribute("data-assignment");
    var turnButton = event.submitter && event.submitter.hasAttribute("data-turn-comment") ? event.submitter : null;
    if (turnButton) {
      // A comment on a turn: an ordinary post of the review form to its own address,
      // which keeps the form as the draft and comes back to this item. This browser's
      // copy is what the server now keeps, the comment sent (it is no draft any more).
      if (submitting) { event.preventDefault(); return; }
      clearTimeout(draftTimer);
      var kept = formFields(form);
      var field = form.elements.namedItem("turn_comment@" + turnButton.value);
      if (field && field.name in kept) kept[field.name] = "";
      writeLocalDraft(assignment, { fields: kept, savedAt: Date.now(), synced: true, url: window.location.pathname });
      return;
    }
    if (submitting) {
      // One submit at a time. The same item's form sent twice is dropped here. The next
      // item, shown while the previous answer is still on its way, is sent once that
      // answer is stored: a fast reviewer's Ctrl+Enter is never lost.
      event.preventDefault();
      event.stopPropagation();
      if (assignment !== inFlight) queuedSubmit = { assignment: assignment, form: form.id };
      return;
    }
    clearTimeout(draftTimer);
    if (!ahead || !window.fetch || !root().getAttribute("data-prefetch-url")) {
      // Nothing held: an ordinary form post, answered by a redirect to the next page.
      submitting = true;
      inFlight = assignment;
      markPending(assignment);
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    submitting = true;
    inFlight = assignment;
    var held = ahead;
    var skipped = form.id === "skip-form";
    var body = new FormData(form, event.submitter || undefined);
    // Shown at once when the answers are complete; the server's answer confirms it, or
    // (rarely: a lease taken meanwhile, a refused answer) replaces it with what it says.
    var early = looksComplete(form);
    ahead = null;
    // Sent before the held page is shown: the request names this page as its referrer
    // (the page a refused form offers to go back to).
    var sent = fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-Review-Buffered": held.assignment, "X-CSRFToken": csrfToken(), "Accept": "text/html" },
    });
    if (early) showDocument(held.doc, held.url);
    sent.then(function (response) {
      if (response.status === 204 && response.headers.get("X-Review-Next") === held.url) {
        dropLocalDraft(assignment);
        var previous = response.headers.get("X-Review-Previous");
        if (!early) showDocument(held.doc, held.url);
        var link = document.getElementById("previous-item");
        if (link && previous) { link.href = previous; link.hidden = false; }
        showStatus(skipped ? "Skipped. Here is the next item." : "Saved. Here is the next item.");
        return null;
      }
      // Anything else is the page the server redirected to (the next item, this item
      // with what it refused, the sign-in page when the session ended), or the page a
      // refused form gets (cookies gone): shown as it is, at its own address.
      return response.text().then(function (html) {
        if (response.redirected && response.url.indexOf("/accounts/") === -1) markPending(assignment);
        showDocument(html, response.redirected ? response.url : null);
      });
    }).catch(function () {
      window.location.reload();  // the network failed: show what the server has now
    }).then(function () {
      submitting = false;
      inFlight = "";
      var queued = queuedSubmit;
      queuedSubmit = null;
      // A submit pressed on the item shown meanwhile goes now, if that item is still shown.
      var again = queued && root() && root().getAttribute("data-assignment") === queued.assignment &&
        document.getElementById(queued.form);
      if (again && again.requestSubmit) again.requestSubmit();
      else prefetchNext();  // only now: the lease just submitted must not look like one ahead
    });
  }, true);

  window.addEventListener("popstate", function () { window.location.reload(); });
  // Back or Forward may show a page from the browser's memory, as it was: ask again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && (root() || aboutAssignment())) window.location.reload();
  });

  // --- drafts ---------------------------------------------------------------------------
  var DRAFT_PREFIX = "hitl-review-draft:";
  var PENDING_KEY = "hitl-review-pending";
  var DRAFT_DAYS = 14;
  var draftTimer = null;

  function storage(kind) {
    try { return kind === "session" ? window.sessionStorage : window.localStorage; } catch (e) { return null; }
  }

  function readLocalDraft(assignment) {
    var store = storage();
    if (!store || !assignment) return null;
    try { return JSON.parse(store.getItem(DRAFT_PREFIX + assignment) || "null"); } catch (e) { return null; }
  }

  function writeLocalDraft(assignment, draft) {
    var store = storage();
    if (!store) return;
    try { store.setItem(DRAFT_PREFIX + assignment, JSON.stringify(draft)); } catch (e) { /* full */ }
  }

  function dropLocalDraft(assignment) {
    var store = storage();
    if (store && assignment) store.removeItem(DRAFT_PREFIX + assignment);
  }

  // A form post left for the next page: that page says whether it was applied.
  function markPending(assignment) {
    var store = storage("session");
    if (store) store.setItem(PENDING_KEY, assignment);
  }

  function formFields(form) {
    var fields = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.name === "csrfmiddlewaretoken" || field.hasAttribute("data-no-draft")) return;
      if (field.type === "radio") {
        if (field.checked) fields[field.name] = field.value;
        else if (!(field.name in fields)) fields[field.name] = "";
      } else if (field.type === "checkbox") {
        fields[field.name] = fields[field.name] || [];
        if (field.checked) fields[field.name].push(field.value);
      } else if (field.tagName === "TEXTAREA" || field.tagName === "INPUT" || field.tagName === "SELECT") {
        fields[field.name] = field.value;
      }
    });
    return fields;
  }

  function applyFields(form, fields) {
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || !(field.name in fields) || field.name === "csrfmiddlewaretoken") return;
      var value = fields[field.name];
      if (field.type === "radio") field.checked = field.value === value;
      else if (field.type === "checkbox") field.checked = Array.isArray(value) && value.indexOf(field.value) !== -1;
      else if (typeof value === "string") field.value = value;
    });
  }

  function sameFields(a, b) { return JSON.stringify(a) === JSON.stringify(b); }

  function saveDraftNow() {
    var r = root();
    var form = document.getElementById("review-form");
    var url = r && r.getAttribute("data-draft-url");
    if (!url || !form || !window.fetch) return;
    var assignment = r.getAttribute("data-assignment");
    var fields = formFields(form);
    fetch(url, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
    }).then(function (response) {
      if (response.ok) {
        var local = readLocalDraft(assignment);
        // Synced: the server holds these answers (unless typed on since).
        if (local && sameFields(local.fields, fields)) { local.synced = true; writeLocalDraft(assignment, local); }
        if (signedOut) { signedOut = false; tick(); }
      } else if (response.status === 401 || response.status === 403) {
        signedOut = true;
        tick();
      }
    }).catch(function () {});
  }

  function draftChanged() {
    var r = root();
    var form = document.getElementById("review-form");
    touched = true;
    noteActivity();
    if (!r || !form || !r.getAttribute("data-draft-url")) return;
    var assignment = r.getAttribute("data-assignment");
    writeLocalDraft(assignment, { fields: formFields(form), savedAt: Date.now(), synced: false, url: window.location.pathname });
    clearTimeout(draftTimer);
    draftTimer = setTimeout(saveDraftNow, 800);
  }

  // A field of the review form: inside it, or tied to it by its form attribute (a
  // turn's rating, note and comment beside the conversation).
  function inReviewForm(target) {
    if (target.form && target.form.id === "review-form") return true;
    return !!(target.closest && target.closest("#review-form"));
  }

  document.addEventListener("input", function (event) {
    if (event.target.id === "span-search") { noteActivity(); return; }  // span_tree.js lays the tree out
    if (event.target.closest) suggestionChanged(event.target.closest("[data-question]"));
    if (inReviewForm(event.target)) draftChanged();
    else noteActivity();
  });
  document.addEventListener("change", function (event) {
    if (event.target.closest) suggestionChanged(event.target.closest("[data-question]"));
    if (inReviewForm(event.target)) draftChanged();
  });
  document.addEventListener("keydown", noteActivity, true);
  document.addEventListener("pointerdown", noteActivity, true);
  document.addEventListener("focusin", noteActivity, true);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { noteActivity(); tick(); }
  });

  // The assignment a page without the review form is about (an ended lease, two answers).
  function aboutAssignment() {
    var page = document.getElementById("lease-ended") || document.getElementById("conflict");
    return page ? { assignment: page.getAttribute("data-assignment"), state: page.getAttribute("data-state") } : null;
  }

  function draftAsText(fields) {
    var lines = [];
    Object.keys(fields).forEach(function (name) {
      var value = fields[name];
      value = Array.isArray(value) ? value.join(", ") : String(value || "").trim();
      if (value) lines.push(name.replace(/^q-\d+$/, "Answer").replace(/_/g, " ") + ": " + value);
    });
    return lines.join("\n\n");
  }

  // On every page of this script: settle the form post left pending, prune old copies,
  // and restore (or show, on an ended lease) what only this browser kept.
  function settleDrafts() {
    var store = storage();
    var session = storage("session");
    var r = root();
    var about = r ? null : aboutAssignment();
    if (r && r.getAttribute("data-assignment")) about = { assignment: r.getAttribute("data-assignment"), state: "leased" };
    var pending = session && session.getItem(PENDING_KEY);
    if (pending && (!about || about.assignment !== pending || about.state === "submitted")) {
      dropLocalDraft(pending);  // the post was applied: the page moved on
    }
    if (session && pending) session.removeItem(PENDING_KEY);
    if (about && about.state === "submitted") dropLocalDraft(about.assignment);
    if (store) {
      var cutoff = Date.now() - DRAFT_DAYS * 86400000;
      for (var i = store.length - 1; i >= 0; i--) {
        var key = store.key(i);
        if (key && key.indexOf(DRAFT_PREFIX) === 0) {
          var old = readLocalDraft(key.slice(DRAFT_PREFIX.length));
          if (!old || old.savedAt < cutoff) store.removeItem(key);
        }
      }
    }
    if (!about) return;
    var local = readLocalDraft(about.assignment);
    if (!local || local.synced) return;
    var notes = document.getElementById("draft-notes");
    if (!r && notes) {
      if (!notes.value.trim()) notes.value = draftAsText(local.fields);
      var block = document.getElementById("draft-notes-block");
      if (block) block.hidden = false;
      return;
    }
    var form = document.getElementById("review-form");
    if (!r || !form || sameFields(formFields(form), local.fields)) return;
    applyFields(form, local.fields);
    questions().forEach(suggestionChanged);  // a restored answer shows its suggestion ("after")
    showStatus("Your answers not yet submitted on this item are restored (kept in this browser).");
    clearTimeout(draftTimer);
    draftTimer = setTimeout(saveDraftNow, 100);  // the server gets them now
  }

  // --- start ------------------------------------------------------------------------------
  function init() {
    settleDrafts();
    spans.start();  // the span tree, its selected span (the page's initial one) shown
    if (!root()) return;  // an ended lease, two answers: no form
    taken = "";
    renewedAt = Date.now();
    var firstError = document.querySelector(".question .field-error");
    var errored = firstError ? questions().indexOf(firstError.closest("[data-question]")) : -1;
    var skip = document.getElementById("skip");
    var active = document.activeElement;
    var typing = active && active !== document.body && document.contains(active) &&
      active.closest && active.closest("#review-form") && !active.closest(".question");
    if (typing) { /* the reviewer is already in a field: leave the focus there */ }
    else if (skip && skip.open) focusField("skip-reason");
    else focusQuestion(errored >= 0 ? errored : 0);
    // The page's own focus is not the reviewer's activity: counted, it renewed a lease
    // that lapsed before they did anything, whenever the focus landed a millisecond later.
    renewedAt = Math.max(renewedAt, activeAt);
    tick();
    if (!submitting) prefetchNext();
    root().setAttribute("data-ready", "");  // the keys and the form are live
  }

  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", init);
})();
