// A JSON text editor with the problems of its text listed under it.

import type { Problem } from "../configEdit";

export function JsonEditor(props: {
  id: string;
  label: string;
  value: string;
  onChange: (text: string) => void;
  problems: Problem[];
  readOnly?: boolean;
}) {
  const lines = Math.max(6, props.value.split("\n").length + 1);
  return (
    <div className="json-editor">
      <label htmlFor={props.id}>{props.label}</label>
      <textarea
        id={props.id}
        className="code"
        spellCheck={false}
        rows={Math.min(lines, 24)}
        value={props.value}
        readOnly={props.readOnly}
        aria-invalid={props.problems.length > 0}
        aria-describedby={`${props.id}-problems`}
        onChange={(e) => props.onChange(e.target.value)}
        onKeyDown={(e) => {
          // Tab indents inside the editor; Escape then Tab leaves it (keyboard users are not trapped).
          if (e.key === "Tab" && !e.shiftKey && !props.readOnly && e.currentTarget.dataset.escaped !== "1") {
            e.preventDefault();
            const t = e.currentTarget;
            const [a, b] = [t.selectionStart, t.selectionEnd];
            props.onChange(t.value.slice(0, a) + "  " + t.value.slice(b));
            requestAnimationFrame(() => t.setSelectionRange(a + 2, a + 2));
          }
          e.currentTarget.dataset.escaped = e.key === "Escape" ? "1" : "";
        }}
      />
      <ul id={`${props.id}-problems`} className="problems" aria-live="polite">
        {props.problems.map((p, i) => (
          <li key={i} className="error">
            {p.path ? <code>{p.path}</code> : null} {p.message}
          </li>
        ))}
      </ul>
    </div>
  );
}
