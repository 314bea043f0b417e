import { describe, expect, it } from 'vitest';
import { RunStop } from '../src/run-signal.js';

// A run's stop switch stands in for an AbortController: it must behave like one where the code relies on it.
describe('RunStop', () => {
  it('calls each listener once, in the order added, with the reason set; one removed or added after the abort is never called', () => {
    const stop = new RunStop();
    const calls: string[] = [];
    const removed = () => calls.push('removed');
    stop.addEventListener('abort', () => calls.push(`first ${String(stop.reason)}`));
    stop.addEventListener('abort', removed);
    stop.addEventListener('abort', () => calls.push(`second ${stop.aborted}`));
    stop.removeEventListener('abort', removed);
    stop.removeEventListener('abort', () => calls.push('never added'));
    expect(stop.aborted).toBe(false);
    expect(() => stop.throwIfAborted()).not.toThrow();

    stop.abort('why');
    stop.abort('again');
    stop.addEventListener('abort', () => calls.push('late'));
    expect(calls).toEqual(['first why', 'second true']);
    expect(stop.reason).toBe('why');
    expect(() => stop.throwIfAborted()).toThrow('why');
  });

  it('runs every listener when one throws, then throws the first error', () => {
    const stop = new RunStop();
    const calls: number[] = [];
    stop.addEventListener('abort', () => {
      calls.push(1);
      throw new Error('first');
    });
    stop.addEventListener('abort', () => {
      calls.push(2);
      throw new Error('second');
    });
    stop.addEventListener('abort', () => calls.push(3));
    expect(() => stop.abort(new Error('stop'))).toThrow('first');
    expect(calls).toEqual([1, 2, 3]);
    expect(stop.aborted).toBe(true);
  });
});
