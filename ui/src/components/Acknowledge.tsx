// Acknowledging an alarm (SPEC §11): a root user says, with a comment, that a change to WARNING
// or OUTAGE is being handled; everyone sees who did it, when and why.

import { useState } from "react";
import type { FormEvent } from "react";
import type { Acknowledgement, StatusEvent } from "../api";
import { ErrorBox, useAction, useApp } from "../app";
import { ago, localTime } from "../format";

/** Who acknowledged, how long ago (the time itself on hover) and why. */
export function AckNote({ ack, zone, now = new Date() }: { ack: Acknowledgement; zone: string; now?: Date }) {
  return (
    <div className="ack-note" data-testid="ack-note">
      <span className="tag tag-ack" title={`Acknowledged by ${ack.by} at ${localTime(ack.at, zone)}`}>
        acknowledged
      </span>{" "}
      <span className="small">
        {ack.by}, <span title={localTime(ack.at, zone)}>{ago(ack.at, now)}</span>
      </span>
      <div className="muted small ack-comment">{ack.comment}</div>
    </div>
  );
}

/**
 * The "Acknowledge" button of a change (or, with `path`, of an incident), which asks for a
 * comment in place; `onDone` gets what the API answers (an event: with `acknowledged`). Root
 * only: the caller shows it to root.
 */
export function AcknowledgeButton<T = StatusEvent>({
  event,
  onDone,
  label,
  path,
}: {
  event: Pick<StatusEvent, "id" | "flowName">;
  onDone: (answer: T) => void;
  label?: string;
  /** Where the acknowledgement is posted (default: the event's `/events/{id}/ack`). */
  path?: string;
}) {
  const { api } = useApp();
  const [open, setOpen] = useState(false);
  const [comment, setComment] = useState("");
  const { error, busy, act } = useAction();
  if (!open)
    return (
      <button type="button" className="secondary small" onClick={() => setOpen(true)} title="Say that this alarm is being handled, and how">
        {label ?? "Acknowledge"}
      </button>
    );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!comment.trim()) return;
    void act(async () => {
      const answer = await api.request<T>("POST", path ?? `/events/${encodeURIComponent(event.id)}/ack`, { comment: comment.trim() });
      setOpen(false);
      setComment("");
      onDone(answer);
    });
  };
  return (
    <form className="ack-form" onSubmit={submit} aria-label={`Acknowledge the change of ${event.flowName}`}>
      <input
        name="ack-comment"
        aria-label="What is being done"
        placeholder="What is being done, e.g. ticket INC-1234"
        value={comment}
        onChange={(e) => setComment(e.target.value)}
        required
        autoFocus
      />
      <button type="submit" className="small" disabled={busy || !comment.trim()}>
        Acknowledge
      </button>
      <button type="button" className="ghost small" onClick={() => setOpen(false)}>
        Cancel
      </button>
      <ErrorBox error={error} />
    </form>
  );
}
