// Users (root only): who may log in with which role; create, change role or password, issue
// a new key, delete. A key is shown once, when it is issued.

import { useState } from "react";
import type { FormEvent } from "react";
import type { Role } from "../api";
import { ErrorBox, Loading, useAction, useApp, useLoad, useTitle } from "../app";
import { localTime } from "../format";

interface UserView {
  name: string;
  role: Role;
  password: boolean;
  keys: { kind: string; createdAt: string; expiresAt: string | null }[];
}

/** A user's keys per kind: how many, the newest, the last to expire (none: never). */
export function keySummary(keys: UserView["keys"]): { kind: string; count: number; newest: string; expires: string | null }[] {
  const kinds = new Map<string, { kind: string; count: number; newest: string; expires: string | null }>();
  for (const k of keys) {
    const s = kinds.get(k.kind);
    if (!s) {
      kinds.set(k.kind, { kind: k.kind, count: 1, newest: k.createdAt, expires: k.expiresAt });
      continue;
    }
    s.count++;
    if (k.createdAt > s.newest) s.newest = k.createdAt;
    if (s.expires !== null) s.expires = k.expiresAt === null || k.expiresAt > s.expires ? k.expiresAt : s.expires;
  }
  return [...kinds.values()];
}

export function Users() {
  useTitle("Users");
  const { api, session } = useApp();
  const d = useLoad(() => api.get<{ users: UserView[] }>("/users"), []);
  const { error, act } = useAction(d.reload);
  const [shown, setShown] = useState<{ user: string; key: string } | null>(null);
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("readOnly");
  const [password, setPassword] = useState("");

  if (session.role !== "root") return <p>Only a root user manages users.</p>;
  const user = (n: string) => `/users/${encodeURIComponent(n)}`;
  const create = (e: FormEvent) => {
    e.preventDefault();
    void act(async () => {
      const r = await api.request<{ apiKey: string }>("POST", "/users", { name, role, ...(password ? { password } : {}) });
      setShown({ user: name, key: r.apiKey });
      setName("");
      setPassword("");
    });
  };
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return (
    <>
      <h1>Users</h1>
      <ErrorBox error={error} />
      {shown ? (
        <div className="banner" role="status">
          API key of <strong>{shown.user}</strong>, shown this once: <code className="key">{shown.key}</code>{" "}
          <button type="button" className="ghost small" onClick={() => setShown(null)}>
            Hide
          </button>
        </div>
      ) : null}
      {!d.data ? (
        d.error ? <ErrorBox error={d.error} /> : <Loading />
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Role</th>
              <th scope="col">Password</th>
              <th scope="col">Keys</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {d.data.users.map((u) => (
              <tr key={u.name} data-user={u.name}>
                <th scope="row">{u.name}</th>
                <td>
                  <select
                    aria-label={`Role of ${u.name}`}
                    value={u.role}
                    onChange={(e) => void act(() => api.request("PATCH", user(u.name), { role: e.target.value }))}
                  >
                    <option value="readOnly">read-only</option>
                    <option value="root">root</option>
                  </select>
                </td>
                <td>{u.password ? "set" : <span className="muted">none (key only)</span>}</td>
                <td className="small">
                  {keySummary(u.keys).map((k) => (
                    <div key={k.kind}>
                      {k.count} {k.kind}, newest {localTime(k.newest, zone)}
                      {k.expires ? `, lasts until ${localTime(k.expires, zone)}` : ""}
                    </div>
                  ))}
                </td>
                <td>
                  <div className="actions">
                  <button
                    type="button"
                    className="secondary small"
                    onClick={() => {
                      const p = prompt(`New password of ${u.name} (at least 8 characters):`);
                      if (p) void act(() => api.request("PATCH", user(u.name), { password: p }));
                    }}
                  >
                    Set password
                  </button>
                  <button
                    type="button"
                    className="secondary small"
                    onClick={() => {
                      if (confirm(`Revoke every key of ${u.name} and issue a new one?`))
                        void act(async () => {
                          const r = await api.request<{ apiKey: string }>("POST", `${user(u.name)}/key`);
                          setShown({ user: u.name, key: r.apiKey });
                        });
                    }}
                  >
                    New key
                  </button>
                  <button
                    type="button"
                    className="danger small"
                    disabled={u.name === session.user}
                    onClick={() => {
                      if (confirm(`Delete user ${u.name} and its keys?`)) void act(() => api.request("DELETE", user(u.name)));
                    }}
                  >
                    Delete
                  </button>
                </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="inline" onSubmit={create} aria-label="New user">
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} required pattern="[A-Za-z0-9._@\-]{1,64}" />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
            <option value="readOnly">read-only</option>
            <option value="root">root</option>
          </select>
        </label>
        <label>
          Password (optional)
          <input type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        <button type="submit">Create user</button>
      </form>
    </>
  );
}
