-- History v2, step 1 of 3 (custom): prepare the 0.1.0 tier_version for its rebuild by the next
-- (generated) migration. All three run in one transaction: a failure anywhere leaves 0.1.0 whole.
--
-- The public views read the tables rebuilt next, and SQLite refuses to rename a table while a view
-- names one that is missing: they become placeholders here and get their v2 definitions in step 2.
DROP VIEW `tier_changes`;--> statement-breakpoint
DROP VIEW `tier_versions`;--> statement-breakpoint
DROP VIEW `tiers_current`;--> statement-breakpoint
CREATE VIEW `tier_changes` AS SELECT NULL AS placeholder;--> statement-breakpoint
CREATE VIEW `tier_versions` AS SELECT NULL AS placeholder;--> statement-breakpoint
CREATE VIEW `tiers_current` AS SELECT NULL AS placeholder;--> statement-breakpoint
-- Its indexes are all replaced in step 2; dropping them now spares updating them row by row below.
DROP INDEX `tier_version_open_uq`;--> statement-breakpoint
DROP INDEX `tier_version_symbol_from_idx`;--> statement-breakpoint
DROP INDEX `tier_version_from_to_idx`;--> statement-breakpoint
DROP INDEX `tier_version_to_from_idx`;--> statement-breakpoint
-- A version whose tier had a version closed at its valid_from replaced that version: 0.1.0 wrote
-- exactly these as `changed` (a tier listed again after a removal has a gap, so no predecessor).
ALTER TABLE `tier_version` ADD `prev_version_id` integer;--> statement-breakpoint
CREATE INDEX `tier_version_v2_identity_tmp` ON `tier_version` (`account_id`, `symbol`, `leverage`, `valid_to`);--> statement-breakpoint
UPDATE `tier_version` AS `v` SET `prev_version_id` = (
  SELECT `p`.`version_id` FROM `tier_version` AS `p`
   WHERE `p`.`account_id` = `v`.`account_id` AND `p`.`symbol` = `v`.`symbol` AND `p`.`leverage` = `v`.`leverage`
     AND `p`.`valid_to` = `v`.`valid_from`
);--> statement-breakpoint
DROP INDEX `tier_version_v2_identity_tmp`;--> statement-breakpoint
-- ISO-8601 text to epoch milliseconds (exact: julianday keeps the milliseconds). Stored as text by
-- the column's TEXT affinity for now; the rebuild in step 2 copies them into INTEGER columns.
UPDATE `tier_version` SET
  `valid_from` = CAST(round((julianday(`valid_from`) - 2440587.5) * 86400000.0) AS INTEGER),
  `valid_to` = CASE WHEN `valid_to` IS NULL THEN NULL ELSE CAST(round((julianday(`valid_to`) - 2440587.5) * 86400000.0) AS INTEGER) END;
