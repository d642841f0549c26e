// The copy button of an interactive Python example (```pycon) copies code that runs: the statements without their
// >>> and ... prompts, and without the output lines. Material copies an element's data-copy attribute
// when the block has one, so each such block gets its source written there.
// A line is source as doctest reads it: ">>> " starts a statement, "... " lines right after continue it.
function sessionSource(text) {
  var source = [], inStatement = false;
  text.split("\n").forEach(function (line) {
    if (line === ">>>" || line.startsWith(">>> ")) {
      source.push(line.slice(4));
      inStatement = true;
    } else if (inStatement && (line === "..." || line.startsWith("... "))) {
      source.push(line.slice(4));
    } else {
      inStatement = false;
    }
  });
  return source.join("\n") + "\n";
}

document$.subscribe(function () {
  document.querySelectorAll(".language-pycon pre > code").forEach(function (code) {
    code.setAttribute("data-copy", sessionSource(code.textContent));
  });
});
