DROP TABLE `tier_change`;--> statement-breakpoint
PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_tier_version` (
	`version_id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`account_id` text NOT NULL,
	`symbol` text NOT NULL,
	`leverage` text NOT NULL,
	`initial_margin` real NOT NULL,
	`maintenance_margin` real NOT NULL,
	`max_notional` real NOT NULL,
	`exchange_id` text,
	`valid_from` integer NOT NULL,
	`valid_to` integer,
	`run_id` integer NOT NULL,
	`prev_version_id` integer,
	FOREIGN KEY (`run_id`) REFERENCES `run_ledger`(`run_id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "tier_version_interval_check" CHECK("__new_tier_version"."valid_to" IS NULL OR "__new_tier_version"."valid_to" > "__new_tier_version"."valid_from")
);
--> statement-breakpoint
INSERT INTO `__new_tier_version`("version_id", "account_id", "symbol", "leverage", "initial_margin", "maintenance_margin", "max_notional", "exchange_id", "valid_from", "valid_to", "run_id", "prev_version_id") SELECT "version_id", "account_id", "symbol", "leverage", "initial_margin", "maintenance_margin", "max_notional", "exchange_id", "valid_from", "valid_to", "run_id", "prev_version_id" FROM `tier_version`;--> statement-breakpoint
DROP TABLE `tier_version`;--> statement-breakpoint
ALTER TABLE `__new_tier_version` RENAME TO `tier_version`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `tier_version_symbol_idx` ON `tier_version` (`symbol`);--> statement-breakpoint
CREATE INDEX `tier_version_from_to_idx` ON `tier_version` (`valid_from`,`valid_to`);--> statement-breakpoint
CREATE INDEX `tier_version_to_from_idx` ON `tier_version` (`valid_to`,`valid_from`);--> statement-breakpoint
CREATE UNIQUE INDEX `tier_version_prev_uq` ON `tier_version` (`prev_version_id`) WHERE prev_version_id IS NOT NULL;--> statement-breakpoint
ALTER TABLE `run_ledger` ADD `baseline` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
DROP VIEW `tier_changes`;--> statement-breakpoint
DROP VIEW `tier_versions`;--> statement-breakpoint
DROP VIEW `tiers_current`;--> statement-breakpoint
CREATE VIEW `tier_change_feed` AS SELECT v.run_id AS run_id, v.valid_from AS observed_ms, v.account_id AS account_id, v.symbol AS symbol, v.leverage AS leverage, CAST(CASE WHEN v.prev_version_id IS NULL THEN 'added' ELSE 'changed' END AS TEXT) AS change, CAST(CASE WHEN v.prev_version_id IS NULL THEN '[]' ELSE '[' || rtrim(CASE WHEN p.initial_margin IS NOT v.initial_margin THEN '"initial_margin",' ELSE '' END || CASE WHEN p.maintenance_margin IS NOT v.maintenance_margin THEN '"maintenance_margin",' ELSE '' END || CASE WHEN p.max_notional IS NOT v.max_notional THEN '"max_notional",' ELSE '' END, ',') || ']' END AS TEXT) AS changed_columns, p.initial_margin AS old_initial_margin, v.initial_margin AS new_initial_margin, p.maintenance_margin AS old_maintenance_margin, v.maintenance_margin AS new_maintenance_margin, p.max_notional AS old_max_notional, v.max_notional AS new_max_notional, CAST(v.leverage AS REAL) AS leverage_value, CAST(CASE WHEN v.prev_version_id IS NULL THEN 'loosening' WHEN (v.initial_margin > p.initial_margin OR v.maintenance_margin > p.maintenance_margin OR v.max_notional < p.max_notional) THEN CASE WHEN (v.initial_margin < p.initial_margin OR v.maintenance_margin < p.maintenance_margin OR v.max_notional > p.max_notional) THEN 'mixed' ELSE 'tightening' END WHEN (v.initial_margin < p.initial_margin OR v.maintenance_margin < p.maintenance_margin OR v.max_notional > p.max_notional) THEN 'loosening' ELSE 'mixed' END AS TEXT) AS classification, r.baseline AS baseline FROM tier_version v JOIN run_ledger r ON r.run_id = v.run_id LEFT JOIN tier_version p ON p.version_id = v.prev_version_id UNION ALL SELECT (SELECT c.run_id FROM run_ledger c WHERE c.status = 'ok' AND c.account_id = v.account_id AND c.observed_at = CAST(strftime('%Y-%m-%dT%H:%M:%fZ', v.valid_to / 1000.0, 'unixepoch') AS TEXT)), v.valid_to, v.account_id, v.symbol, v.leverage, 'removed', '[]', v.initial_margin, NULL, v.maintenance_margin, NULL, v.max_notional, NULL, CAST(v.leverage AS REAL), 'tightening', 0 FROM tier_version v WHERE v.valid_to IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tier_version s WHERE s.prev_version_id = v.version_id);--> statement-breakpoint
CREATE VIEW `tier_changes` AS SELECT run_id, CAST(strftime('%Y-%m-%dT%H:%M:%fZ', observed_ms / 1000.0, 'unixepoch') AS TEXT) AS observed_at, account_id, symbol, leverage, change, changed_columns, old_initial_margin, new_initial_margin, old_maintenance_margin, new_maintenance_margin, old_max_notional, new_max_notional, leverage_value, classification, baseline FROM tier_change_feed;--> statement-breakpoint
CREATE VIEW `tier_versions` AS SELECT account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id, CAST(strftime('%Y-%m-%dT%H:%M:%fZ', valid_from / 1000.0, 'unixepoch') AS TEXT) AS valid_from, CAST(strftime('%Y-%m-%dT%H:%M:%fZ', valid_to / 1000.0, 'unixepoch') AS TEXT) AS valid_to, run_id, CAST(leverage AS REAL) AS leverage_value FROM tier_version;--> statement-breakpoint
CREATE VIEW `tiers_current` AS SELECT account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id, CAST(strftime('%Y-%m-%dT%H:%M:%fZ', valid_from / 1000.0, 'unixepoch') AS TEXT) AS valid_from, CAST(strftime('%Y-%m-%dT%H:%M:%fZ', valid_to / 1000.0, 'unixepoch') AS TEXT) AS valid_to, run_id, CAST(leverage AS REAL) AS leverage_value FROM tier_version WHERE valid_to IS NULL;