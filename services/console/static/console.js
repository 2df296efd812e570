// Progressive enhancement only: every page works without it. A form marked data-busy says so while it runs.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const busy = form.getAttribute("data-busy");
  const button = form.querySelector("button");
  if (busy && button) { button.disabled = true; button.textContent = busy; }
});
