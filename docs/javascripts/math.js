// Typeset the formulas with KaTeX, served by the site itself (docs/javascripts/katex, KaTeX 0.19.1 from npm).
// pymdownx.arithmatex (generic mode) has wrapped $...$ in <span class="arithmatex">\(...\)</span> and
// $$...$$ in <div class="arithmatex">\[...\]</div>; only those elements are touched, never code blocks.
document$.subscribe(function () {
  document.querySelectorAll(".arithmatex").forEach(function (element) {
    renderMathInElement(element, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: true,
    });
  });
});
