// Notification channels (SPEC §12): where alarms go besides NATS — a webhook, e-mail, Slack, a
// Kafka topic —, which flows and statuses each takes, what waits in its queue and how its last
// attempt went; a chosen channel's latest deliveries. Root creates, edits, tests and deletes
// them; everyone sees them.

import { Fragment, useState } from "react";
import type { Attempt, Channel, Outcome } from "../api";
import { EmptyRow, ErrorBox, Link, Loading, StatusPill, useAction, useApp, useEvery, useLoad, useTitle } from "../app";
import { ChannelForm } from "../components/ChannelForm";
import { ago, millis } from "../format";
import { attemptTime, channelForm, channelScopeText, outcomeStatus, targetDetail, targetSummary, TYPE_NAMES } from "../notifications";
import type { ChannelForm as Form } from "../notifications";
import { href } from "../route";

/** How often the channels and the deliveries are read again. */
const CHANNELS_MS = 10_000;

/** The attempts listed of the chosen channel. */
const DELIVERIES_SHOWN = 50;

export function OutcomePill({ outcome }: { outcome: Outcome }) {
  return (
    <span className={`pill pill-${outcomeStatus(outcome)}`} data-outcome={outcome}>
      {outcome}
    </span>
  );
}

/** The latest attempts of a channel, newest first, and how many alarms wait in its queue. */
/** How long ago an attempt was made: never "in …" (the page's clock is read every 10 s, and
 * the browser's may run behind the server's). */
function sinceAttempt(at: string, now: Date): string {
  return ago(at, new Date(Math.max(now.getTime(), Date.parse(at))));
}

function Deliveries({ name, round, now }: { name: string; round: number; now: Date }) {
  const { api } = useApp();
  const d = useLoad(() => api.deliveries(name, DELIVERIES_SHOWN), [name, round]);
  useEvery(d.reload, CHANNELS_MS);
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return (
    <section aria-labelledby="deliveries-title" data-deliveries={name}>
      <h2 id="deliveries-title">
        Deliveries of {name}{" "}
        {d.data ? (
          <span className="muted" data-testid="deliveries-pending" data-pending={d.data.pending}>
            ({d.data.pending} pending)
          </span>
        ) : null}
      </h2>
      <ErrorBox error={d.error} />
      {!d.data ? (
        d.error ? null : <Loading />
      ) : (
        <table className="table compact deliveries-table">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Alarm</th>
              <th scope="col" className="num">
                Attempt
              </th>
              <th scope="col">Outcome</th>
              <th scope="col">Response</th>
              <th scope="col" className="num">
                Took
              </th>
            </tr>
          </thead>
          <tbody>
            {d.data.deliveries.map((a) => (
              <tr key={`${a.at}/${a.eventId}/${a.attempt}`} data-attempt={a.eventId} data-outcome={a.outcome} data-test={a.test}>
                <td className="small" title={`${a.at} (${sinceAttempt(a.at, now)})`}>
                  {attemptTime(a, zone)}
                </td>
                <td className="event-id small">
                  {a.eventId}
                  {a.test ? <span className="tag tag-test">test</span> : null}
                </td>
                <td className="num">{a.attempt}</td>
                <td>
                  <OutcomePill outcome={a.outcome} />
                </td>
                <td className="response small">{a.response}</td>
                <td className="num">{millis(a.durationMs)}</td>
              </tr>
            ))}
            {d.data.deliveries.length === 0 ? <EmptyRow columns={6}>Nothing sent to this channel yet.</EmptyRow> : null}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** What a test message came to: its outcome and the receiver's answer, or why it was not sent. */
function TestResult({ result, onHide }: { result: { attempt?: Attempt; error?: unknown }; onHide: () => void }) {
  const a = result.attempt;
  return (
    <div className="test-result" role="status" data-testid="test-result" data-outcome={a?.outcome}>
      {a ? (
        <>
          Test message: <OutcomePill outcome={a.outcome} /> <span className="response">{a.response}</span>{" "}
          <span className="muted small">in {millis(a.durationMs)}</span>
        </>
      ) : result.error ? (
        <ErrorBox error={result.error} />
      ) : (
        <span className="muted">Sending a test message…</span>
      )}{" "}
      {a || result.error ? (
        <button type="button" className="ghost small" onClick={onHide}>
          Hide
        </button>
      ) : null}
    </div>
  );
}

export function Notifications({ channel }: { channel?: string }) {
  useTitle("Notifications");
  const { api, session, navigate } = useApp();
  const root = session.role === "root";
  const list = useLoad(() => api.channels(), []);
  const [now, setNow] = useState(() => new Date());
  useEvery(() => {
    setNow(new Date());
    list.reload();
  }, CHANNELS_MS);
  const action = useAction(list.reload);
  // The form open: a new channel, or the one edited (as read when Edit was pressed).
  const [form, setForm] = useState<{ initial?: Form } | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [tested, setTested] = useState<{ name: string; attempt?: Attempt; error?: unknown } | null>(null);
  // Counts tests sent, so the deliveries are read again after one.
  const [round, setRound] = useState(0);

  const test = async (name: string) => {
    setTested({ name });
    try {
      const attempt = await api.testChannel(name);
      setTested({ name, attempt });
    } catch (error) {
      setTested({ name, error });
    }
    setRound((r) => r + 1);
    list.reload();
  };
  const edit = (c: Channel) =>
    void action.act(async () => {
      const fresh = await api.channel(c.name);
      setSaved(null);
      setForm({ initial: channelForm(fresh) });
    });
  const remove = (c: Channel) => {
    if (!confirm(`Delete the channel ${c.name}? It sends no more alarms.`)) return;
    void action.act(async () => {
      await api.deleteChannel(c.name);
      if (channel === c.name) navigate(href({ page: "notifications" }), true);
      if (tested?.name === c.name) setTested(null);
      if (form?.initial?.name === c.name) setForm(null);
      setSaved(null);
    });
  };

  const channels = list.data ?? [];
  const chosen = channel !== undefined ? channels.find((c) => c.name === channel) : undefined;
  const columns = root ? 8 : 7;

  return (
    <section aria-labelledby="notifications-title">
      <div className="section-head">
        <h1 id="notifications-title">Notifications</h1>
        {root && !form ? (
          <button
            type="button"
            onClick={() => {
              setSaved(null);
              setForm({});
            }}
          >
            New channel
          </button>
        ) : null}
      </div>
      <p className="muted">
        Where alarms go besides NATS: a signed webhook, e-mail, Slack, a Kafka topic. A channel takes the alarmed changes of the flows in its
        scope that reach or leave its least status (an OUTAGE channel also hears the recovery); what cannot be delivered waits in its queue
        and is tried again. Choose a channel to see its deliveries.
      </p>
      {form ? (
        <ChannelForm
          key={form.initial?.name ?? ""}
          initial={form.initial}
          taken={channels.map((c) => c.name)}
          onCancel={() => setForm(null)}
          onSaved={(c) => {
            setSaved(`Channel ${c.name} ${form.initial ? "saved" : "created"}.`);
            setForm(null);
            list.reload();
          }}
        />
      ) : null}
      {saved ? (
        <p className="ok-text" role="status" data-testid="channel-saved">
          {saved}
        </p>
      ) : null}
      <ErrorBox error={action.error} />
      {list.error ? <ErrorBox error={list.error} /> : null}
      {!list.data ? (
        list.error ? null : <Loading />
      ) : (
        <table className="table channels-table">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Type</th>
              <th scope="col">Target</th>
              <th scope="col">Scope</th>
              <th scope="col">Min status</th>
              <th scope="col" className="num">
                Pending
              </th>
              <th scope="col">Last attempt</th>
              {root ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {channels.map((c) => (
              <Fragment key={c.name}>
                <tr data-channel={c.name} data-min-status={c.minStatus} className={c.name === channel ? "selected" : undefined}>
                  <th scope="row">
                    <Link to={href({ page: "notifications", channel: c.name })} current={c.name === channel} title={`The deliveries of ${c.name}`}>
                      {c.name}
                    </Link>
                  </th>
                  <td>{TYPE_NAMES[c.type] ?? c.type}</td>
                  <td className="target" title={targetDetail(c)}>
                    {targetSummary(c)}
                  </td>
                  <td>{channelScopeText(c.scope)}</td>
                  <td title={c.minStatus === "WARNING" ? "WARNING and OUTAGE" : "OUTAGE only"}>
                    <StatusPill status={c.minStatus} />
                  </td>
                  <td className="num" data-pending={c.pending}>
                    {c.pending}
                  </td>
                  <td className="small" data-last-outcome={c.lastAttempt?.outcome}>
                    {c.lastAttempt ? (
                      <>
                        <OutcomePill outcome={c.lastAttempt.outcome} />{" "}
                        <span className="muted" title={c.lastAttempt.at}>
                          {sinceAttempt(c.lastAttempt.at, now)}
                        </span>
                      </>
                    ) : (
                      <span className="muted">never</span>
                    )}
                  </td>
                  {root ? (
                    <td>
                      <div className="actions">
                        <button
                          type="button"
                          className="secondary small"
                          disabled={tested?.name === c.name && !tested.attempt && !tested.error}
                          onClick={() => void test(c.name)}
                          aria-label={`Send a test message to ${c.name}`}
                        >
                          Send test
                        </button>
                        <button type="button" className="secondary small" onClick={() => edit(c)} aria-label={`Edit channel ${c.name}`}>
                          Edit
                        </button>
                        <button type="button" className="danger small" onClick={() => remove(c)} aria-label={`Delete channel ${c.name}`}>
                          Delete
                        </button>
                      </div>
                    </td>
                  ) : null}
                </tr>
                {tested?.name === c.name ? (
                  <tr className="test-row" data-test-result={c.name}>
                    <td colSpan={columns}>
                      <TestResult result={tested} onHide={() => setTested(null)} />
                    </td>
                  </tr>
                ) : null}
              </Fragment>
            ))}
            {channels.length === 0 ? (
              <EmptyRow columns={columns}>No channel: alarms go to NATS only.{root ? " Create one with New channel." : ""}</EmptyRow>
            ) : null}
          </tbody>
        </table>
      )}
      {chosen ? (
        <Deliveries key={chosen.name} name={chosen.name} round={round} now={now} />
      ) : channel !== undefined && list.data ? (
        <p className="muted" data-testid="no-channel">
          No channel named <code>{channel}</code>.
        </p>
      ) : null}
    </section>
  );
}
