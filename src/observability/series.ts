/**
 * Counters and histograms for the request path, kept as plain numbers in a map per metric and
 * written out in the Prometheus text format only when scraped. prom-client validates and hashes
 * the label object on every call; here a call is one string join and one map lookup, which is what
 * keeps METRICS_ENABLED within its CPU budget (bench/metrics-cost.bench.ts).
 */
interface Series {
  labels: readonly string[];
  value: number;
}

interface HistogramSeries {
  labels: readonly string[];
  /** Per-bucket counts, not cumulative; the last slot is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

const escape = (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function labelText(names: readonly string[], values: readonly string[], extra = ''): string {
  const pairs = names.map((name, index) => `${name}="${escape(values[index] ?? '')}"`);
  if (extra !== '') pairs.push(extra);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

export class CounterFamily {
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
  ) {}

  inc(labels: readonly string[], value = 1): void {
    const key = labels.join('\u0001');
    const found = this.series.get(key);
    if (found === undefined) this.series.set(key, { labels, value });
    else found.value += value;
  }

  render(): string {
    let text = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const series of this.series.values()) text += `${this.name}${labelText(this.labelNames, series.labels)} ${series.value}\n`;
    return text;
  }
}

export class HistogramFamily {
  private readonly series = new Map<string, HistogramSeries>();

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly buckets: readonly number[],
  ) {}

  observe(labels: readonly string[], value: number): void {
    const key = labels.join('\u0001');
    let series = this.series.get(key);
    if (series === undefined) {
      series = { labels, counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
      this.series.set(key, series);
    }
    let index = 0;
    while (index < this.buckets.length && value > this.buckets[index]!) index++;
    series.counts[index]!++;
    series.sum += value;
    series.count++;
  }

  render(): string {
    let text = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (const series of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, index) => {
        cumulative += series.counts[index]!;
        text += `${this.name}_bucket${labelText(this.labelNames, series.labels, `le="${bound}"`)} ${cumulative}\n`;
      });
      text += `${this.name}_bucket${labelText(this.labelNames, series.labels, 'le="+Inf"')} ${series.count}\n`;
      text += `${this.name}_sum${labelText(this.labelNames, series.labels)} ${series.sum}\n`;
      text += `${this.name}_count${labelText(this.labelNames, series.labels)} ${series.count}\n`;
    }
    return text;
  }
}
