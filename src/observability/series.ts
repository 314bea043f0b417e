/**
 * Counters and histograms for the request path, kept as plain numbers and written out in the
 * Prometheus text format only when scraped. prom-client validates and hashes the label object on
 * every call; here a call is one map lookup per label value, with no string built (label values
 * are the same few strings each time, whose hashes V8 keeps), which is what keeps METRICS_ENABLED
 * within its CPU budget (bench/metrics-callgrind.ts).
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

/** Series by their label values: a map per label, the last one holding the series. */
class SeriesIndex<T extends { labels: readonly string[] }> {
  private readonly root = new Map<string, unknown>();
  /** In the order first seen, for rendering. */
  readonly all: T[] = [];

  find(labels: readonly string[], make: (labels: readonly string[]) => T): T {
    let node = this.root;
    const last = labels.length - 1;
    for (let index = 0; index < last; index++) {
      let next = node.get(labels[index]!) as Map<string, unknown> | undefined;
      if (next === undefined) node.set(labels[index]!, (next = new Map()));
      node = next;
    }
    let series = node.get(labels[last]!) as T | undefined;
    if (series === undefined) {
      series = make([...labels]);
      node.set(labels[last]!, series);
      this.all.push(series);
    }
    return series;
  }
}

const escape = (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function labelText(names: readonly string[], values: readonly string[], extra = ''): string {
  const pairs = names.map((name, index) => `${name}="${escape(values[index] ?? '')}"`);
  if (extra !== '') pairs.push(extra);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

const newSeries = (labels: readonly string[]): Series => ({ labels, value: 0 });

export class CounterFamily {
  private readonly series = new SeriesIndex<Series>();

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
  ) {}

  inc(labels: readonly string[], value = 1): void {
    this.series.find(labels, newSeries).value += value;
  }

  render(): string {
    let text = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const series of this.series.all) text += `${this.name}${labelText(this.labelNames, series.labels)} ${series.value}\n`;
    return text;
  }
}

export class HistogramFamily {
  private readonly series = new SeriesIndex<HistogramSeries>();
  private readonly newSeries = (labels: readonly string[]): HistogramSeries => ({ labels, counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 });

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly buckets: readonly number[],
  ) {}

  observe(labels: readonly string[], value: number): void {
    const series = this.series.find(labels, this.newSeries);
    let index = 0;
    while (index < this.buckets.length && value > this.buckets[index]!) index++;
    series.counts[index]!++;
    series.sum += value;
    series.count++;
  }

  render(): string {
    let text = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (const series of this.series.all) {
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
