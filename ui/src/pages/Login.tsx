// Log in with a password, or continue as a visitor (read-only).

import { useState } from "react";
import type { FormEvent } from "react";
import type { Api } from "../api";
import { ErrorBox, useAction } from "../app";

export function Login({ api }: { api: Api }) {
  const [user, setUser] = useState("");
  const [password, setPassword] = useState("");
  const { error, busy, act: run } = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(() => api.login(user, password));
  };

  return (
    <main className="login" id="main">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">flowwatch</h1>
        <p className="muted">Outage monitor of the mediation flows</p>
        <label>
          User
          <input name="username" autoComplete="username" value={user} onChange={(e) => setUser(e.target.value)} required autoFocus />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </label>
        <ErrorBox error={error} />
        <button type="submit" disabled={busy}>
          Log in
        </button>
        <button type="button" className="secondary" disabled={busy} onClick={() => void run(() => api.visitor())}>
          Continue as visitor (read-only)
        </button>
      </form>
    </main>
  );
}
