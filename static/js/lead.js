// The lead's pages: a copy button for secrets shown once (API keys).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  const status = document.getElementById("copy-status");
  const text = source ? source.textContent.trim() : "";
  const done = (message) => { if (status) status.textContent = message; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(() => done("Copied."), () => selectText(source, done));
  } else {
    selectText(source, done);
  }
});

function selectText(element, done) {
  // Without the clipboard API (plain http), select the key so Ctrl/Cmd+C copies it.
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  try {
    done(document.execCommand("copy") ? "Copied." : "Selected: press Ctrl+C to copy.");
  } catch (error) {
    done("Selected: press Ctrl+C to copy.");
  }
}
