/** Every subcommand, in the order `tierwatch --help` lists them. */
import type { CommandSpec } from './context.ts';
import { checkCommand } from './check.ts';
import { collectCommand } from './collect.ts';
import { demoCommand } from './demo.ts';
import { healthCommand } from './health.ts';
import { migrateCommand } from './migrate.ts';
import { runCommand } from './run.ts';
import { simulateCommand } from './simulate.ts';

export const COMMANDS: CommandSpec[] = [runCommand, collectCommand, checkCommand, healthCommand, migrateCommand, demoCommand, simulateCommand];
