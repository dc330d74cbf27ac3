CREATE TABLE `meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `run_ledger` (
	`run_id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`account_id` text NOT NULL,
	`endpoint` text NOT NULL,
	`public_key` text,
	`started_at` text NOT NULL,
	`observed_at` text,
	`finished_at` text,
	`status` text NOT NULL,
	`pages` integer DEFAULT 0 NOT NULL,
	`tiers` integer,
	`changes` integer,
	`error_code` text,
	`error_message` text,
	CONSTRAINT "run_ledger_status_check" CHECK("run_ledger"."status" IN ('running', 'ok', 'failed', 'aborted', 'abandoned'))
);
--> statement-breakpoint
CREATE INDEX `run_ledger_ok_observed_idx` ON `run_ledger` (`observed_at`) WHERE status = 'ok';--> statement-breakpoint
CREATE INDEX `run_ledger_ok_account_observed_idx` ON `run_ledger` (`account_id`,`observed_at`) WHERE status = 'ok';--> statement-breakpoint
CREATE INDEX `run_ledger_running_idx` ON `run_ledger` (`run_id`) WHERE status = 'running';--> statement-breakpoint
CREATE TABLE `tier_change` (
	`change_id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` integer NOT NULL,
	`observed_at` text NOT NULL,
	`account_id` text NOT NULL,
	`symbol` text NOT NULL,
	`leverage` text NOT NULL,
	`change` text NOT NULL,
	`changed_columns` text NOT NULL,
	`old_initial_margin` real,
	`new_initial_margin` real,
	`old_maintenance_margin` real,
	`new_maintenance_margin` real,
	`old_max_notional` real,
	`new_max_notional` real,
	FOREIGN KEY (`run_id`) REFERENCES `run_ledger`(`run_id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "tier_change_change_check" CHECK("tier_change"."change" IN ('added', 'removed', 'changed'))
);
--> statement-breakpoint
CREATE INDEX `tier_change_observed_idx` ON `tier_change` (`observed_at`);--> statement-breakpoint
CREATE INDEX `tier_change_account_symbol_observed_idx` ON `tier_change` (`account_id`,`symbol`,`observed_at`);--> statement-breakpoint
CREATE INDEX `tier_change_symbol_observed_idx` ON `tier_change` (`symbol`,`observed_at`);--> statement-breakpoint
CREATE INDEX `tier_change_run_idx` ON `tier_change` (`run_id`);--> statement-breakpoint
CREATE TABLE `tier_version` (
	`version_id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`account_id` text NOT NULL,
	`symbol` text NOT NULL,
	`leverage` text NOT NULL,
	`initial_margin` real NOT NULL,
	`maintenance_margin` real NOT NULL,
	`max_notional` real NOT NULL,
	`exchange_id` text,
	`valid_from` text NOT NULL,
	`valid_to` text,
	`run_id` integer NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `run_ledger`(`run_id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "tier_version_interval_check" CHECK("tier_version"."valid_to" IS NULL OR "tier_version"."valid_to" > "tier_version"."valid_from")
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tier_version_open_uq` ON `tier_version` (`account_id`,`symbol`,`leverage`) WHERE valid_to IS NULL;--> statement-breakpoint
CREATE INDEX `tier_version_symbol_from_idx` ON `tier_version` (`symbol`,`valid_from`);--> statement-breakpoint
CREATE INDEX `tier_version_from_idx` ON `tier_version` (`valid_from`);--> statement-breakpoint
CREATE INDEX `tier_version_to_idx` ON `tier_version` (`valid_to`);--> statement-breakpoint
CREATE VIEW `runs` AS select "run_id", "account_id", "endpoint", "started_at", "observed_at", "finished_at", "status", "pages", "tiers", "changes", "error_code", "error_message", "public_key" from "run_ledger";--> statement-breakpoint
CREATE VIEW `tier_changes` AS select "run_id", "observed_at", "account_id", "symbol", "leverage", "change", "changed_columns", "old_initial_margin", "new_initial_margin", "old_maintenance_margin", "new_maintenance_margin", "old_max_notional", "new_max_notional" from "tier_change";--> statement-breakpoint
CREATE VIEW `tier_versions` AS select "account_id", "symbol", "leverage", "initial_margin", "maintenance_margin", "max_notional", "exchange_id", "valid_from", "valid_to", "run_id" from "tier_version";--> statement-breakpoint
CREATE VIEW `tiers_current` AS select "account_id", "symbol", "leverage", "initial_margin", "maintenance_margin", "max_notional", "exchange_id", "valid_from", "valid_to", "run_id" from "tier_version" where "tier_version"."valid_to" IS NULL;