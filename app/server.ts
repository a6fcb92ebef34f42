/**
 * The server's entry point (`npm start`, the image's CMD). It takes SIGTERM and SIGINT before it
 * imports anything slow (see shutdown-signals.ts), then runs the lifecycle (lifecycle.ts).
 */
import { pathToFileURL } from 'node:url';
import { PROCESS_TITLE, ShutdownSignals } from './shutdown-signals.ts';

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const signals = new ShutdownSignals();
  // What `ps` and `top` show; it also tells, from outside, that the signal handlers are in place.
  process.title = PROCESS_TITLE;
  const { main } = await import('./lifecycle.ts');
  await main(signals);
}
