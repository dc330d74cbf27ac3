/** Every subcommand, in the order `tierwatch --help` lists them. */
import type { CommandSpec } from './context.ts';
import { checkCommand } from './check.ts';
import { collectCommand } from './collect.ts';
import { demoCommand } from './demo.ts';
import { healthCommand } from './health.ts';
import { migrateCommand } from './migrate.ts';
import { runCommand } from './run.ts';
import { simulateCommand } from './simulate.ts';
import { changesCommand } from './changes.ts';
import { snapshotCommand } from './snapshot.ts';
import { diffCommand } from './diff.ts';
import { historyCommand } from './history.ts';
import { runsCommand } from './runs.ts';
import { queryCommand } from './query.ts';
import { alertsCommand } from './alerts.ts';
import { rewindCommand } from './rewind.ts';
import { serveCommand } from './serve.ts';
import { reportCommand } from './report.ts';

export const COMMANDS: CommandSpec[] = [
  runCommand,
  collectCommand,
  checkCommand,
  changesCommand,
  snapshotCommand,
  diffCommand,
  historyCommand,
  runsCommand,
  queryCommand,
  alertsCommand,
  serveCommand,
  reportCommand,
  healthCommand,
  migrateCommand,
  rewindCommand,
  demoCommand,
  simulateCommand,
];
