/**
 * Collects the benchmark results as tables, notes and targets; prints them as
 * plain-text tables and renders docs/benchmarks.md.
 */

export interface Target {
  id: string;
  name: string;
  target: string;
  measured: string;
  /** true: pass; false: short; undefined: not measured (the reason is in `measured`). */
  pass: boolean | undefined;
  /** For a missed target: why, and what would close it (filled in by the section that measured it). */
  explanation?: string;
}

interface Block {
  kind: 'table' | 'note';
  title?: string;
  headers?: string[];
  rows?: string[][];
  text?: string;
}

export interface Section {
  id: string;
  title: string;
  blocks: Block[];
  seconds?: number;
  error?: string;
}

export class Report {
  readonly sections: Section[] = [];
  readonly targets: Target[] = [];
  private current: Section | undefined;

  begin(id: string, title: string): Section {
    this.current = { id, title, blocks: [] };
    this.sections.push(this.current);
    console.log(`\n=== ${title}`);
    return this.current;
  }

  table(title: string, headers: string[], rows: string[][]): void {
    this.cur().blocks.push({ kind: 'table', title, headers, rows });
    console.log(`\n${title}\n${textTable(headers, rows)}`);
  }

  note(text: string): void {
    this.cur().blocks.push({ kind: 'note', text });
    console.log(`  note: ${text}`);
  }

  target(t: Target): void {
    const existing = this.targets.findIndex((x) => x.id === t.id);
    if (existing >= 0) this.targets[existing] = t;
    else this.targets.push(t);
    console.log(`  target ${t.name}: ${t.target}, measured ${t.measured} -> ${verdict(t)}`);
  }

  private cur(): Section {
    if (!this.current) throw new Error('Report.begin() first');
    return this.current;
  }
}

export function verdict(t: Target): string {
  return t.pass === undefined ? 'not measured' : t.pass ? 'pass' : 'short';
}

export function textTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].map((l) => `  ${l.trimEnd()}`).join('\n');
}

export function mdTable(headers: string[], rows: string[][]): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|');
  return [`| ${headers.map(esc).join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}
