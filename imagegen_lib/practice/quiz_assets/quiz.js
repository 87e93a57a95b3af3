
(function (rootId) {
  "use strict";
  var root = document.getElementById(rootId);
  if (!root) return;
  var key = JSON.parse(root.querySelector("script.ig-quiz-key").textContent);
  var NUMBER = new RegExp(key.number);
  var items = root.querySelectorAll("li.ig-quiz-q");

  function typeset(el) {
    // Explanations may hold math; MathJax 3 (if the page has it) typesets what was revealed.
    var MJ = window.MathJax;
    if (!MJ || typeof MJ.typesetPromise !== "function") return;
    var ready = (MJ.startup && MJ.startup.promise) || Promise.resolve();
    var done = ready.then(function () { return MJ.typesetPromise([el]); })
      .catch(function (err) { console.warn("quiz: MathJax could not typeset", err); });
    if (MJ.startup) MJ.startup.promise = done;
  }

  function given(q, li) {
    if (q.type === "numeric") return li.querySelector("input.ig-quiz-num").value;
    var ids = [];
    li.querySelectorAll("input.ig-quiz-choice:checked").forEach(function (i) { ids.push(i.value); });
    return ids;
  }

  function sameSet(a, b) {
    if (a.length !== b.length) return false;
    return a.every(function (x) { return b.indexOf(x) >= 0; });
  }

  function grade(q, g) {
    if (q.type !== "numeric") {
      if (!g.length) return { answered: false, correct: false, feedback: key.unanswered };
      var ok = sameSet(g, q.answer);
      return { answered: true, correct: ok, feedback: ok ? key.correct : q.wrong };
    }
    var s = g.trim();
    if (!s) return { answered: false, correct: false, feedback: key.unanswered };
    if (!NUMBER.test(s)) return { answered: true, correct: false, feedback: key.notANumber };
    var x = Number(s);
    var right = isFinite(x) &&
      Math.abs(x - q.answer) <= q.tolerance + 1e-9 * Math.max(1, Math.abs(q.answer));
    return { answered: true, correct: right, feedback: right ? key.correct : q.wrong };
  }

  function markOptions(q, li, g) {
    li.querySelectorAll("label.ig-quiz-opt").forEach(function (label) {
      var id = label.querySelector("input").value;
      label.classList.toggle("is-right", q.answer.indexOf(id) >= 0);
      label.classList.toggle("is-chosen-wrong", g.indexOf(id) >= 0 && q.answer.indexOf(id) < 0);
    });
  }

  function show(li, r) {
    var fb = li.querySelector(".ig-quiz-feedback");
    var state = r.correct ? "is-right" : (r.answered ? "is-wrong" : "is-none");
    fb.textContent = (r.correct ? "\u2713 " : (r.answered ? "\u2717 " : "")) + r.feedback;
    fb.className = "ig-quiz-feedback " + state;
    li.querySelector("details.ig-quiz-explain").hidden = !r.answered;
  }

  function setScore(text) {
    root.querySelectorAll(".ig-quiz-score").forEach(function (s) { s.textContent = text; });
  }

  function check() {
    var score = 0;
    key.questions.forEach(function (q, i) {
      var g = given(q, items[i]);
      var r = grade(q, g);
      if (r.correct) score += 1;
      if (q.type !== "numeric" && r.answered) markOptions(q, items[i], g);
      show(items[i], r);
    });
    setScore("Score: " + score + " / " + key.total);
  }

  function reset() {
    root.querySelectorAll("input.ig-quiz-choice").forEach(function (i) { i.checked = false; });
    root.querySelectorAll("input.ig-quiz-num").forEach(function (i) { i.value = ""; });
    root.querySelectorAll("label.ig-quiz-opt").forEach(function (l) {
      l.classList.remove("is-right", "is-chosen-wrong");
    });
    root.querySelectorAll(".ig-quiz-feedback").forEach(function (f) {
      f.textContent = ""; f.className = "ig-quiz-feedback";
    });
    root.querySelectorAll("details.ig-quiz-explain").forEach(function (d) {
      d.open = false; d.hidden = true;
    });
    setScore("");
  }

  root.querySelector(".ig-quiz-check").addEventListener("click", check);
  root.querySelector(".ig-quiz-reset").addEventListener("click", reset);
  root.querySelectorAll("input.ig-quiz-num").forEach(function (input) {
    input.addEventListener("keydown", function (e) { if (e.key === "Enter") check(); });
  });
  root.querySelectorAll("details.ig-quiz-explain").forEach(function (d) {
    d.addEventListener("toggle", function () {
      d.querySelector("summary").textContent = d.open ? "Hide explanation" : "Show explanation";
      if (d.open) typeset(d);
    });
  });
})(__QUIZ_ID__);
