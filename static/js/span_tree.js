/* The span tree beside the selected span (templates/spans/_span_tree.html): the review
 * pages (with review.js, loaded after this file) and the trace page share it.
 *
 * The tree is a flat list of rows (data-depth); a row with children folds (its toggle,
 * or ArrowLeft / ArrowRight on the row). j / k (ArrowDown / ArrowUp on a focused row)
 * move over the rows shown; f focuses the selected row. The selected span's detail is
 * in the pane beside the tree: in the page for a short trace, loaded from the pane's
 * data-detail-url (?span=<id>) when selected on a long one (then the next row's is
 * fetched ahead). "/" finds spans by name (Enter: the next match, Esc: back to the
 * tree), "n" goes to the next error span. Without the script each row is a link to
 * the page with that span.
 *
 * A page with keys of its own (review.js) passes each key press to handleKey. On a
 * page without (the trace page: data-span-keys on the tree's card) this file listens
 * itself, and "?" opens the page's dialog of shortcuts (#shortcuts). Keys never fire
 * while typing in a field.
 *
 * Plain JavaScript, no build step; everything is read from the DOM afresh, so a page
 * whose body is replaced (review.js shows the next item so) calls start() again.
 */
window.hitlSpanTree = (function () {
  "use strict";

  var currentSpan = 0;

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

  function rowDepth(row) { return Number(row.getAttribute("data-depth") || 0); }
  function rowShown(row) { return !row.parentNode.hidden; }
  function isFolded(row) { return row.getAttribute("aria-expanded") === "false"; }

  // Shows the rows that no folded ancestor hides, or, while a search is typed, the
  // matching rows and their ancestors.
  function layoutTree() {
    var rows = spanRows();
    var search = document.getElementById("span-search");
    var query = search ? search.value.trim().toLowerCase() : "";
    var count = document.getElementById("span-search-count");
    if (query) {
      var keep = {}, matches = 0;
      rows.forEach(function (row, i) {
        var name = row.querySelector(".span-name");
        var hit = (name ? name.textContent : "").toLowerCase().indexOf(query) !== -1;
        row.classList.toggle("match", hit);
        if (!hit) return;
        matches += 1;
        keep[i] = true;
        var depth = rowDepth(row);
        for (var j = i - 1; j >= 0 && depth > 0; j--) {
          if (rowDepth(rows[j]) < depth) { keep[j] = true; depth = rowDepth(rows[j]); }
        }
      });
      rows.forEach(function (row, i) { row.parentNode.hidden = !keep[i]; });
      if (count) count.textContent = matches + " of " + rows.length + " spans match";
      return;
    }
    var cut = Infinity;
    rows.forEach(function (row) {
      row.classList.remove("match");
      var depth = rowDepth(row);
      if (depth > cut) { row.parentNode.hidden = true; return; }
      cut = Infinity;
      row.parentNode.hidden = false;
      if (isFolded(row)) cut = depth;
    });
    if (count) count.textContent = "";
  }

  function setFolded(row, folded) {
    if (!row || !row.hasAttribute("aria-expanded")) return false;
    row.setAttribute("aria-expanded", folded ? "false" : "true");
    var toggle = row.parentNode.querySelector(".span-toggle");
    if (toggle) {
      toggle.textContent = folded ? "▸" : "▾";
      var name = toggle.getAttribute("aria-label").replace(/^(Fold|Unfold) /, "");
      toggle.setAttribute("aria-label", (folded ? "Unfold " : "Fold ") + name);
    }
    return true;
  }

  // Unfolds the ancestors of a row (and ends a search that hides it): it can be shown.
  function reveal(index) {
    var rows = spanRows();
    var row = rows[index];
    if (!row || rowShown(row)) return;
    var search = document.getElementById("span-search");
    if (search && search.value) search.value = "";
    var depth = rowDepth(row);
    for (var j = index - 1; j >= 0 && depth > 0; j--) {
      if (rowDepth(rows[j]) < depth) { setFolded(rows[j], false); depth = rowDepth(rows[j]); }
    }
    layoutTree();
  }

  function foldSelected(folded) {
    var rows = spanRows();
    var row = rows[currentSpan];
    if (!row) return false;
    if (folded && !row.hasAttribute("aria-expanded") || folded && isFolded(row)) {
      // Already folded, or a leaf: to its parent, as in any tree.
      var depth = rowDepth(row);
      for (var j = currentSpan - 1; j >= 0; j--) {
        if (rowDepth(rows[j]) < depth) { selectSpan(j, { focus: true, user: true }); return true; }
      }
      return true;
    }
    setFolded(row, folded);
    layoutTree();
    return true;
  }

  function foldAll(folded) {
    spanRows().forEach(function (row) { setFolded(row, folded); });
    layoutTree();
    var rows = spanRows();
    if (rows[currentSpan] && !rowShown(rows[currentSpan])) {
      for (var j = currentSpan; j >= 0; j--) if (rowShown(rows[j])) { selectSpan(j); break; }
    }
  }

  // The next (step 1) or previous (step -1) row shown, from the selected one.
  function stepSpan(step) {
    var rows = spanRows();
    for (var i = currentSpan + step; i >= 0 && i < rows.length; i += step) {
      if (rowShown(rows[i])) return i;
    }
    return currentSpan;
  }

  function nextMatching(test, from) {
    var rows = spanRows();
    for (var k = 1; k <= rows.length; k++) {
      var i = (from + k) % rows.length;
      if (test(rows[i])) return i;
    }
    return -1;
  }

  function nextError() {
    var i = nextMatching(function (row) { return row.hasAttribute("data-error"); }, currentSpan);
    if (i === -1) return false;
    reveal(i);
    selectSpan(i, { focus: true, user: true });
    return true;
  }

  function nextSearchMatch() {
    var i = nextMatching(function (row) { return rowShown(row) && row.classList.contains("match"); }, currentSpan);
    if (i !== -1) selectSpan(i, { user: true });
  }

  // "/": the search, its caret after what is typed there already.
  function focusSearch() {
    var search = document.getElementById("span-search");
    if (!search) return false;
    search.focus();
    var end = search.value.length;
    try { search.setSelectionRange(end, end); } catch (err) { /* a type without a caret */ }
    return true;
  }

  function pane() { return document.getElementById("span-pane"); }

  // The selected span's detail: in the page already, or asked for (once per span).
  var spanTimer = null;
  function showPanel(index, row) {
    var box = pane();
    var loading = document.getElementById("span-loading");
    var panel = document.getElementById("span-panel-" + index);
    Array.prototype.forEach.call(document.querySelectorAll(".span-panel"), function (p) {
      p.hidden = p !== panel;
    });
    if (panel || !box || !box.getAttribute("data-detail-url")) {
      if (loading) loading.hidden = true;
      if (panel && box) box.scrollTop = 0;
      return;
    }
    if (loading) { loading.textContent = "Loading the span…"; loading.hidden = false; }
    clearTimeout(spanTimer);
    spanTimer = setTimeout(function () { loadPanel(index, row); }, 30);
  }

  function loadPanel(index, row) {
    var box = pane();
    if (!box || !row || !window.fetch) return;
    box.requested = box.requested || {};
    if (box.requested[index] || document.getElementById("span-panel-" + index)) return;
    box.requested[index] = true;
    var url = box.getAttribute("data-detail-url") + "?span=" + encodeURIComponent(row.getAttribute("data-span"));
    var turn = box.getAttribute("data-turn");
    if (turn) url += "&turn=" + encodeURIComponent(turn);
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          // The session ended: a page that shows it (review.js's banner) listens.
          document.dispatchEvent(new CustomEvent("spans:signed-out"));
        }
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) {
        if (box !== pane()) return;  // another page is shown now
        var holder = document.createElement("template");
        holder.innerHTML = html;
        var section = holder.content.querySelector(".span-panel");
        if (!section || document.getElementById(section.id)) return;
        section.hidden = index !== currentSpan;
        box.append(section);
        if (window.htmx) window.htmx.process(section);
        if (index === currentSpan) {
          var loading = document.getElementById("span-loading");
          if (loading) loading.hidden = true;
          box.scrollTop = 0;
          // The next row's detail, fetched ahead for j.
          var next = stepSpan(1);
          if (next !== index) loadPanel(next, spanRows()[next]);
        }
      })
      .catch(function () {
        delete box.requested[index];
        var loading = document.getElementById("span-loading");
        if (box === pane() && index === currentSpan && loading) {
          loading.textContent = "This span could not be loaded: select it again.";
        }
      });
  }

  // Keeps the tree and the pane in the viewport once the reader moves between spans.
  function bringTreeIntoView() {
    var split = document.getElementById("span-split");
    if (!split) return;
    var box = split.getBoundingClientRect();
    if (box.top < 0 && box.bottom > window.innerHeight * 0.6) return;  // scrolled inside it
    if (box.top >= 0 && box.top < window.innerHeight * 0.35) return;
    var card = split.closest(".spans-card") || split;
    card.scrollIntoView({ block: "start" });
  }

  function selectSpan(index, options) {
    var rows = spanRows();
    if (!rows.length) return;
    index = Math.max(0, Math.min(rows.length - 1, index));
    currentSpan = index;
    rows.forEach(function (row, i) {
      var selected = i === index;
      row.setAttribute("aria-selected", selected ? "true" : "false");
      row.tabIndex = selected ? 0 : -1;
    });
    if (!rowShown(rows[index])) reveal(index);
    showPanel(index, rows[index]);
    if (options && options.user) bringTreeIntoView();
    rows[index].scrollIntoView({ block: "nearest" });
    if (options && options.focus) rows[index].focus();
  }

  function focusedSpanRow() {
    var active = document.activeElement;
    return active && active.classList && active.classList.contains("span-row") ? active : null;
  }

  // The tree of the page shown: its tools shown, laid out, the selected row (the
  // server's aria-selected, else the first) selected.
  function start() {
    var rows = spanRows();
    if (!rows.length) return;
    var tools = document.getElementById("span-tools");
    if (tools) tools.hidden = false;
    Array.prototype.forEach.call(document.querySelectorAll(".span-toggle"), function (t) { t.hidden = false; });
    layoutTree();
    var index = rows.findIndex(function (row) { return row.getAttribute("aria-selected") === "true"; });
    selectSpan(Math.max(0, index));
  }

  // A key press: true when it was one of the tree's (then it is done, its default
  // prevented). Left alone: keys typed in a field (the search's Enter and Esc aside)
  // and keys with a modifier.
  function handleKey(event) {
    var active = document.activeElement;
    var key = event.key;
    var plain = !event.ctrlKey && !event.metaKey && !event.altKey;
    if (active && active.id === "span-search") {
      if (plain && key === "Enter") {
        event.preventDefault();
        nextSearchMatch();
        return true;
      }
      if (key === "Escape") {
        event.preventDefault();
        active.blur();
        selectSpan(currentSpan, { focus: true, user: true });
        return true;
      }
      return false;
    }
    if (!plain || isTyping(active) || !spanRows().length) return false;
    var handled = true;
    var onSpan = focusedSpanRow();
    if (key === "j" || (onSpan && key === "ArrowDown")) selectSpan(stepSpan(1), { focus: !!onSpan, user: true });
    else if (key === "k" || (onSpan && key === "ArrowUp")) selectSpan(stepSpan(-1), { focus: !!onSpan, user: true });
    else if (onSpan && key === "ArrowLeft") handled = foldSelected(true);
    else if (onSpan && key === "ArrowRight") handled = foldSelected(false);
    else if (key === "f") selectSpan(currentSpan, { focus: true, user: true });
    else if (key === "n") handled = nextError();
    else if (key === "/") handled = focusSearch();
    else handled = false;
    if (handled) event.preventDefault();
    return handled;
  }

  // --- a page without keys of its own (data-span-keys) --------------------------------
  function ownsKeys() { return !!document.querySelector("[data-span-keys]"); }

  function showShortcuts() {
    var dialog = document.getElementById("shortcuts");
    if (dialog && !dialog.open) dialog.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (!ownsKeys() || event.defaultPrevented || event.isComposing) return;
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open) return;  // the dialog handles Esc itself
    if (handleKey(event)) return;
    if (event.key === "?" && !event.ctrlKey && !event.metaKey && !event.altKey && !isTyping(document.activeElement)) {
      event.preventDefault();
      showShortcuts();
    }
  });

  // --- every page of the tree -----------------------------------------------------------
  document.addEventListener("input", function (event) {
    if (event.target.id === "span-search") layoutTree();
  });

  document.addEventListener("click", function (event) {
    if (!event.target.closest) return;
    var row = event.target.closest(".span-row");
    if (row) {
      event.preventDefault();  // the link is for pages without the script
      selectSpan(Number(row.getAttribute("data-index")), { user: true });
    }
    var toggle = event.target.closest(".span-toggle");
    if (toggle) {
      var target = spanRows()[Number(toggle.getAttribute("data-index"))];
      setFolded(target, !isFolded(target));
      layoutTree();
    }
    if (event.target.closest("#next-error")) nextError();
    if (event.target.closest("#collapse-all")) foldAll(true);
    if (event.target.closest("#expand-all")) foldAll(false);
    if (ownsKeys() && event.target.closest("#shortcuts-open")) showShortcuts();
  });

  // A comment on a span was added (htmx swapped its list): back to the span.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && /^span-comments-/.test(target.id || "")) selectSpan(currentSpan, { focus: true });
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (ownsKeys()) start();  // review.js starts the tree on its pages
  });

  return {
    start: start,
    select: selectSpan,
    current: function () { return currentSpan; },
    focusedRow: focusedSpanRow,
    isTyping: isTyping,
    handleKey: handleKey,
  };
})();
