CREATE TABLE `alert_outbox` (
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
	FOREIGN KEY (`run_id`) REFERENCES `run_ledger`(`run_id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "alert_outbox_status_check" CHECK("alert_outbox"."status" IN ('pending', 'delivered')),
	CONSTRAINT "alert_outbox_kind_check" CHECK("alert_outbox"."kind" IN ('changes', 'stale', 'recovered'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `alert_outbox_notification_url_uq` ON `alert_outbox` (`notification_id`,`url`);--> statement-breakpoint
CREATE INDEX `alert_outbox_pending_idx` ON `alert_outbox` (`url`,`outbox_id`) WHERE status = 'pending';--> statement-breakpoint
CREATE TABLE `alert_state` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`updated_at` text NOT NULL
);
