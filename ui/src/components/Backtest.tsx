// A backtest's counts: current against candidate in total and, for a LoB, per flow that
// differs (links to each flow's page over the same days).

import { Link } from "../app";
import { change, MEASURES } from "../backtest";
import type { BacktestResult } from "../backtest";
import { flowHref } from "../route";

export function BacktestSummary({ result, from, to, perFlow }: { result: BacktestResult; from: string; to: string; perFlow: boolean }) {
  return (
    <section className="backtest" data-testid="backtest" aria-label="Backtest">
      <p className="muted small">
        Backtest of the edited settings (nothing saved), {from} to {to} (excluded): {result.flowCount} flows with stored traffic replayed,{" "}
        {result.currentFlows} evaluated now, {result.candidateFlows} with the edited settings.
      </p>
      <table className="table compact" data-testid="backtest-totals">
        <thead>
          <tr>
            <th scope="col">In total</th>
            <th scope="col" className="num">
              Current
            </th>
            <th scope="col" className="num">
              Edited
            </th>
            <th scope="col" className="num">
              Change
            </th>
          </tr>
        </thead>
        <tbody>
          {MEASURES.map(([k, label]) => (
            <tr key={k} data-measure={k}>
              <th scope="row">{label}</th>
              <td className="num">{result.current[k]}</td>
              <td className="num">{result.candidate[k]}</td>
              <td className="num">{change(result.current[k], result.candidate[k])}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!perFlow ? null : result.flows.length === 0 ? (
        <p className="muted small" data-testid="backtest-same">
          No flow's counts differ.
        </p>
      ) : (
        <table className="table compact" data-testid="backtest-flows">
          <caption className="muted small">The {result.flows.length} flows whose counts differ most (current → edited)</caption>
          <thead>
            <tr>
              <th scope="col">Flow</th>
              {MEASURES.map(([k, label]) => (
                <th key={k} scope="col" className="num">
                  {label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {result.flows.map((f) => (
              <tr key={`${f.kind}/${f.flow}`} data-flow={f.flow}>
                <th scope="row">
                  <Link to={flowHref(f, { from, to })}>{f.flow}</Link>
                  {f.kind === "forward" ? <span className="tag">forward</span> : null}
                </th>
                {MEASURES.map(([k]) => (
                  <td key={k} className={`num${f.current[k] !== f.candidate[k] ? " differs" : ""}`}>
                    {f.current[k]} → {f.candidate[k]}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
