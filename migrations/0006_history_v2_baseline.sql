-- History v2, step 3 of 3 (custom): each account's first successful run is its baseline.
UPDATE `run_ledger` SET `baseline` = 1
 WHERE `status` = 'ok'
   AND `observed_at` = (SELECT min(`first`.`observed_at`) FROM `run_ledger` AS `first`
                         WHERE `first`.`status` = 'ok' AND `first`.`account_id` = `run_ledger`.`account_id`);
