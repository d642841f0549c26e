// Small helpers for the page's elements: find one by id, make one, show an error where an answer would go, and
// use them by keyboard.

export const $ = (id) => document.getElementById(id);

// A new element: <tag class="className">text</tag>.
export function element(tag, className = "", text = "") {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (text) made.textContent = text;
  return made;
}

// An error in place of what a section would show: its message, in red. A request the server stopped for a newer one
// of the page (api.js's Superseded) shows nothing: the newer one's answer will.
export function showError(where, error) {
  if (error.name === "Superseded") return;
  where.replaceChildren(element("p", "error", error.message));
}

// The step [columns, rows] an arrow key asks for (ArrowRight: [1, 0]); null for any other key.
const ARROWS = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
export const arrow = (event) => ARROWS[event.key] ?? null;

// Whether a key presses what has the focus, as a button's Enter and Space do.
export const presses = (event) => event.key === "Enter" || event.key === " ";

// Clickable items (a layer's maps, the confusion matrix's cells, the mistakes) for the keyboard: ONE tab stop for
// the group (the item focused last), the arrow keys move along a row and, `columns` to a row, up and down; Enter or
// Space clicks the item. A page of a thousand maps is then a tab stop per layer.
export function keyboardGroup(items, columns = items.length) {
  items.forEach((item, n) => {
    item.tabIndex = n === 0 ? 0 : -1;
    item.addEventListener("focus", () => {
      items.forEach((other) => { other.tabIndex = -1; });
      item.tabIndex = 0;
    });
    item.addEventListener("keydown", (event) => {
      if (presses(event)) { event.preventDefault(); item.click(); return; }
      const step = arrow(event);
      if (!step) return;
      event.preventDefault();
      const column = n % columns + step[0];
      const to = column >= 0 && column < columns ? items[n + step[0] + step[1] * columns] : null;
      to?.focus();
    });
  });
}
