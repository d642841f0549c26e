// Small helpers for the page's elements: find one by id, make one, show an error where an answer would go.

export const $ = (id) => document.getElementById(id);

// A new element: <tag class="className">text</tag>.
export function element(tag, className = "", text = "") {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (text) made.textContent = text;
  return made;
}

// An error in place of what a section would show: its message, in red.
export function showError(where, error) {
  where.replaceChildren(element("p", "error", error.message));
}
