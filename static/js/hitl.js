// Behaviour every page shares, bound by data attributes (the pages carry no inline
// script or event handler attributes: the Content-Security-Policy allows scripts from
// our own static files only).
//   <select data-autosubmit>      submits its form when the choice changes
//   <button data-confirm="text">  asks before it submits (Cancel keeps the page); on OK
//                                 the form gets confirm=1, which a destructive action
//                                 needs (without it the server answers a page that asks)
document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-autosubmit]");
  if (field && field.form) field.form.submit();
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (!button) return;
  if (!window.confirm(button.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  const form = button.form;
  if (form && !form.querySelector("input[name=confirm]")) {
    const confirmed = document.createElement("input");
    confirmed.type = "hidden";
    confirmed.name = "confirm";
    confirmed.value = "1";
    form.appendChild(confirmed);
  }
});
