/**
 * Runs a task at most once per interval however often it is triggered: the first trigger runs it
 * at once; triggers while it runs or within `intervalMs` after fold into one more run at the end of
 * that interval (so the last change is never missed). Runs never overlap, so their effects land in
 * order.
 */
export class Throttle {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private closed = false;

  /** `task` handles its own failures (a rejection is ignored here). */
  constructor(
    private readonly task: () => void | Promise<void>,
    private readonly intervalMs: number,
  ) {}

  trigger(): void {
    if (this.closed) return;
    if (this.running || this.timer) this.again = true;
    else void this.run();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      await this.task();
    } catch {
      // the task's business
    } finally {
      this.running = false;
    }
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.again) return;
      this.again = false;
      void this.run();
    }, this.intervalMs);
    this.timer.unref();
  }
}
