-- Issue 8 (amended P10.1, P10.8): dated ownership of datasets and settlement amounts wide enough for any sum.
-- Owned by settlement/inputs/registry.py (dataset_versions, view datasets) and settlement/run.py (run tables).

ALTER TABLE dataset_versions ADD COLUMN owner_from DATE;
COMMENT ON COLUMN dataset_versions.owner_from IS 'First day of this registration period (owner, name, certification); NULL = the open start (P10.1, amended 2026-11-30).';
COMMENT ON COLUMN dataset_versions.certified_on IS 'First certified day; NULL = listed but never certified (P10.1, amended 2026-11-30).';
COMMENT ON COLUMN dataset_versions.certified_until IS 'Last certified day, NULL = open-ended (P10.1).';

DROP VIEW datasets;
CREATE VIEW datasets AS
WITH current AS (
    SELECT * FROM dataset_versions
    QUALIFY load_id = max(load_id) OVER (PARTITION BY dataset_id)
)
SELECT dataset_id, owner_id, name, certified_on, certified_until, load_id, owner_from,
       CAST(lead(owner_from) OVER (PARTITION BY dataset_id ORDER BY owner_from NULLS FIRST) - INTERVAL 1 DAY AS DATE)
           AS owner_until
FROM current;
COMMENT ON VIEW datasets IS 'Current dataset registry: every registration period of each dataset from its latest load (P10.1: owner, name and certification per period).';
COMMENT ON COLUMN datasets.dataset_id IS 'Dataset id.';
COMMENT ON COLUMN datasets.owner_id IS 'Credit code of the owner enterprise in this period (P10.1).';
COMMENT ON COLUMN datasets.name IS 'Dataset name.';
COMMENT ON COLUMN datasets.certified_on IS 'First certified day; NULL = listed but never certified (P10.1).';
COMMENT ON COLUMN datasets.certified_until IS 'Last certified day, NULL = open-ended.';
COMMENT ON COLUMN datasets.load_id IS 'Load that brought this version.';
COMMENT ON COLUMN datasets.owner_from IS 'First day of the period, NULL = the open start.';
COMMENT ON COLUMN datasets.owner_until IS 'Last day of the period (the day before the next period), NULL = open-ended.';

-- P10.8: base, gross and volume are sums of up to millions of amounts of up to 999,999,999,999.99.
ALTER TABLE run_dataset_results ALTER COLUMN base TYPE DECIMAL(38,2);
ALTER TABLE run_dataset_results ALTER COLUMN gross TYPE DECIMAL(38,2);
ALTER TABLE run_dataset_results ALTER COLUMN prior_awards TYPE DECIMAL(38,2);
ALTER TABLE run_dataset_results ALTER COLUMN payable TYPE DECIMAL(38,2);
ALTER TABLE run_dataset_results ALTER COLUMN owner_payable_total TYPE DECIMAL(38,2);
ALTER TABLE run_dataset_results ADD COLUMN dataset_payable DECIMAL(38,2);
COMMENT ON COLUMN run_dataset_results.dataset_payable IS 'max(0, Σ gross of the dataset''s qualifying owners in the year − Σ prior awards of the dataset and year), before it is shared among owners in proportion to gross (P10.1, P10.6).';
COMMENT ON COLUMN run_dataset_results.payable IS 'This owner''s share of dataset_payable (with one owner: max(0, gross − prior awards), P10.6), before the cap.';
ALTER TABLE run_platform_results ALTER COLUMN volume TYPE DECIMAL(38,2);
ALTER TABLE run_platform_results ALTER COLUMN subsidy_uncapped TYPE DECIMAL(38,2);
ALTER TABLE run_caller_buyers ALTER COLUMN net_amount TYPE DECIMAL(38,2);
ALTER TABLE run_caller_buyers ADD COLUMN owner_id VARCHAR;
COMMENT ON COLUMN run_caller_buyers.owner_id IS 'Owner of the dataset on the dates of these sales (P10.1): callers are counted per (dataset, owner).';
