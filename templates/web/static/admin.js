/* The admin console's own script (served by mailflow, CSP script-src 'self').
 *
 * - The template editor's live preview: after a pause in typing, the form is posted to the
 *   preview endpoint (JSON: the subject and text as sent, or the problems at their part and
 *   line), then submitted into the sandboxed frame that shows the HTML as sent.
 *   On load it previews too when the text areas hold other text than the version the page
 *   rendered (the browser restores typed text on reload and back) or nothing is rendered.
 * - "Line N" buttons next to a problem select that line in its text area.
 * - Forms with data-confirm ask before an action that cannot be undone.
 * Without this script every page still works: the editor saves drafts and previews the HTML
 * part in its frame with the "Preview the HTML" button.
 */
(function () {
  "use strict";

  var LABELS = { subject: "Subject", text: "Text part", html: "HTML part" };

  function goToLine(part, line) {
    var area = document.getElementById("part-" + part);
    if (!area) return;
    var lines = area.value.split("\n");
    var start = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    var end = start + (lines[line - 1] || "").length;
    area.focus();
    area.setSelectionRange(start, end);
    var height = parseFloat(window.getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max(0, (line - 3) * height);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.goto");
    if (button) goToLine(button.dataset.part, Number(button.dataset.line));
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  var form = document.getElementById("template-form");
  if (!form) return;

  var state = document.getElementById("preview-state");
  var subject = document.getElementById("preview-subject");
  var text = document.getElementById("preview-text");
  var summary = document.getElementById("problems-summary");
  var previewButton = document.getElementById("preview-button");
  var timer = null;
  var sequence = 0;

  function element(tag, className, content) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (content) node.textContent = content;
    return node;
  }

  function showProblems(problems) {
    Object.keys(LABELS).forEach(function (part) {
      var list = document.getElementById("problems-" + part);
      var area = document.getElementById("part-" + part);
      list.replaceChildren();
      area.removeAttribute("aria-invalid");
    });
    var items = [];
    problems.forEach(function (problem) {
      var where = (LABELS[problem.part] || problem.part) +
        (problem.line ? ", line " + problem.line : "");
      items.push(where + ": " + problem.message);
      var list = document.getElementById("problems-" + problem.part);
      if (!list) return;
      document.getElementById("part-" + problem.part).setAttribute("aria-invalid", "true");
      var item = element("li");
      if (problem.line) {
        var button = element("button", "goto", "Line " + problem.line);
        button.type = "button";
        button.dataset.part = problem.part;
        button.dataset.line = problem.line;
        item.append(button, " ");
      }
      item.append(problem.message);
      list.append(item);
    });
    var shown = summary.dataset.shown || "";
    var now = items.join("\n");
    if (shown === now) return;  // unchanged: do not announce it again
    summary.dataset.shown = now;
    summary.replaceChildren();
    summary.hidden = items.length === 0;
    if (items.length) {
      var count = items.length + " problem" + (items.length === 1 ? "" : "s");
      summary.append(element("p", null, count + ": the preview waits until they are fixed."));
      var list = element("ul");
      items.forEach(function (line) { list.append(element("li", null, line)); });
      summary.append(list);
    }
  }

  /* A new frame for each preview: a form submitted into a fresh frame replaces its first,
     empty document instead of adding an entry to the page's history. */
  function submitToFrame() {
    var old = document.getElementById("preview-html");
    var frame = old.cloneNode(false);
    frame.removeAttribute("src");
    old.replaceWith(frame);
    var action = form.getAttribute("action");
    form.setAttribute("action", form.dataset.previewHtmlUrl);
    form.setAttribute("target", frame.name);
    form.submit();
    form.setAttribute("action", action);
    form.removeAttribute("target");
  }

  function preview() {
    clearTimeout(timer);
    var mine = ++sequence;
    state.textContent = "Updating the preview…";
    fetch(form.dataset.previewUrl, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (response.status === 403) throw new Error("the session has expired: reload the page");
        if (response.status !== 200) throw new Error("the server answered " + response.status);
        return response.json();
      })
      .then(function (body) {
        if (mine !== sequence) return;  // a newer preview is on its way
        showProblems(body.errors);
        if (body.errors.length) {
          state.textContent = "Not updated: fix the problems first.";
          return;
        }
        subject.textContent = body.subject;
        text.textContent = body.text;
        submitToFrame();
        form.classList.remove("is-stale");
        state.textContent = "Preview up to date.";
      })
      .catch(function (error) {
        if (mine === sequence) state.textContent = "The preview failed: " + error.message + ".";
      });
  }

  form.addEventListener("input", function (event) {
    if (event.target.matches("textarea, #sale-id")) {
      form.classList.add("is-stale");
      clearTimeout(timer);
      timer = setTimeout(preview, 400);
    }
  });

  previewButton.addEventListener("click", function (event) {
    event.preventDefault();
    preview();
  });

  /* On load, the preview shows what the text areas hold. The server renders the shown
     version, but the browser may have put other text back into the areas (reload, back,
     a restored tab), and a page without a rendered preview has an empty frame: either way,
     preview at once instead of waiting for the first keystroke. A refused draft's page
     already lists its problems (in the console's language) and has nothing to preview. */
  function previewIfStale() {
    var restored = Array.prototype.some.call(form.querySelectorAll("textarea"), function (area) {
      return area.value !== area.defaultValue;
    });
    var empty = !document.getElementById("preview-html").getAttribute("src") ||
      text.textContent === "";
    if (restored || (empty && summary.hidden)) preview();
  }

  window.addEventListener("pageshow", previewIfStale);
})();
