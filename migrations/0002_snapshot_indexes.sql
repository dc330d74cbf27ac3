DROP INDEX `tier_version_from_idx`;--> statement-breakpoint
DROP INDEX `tier_version_to_idx`;--> statement-breakpoint
CREATE INDEX `tier_version_from_to_idx` ON `tier_version` (`valid_from`,`valid_to`);--> statement-breakpoint
CREATE INDEX `tier_version_to_from_idx` ON `tier_version` (`valid_to`,`valid_from`);