// A year as twelve month grids (weeks start on Monday), each day marked as a holiday, a lazy
// day or neither; clicking a day cycles its mark when `onToggle` is given.

export type Mark = "holiday" | "lazy";

/** The weeks of a month: seven cells each, `null` outside the month, Monday first. */
export function monthGrid(year: number, month: number): (string | null)[][] {
  const first = new Date(Date.UTC(year, month, 1));
  const days = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const lead = (first.getUTCDay() + 6) % 7;
  const cells: (string | null)[] = Array(lead).fill(null);
  for (let d = 1; d <= days; d++) cells.push(`${year}-${String(month + 1).padStart(2, "0")}-${String(d).padStart(2, "0")}`);
  while (cells.length % 7) cells.push(null);
  const weeks: (string | null)[][] = [];
  for (let i = 0; i < cells.length; i += 7) weeks.push(cells.slice(i, i + 7));
  return weeks;
}

/** The next mark of a clicked day: none → holiday → lazy → none. */
export function nextMark(m: Mark | undefined): Mark | undefined {
  return m === undefined ? "holiday" : m === "holiday" ? "lazy" : undefined;
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const WEEKDAYS = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"];

export function Calendar(p: { year: number; marks: Map<string, Mark>; today: string; onToggle?: (date: string) => void }) {
  return (
    <div className="calendar">
      {MONTHS.map((name, m) => (
        <table key={name} className="month" aria-label={`${name} ${p.year}`}>
          <caption>{name}</caption>
          <thead>
            <tr>
              {WEEKDAYS.map((w) => (
                <th key={w} scope="col" abbr={w}>
                  {w}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {monthGrid(p.year, m).map((week, i) => (
              <tr key={i}>
                {week.map((date, j) => {
                  if (!date) return <td key={j} />;
                  const mark = p.marks.get(date);
                  const cls = [mark ?? "", j >= 5 ? "weekend" : "", date === p.today ? "today" : ""].join(" ").trim();
                  const label = `${date}${mark ? `: ${mark === "lazy" ? "lazy day" : "holiday"}` : ""}`;
                  return (
                    <td key={j} className={cls}>
                      {p.onToggle ? (
                        <button type="button" aria-label={label} title={label} data-date={date} onClick={() => p.onToggle!(date)}>
                          {Number(date.slice(8))}
                        </button>
                      ) : (
                        <span title={label} data-date={date}>
                          {Number(date.slice(8))}
                        </span>
                      )}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      ))}
    </div>
  );
}
