PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_alert_outbox` (
	`outbox_id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`notification_id` text NOT NULL,
	`kind` text NOT NULL,
	`url` text NOT NULL,
	`format` text NOT NULL,
	`run_id` integer,
	`created_at` text NOT NULL,
	`body` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_attempt_at` text,
	`last_error` text,
	`delivered_at` text,
	`dead_at` text,
	`dead_reason` text,
	FOREIGN KEY (`run_id`) REFERENCES `run_ledger`(`run_id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "alert_outbox_status_check" CHECK("__new_alert_outbox"."status" IN ('pending', 'delivered', 'dead')),
	CONSTRAINT "alert_outbox_kind_check" CHECK("__new_alert_outbox"."kind" IN ('changes', 'stale', 'recovered'))
);
--> statement-breakpoint
INSERT INTO `__new_alert_outbox`("outbox_id", "notification_id", "kind", "url", "format", "run_id", "created_at", "body", "status", "attempts", "last_attempt_at", "last_error", "delivered_at") SELECT "outbox_id", "notification_id", "kind", "url", "format", "run_id", "created_at", "body", "status", "attempts", "last_attempt_at", "last_error", "delivered_at" FROM `alert_outbox`;--> statement-breakpoint
DROP TABLE `alert_outbox`;--> statement-breakpoint
ALTER TABLE `__new_alert_outbox` RENAME TO `alert_outbox`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE UNIQUE INDEX `alert_outbox_notification_url_uq` ON `alert_outbox` (`notification_id`,`url`);--> statement-breakpoint
CREATE INDEX `alert_outbox_pending_idx` ON `alert_outbox` (`url`,`outbox_id`) WHERE status = 'pending';