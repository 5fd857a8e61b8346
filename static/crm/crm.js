// Grid selection: the row checkboxes feed the mass-action form.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!box.matches('input[type="checkbox"]')) return;
  if (box.dataset.selectAll) {
    document.querySelectorAll('input[name="pk"][form="mass-form"]').forEach((b) => { b.checked = box.checked; });
  }
  const picked = document.querySelectorAll('input[name="pk"][form="mass-form"]:checked').length;
  document.querySelectorAll("[data-selected-count]").forEach((el) => { el.textContent = `${picked} selected`; });
  document.querySelectorAll("[data-mass-action]").forEach((b) => { b.disabled = picked === 0; });
});
// Long form posts (import validation and import) show a progress bar and cannot be sent twice.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("[data-progress]")) return;
  form.querySelectorAll(".progress").forEach((p) => p.classList.remove("d-none"));
  form.querySelectorAll('button[type="submit"]').forEach((b) => { b.disabled = true; });
  if (event.submitter && event.submitter.name) {
    const keep = document.createElement("input");
    keep.type = "hidden"; keep.name = event.submitter.name; keep.value = event.submitter.value;
    form.appendChild(keep);
  }
});
// A record page opened at #<tab> (e.g. back from logging an activity) shows that tab.
document.addEventListener("DOMContentLoaded", () => {
  const id = window.location.hash.slice(1);
  const button = id && document.querySelector(`[data-bs-toggle="tab"][data-bs-target="#tab-${CSS.escape(id)}"]`);
  if (button && window.bootstrap) window.bootstrap.Tab.getOrCreateInstance(button).show();
});
// A modal form saved (HX-Trigger crm-reload): go to the given page, reloading it when only its #fragment differs.
document.body.addEventListener("crm-reload", (event) => {
  const target = new URL(event.detail.url, window.location.href);
  const here = window.location;
  if (target.pathname === here.pathname && target.search === here.search) {
    window.history.replaceState(null, "", target.href);
    window.location.reload();
  } else {
    window.location.assign(target.href);
  }
});
// Controls that act on change or ask before acting, declared in markup (the
// Content-Security-Policy allows no inline on* handlers): data-autosubmit submits the
// control's form, data-confirm asks before the button or link does its job.
document.addEventListener("change", (event) => {
  const control = event.target.closest("[data-autosubmit]");
  if (control && control.form) control.form.submit();
});
document.addEventListener("click", (event) => {
  const control = event.target.closest("[data-confirm]");
  if (control && !window.confirm(control.dataset.confirm)) event.preventDefault();
});
