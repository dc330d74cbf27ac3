ALTER TABLE `run_ledger` ADD `leader_epoch` integer;--> statement-breakpoint
DROP VIEW `runs`;--> statement-breakpoint
CREATE VIEW `runs` AS select "run_id", "account_id", "endpoint", "started_at", "observed_at", "finished_at", "status", "pages", "tiers", "changes", "error_code", "error_message", "public_key", "leader_epoch" from "run_ledger";