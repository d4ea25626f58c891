// Keyboard shortcuts for reviewers: a key clicks the visible button that declares it with data-shortcut
// (c confirm, d dismiss, 1-9 label values, n claim next). Looked up at each key press, so buttons that htmx
// swaps in work at once. Keys typed into a field, or with a modifier, are left alone.
(function () {
  function typing(target) {
    return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].indexOf(target.tagName) !== -1;
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat || typing(event.target)) return;
    var key = event.key.toLowerCase();
    if (!/^[cdn1-9]$/.test(key)) return;
    var button = document.querySelector('[data-shortcut="' + key + '"]');
    if (!button || button.disabled || document.querySelector(".htmx-request")) return;
    event.preventDefault();
    button.click();
  });
})();
