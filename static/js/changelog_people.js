// The change log's person picker (admin/changelog.html): as an email is typed, the
// people of the reader's organizations whose email holds it fill the field's datalist
// (admin:changelog-people answers them as JSON). Without this script the email is typed
// in full.
(() => {
  const input = document.querySelector("input[data-people-url]");
  if (!input) return;
  const list = document.getElementById(input.getAttribute("list"));
  if (!list) return;
  let timer = null;
  let asked = "";
  const ask = async () => {
    const typed = input.value.trim();
    if (!typed || typed === asked) return;
    asked = typed;
    const url = `${input.dataset.peopleUrl}?${new URLSearchParams({ q: typed })}`;
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok || input.value.trim() !== typed) return;
    const { people } = await response.json();
    list.replaceChildren(
      ...people.map((email) => {
        const option = document.createElement("option");
        option.value = email;
        return option;
      }),
    );
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(ask, 200);
  });
})();
