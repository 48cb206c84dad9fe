-- Settlement results per run (issue 4): P12 exclusions and the explanations behind every target.
-- Written by settlement.run after ledgers.append_run returned the run id; never updated.
-- Every table and column carries a COMMENT: regulators read this schema directly (CONTRACT).

CREATE TABLE exclusions (
    run_id BIGINT NOT NULL,
    year INTEGER NOT NULL,
    clause INTEGER NOT NULL,
    platform_id VARCHAR NOT NULL,
    trade_id VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    detail VARCHAR,
    dataset_id VARCHAR,
    kind VARCHAR,
    upload_id BIGINT
);
COMMENT ON TABLE exclusions IS 'Every stored trade of the run''s year that earns nothing under a clause, with ONE P12 reason per clause (CONTRACT regulator schema). Refunds carry the reason of the sale they reverse.';
COMMENT ON COLUMN exclusions.run_id IS 'settlement_runs.run_id of the run that found the exclusion.';
COMMENT ON COLUMN exclusions.year IS 'Settlement year (of the sale; a refund belongs to its sale''s year, P9).';
COMMENT ON COLUMN exclusions.clause IS '6 (dataset reward, P10) or 7 (platform subsidy, P11).';
COMMENT ON COLUMN exclusions.platform_id IS 'Platform of the trade (trade ids are unique per platform).';
COMMENT ON COLUMN exclusions.trade_id IS 'The excluded trade.';
COMMENT ON COLUMN exclusions.reason IS 'P12 code, first that applies: RETRACTED, OUT_OF_WINDOW, NOT_CERTIFIED / PLATFORM_NOT_CERTIFIED, RELATED_PARTY, FULLY_REFUNDED; BELOW_CALLER_THRESHOLD (clause 6).';
COMMENT ON COLUMN exclusions.detail IS 'Why, in words; for RELATED_PARTY the path of affiliation records (P7).';
COMMENT ON COLUMN exclusions.dataset_id IS 'Dataset of the trade (of the refunded sale for a refund).';
COMMENT ON COLUMN exclusions.kind IS 'sale or refund (P9).';
COMMENT ON COLUMN exclusions.upload_id IS 'Upload that stored the trade (a retracted trade id may repeat in a later upload).';

CREATE TABLE run_dataset_results (
    run_id BIGINT NOT NULL,
    year INTEGER NOT NULL,
    dataset_id VARCHAR NOT NULL,
    owner_id VARCHAR,
    eligible_sales BIGINT NOT NULL,
    caller_groups BIGINT NOT NULL,
    caller_threshold INTEGER,
    qualifies BOOLEAN NOT NULL,
    base DECIMAL(18,2) NOT NULL,
    rate DECIMAL(9,6),
    gross DECIMAL(18,2) NOT NULL,
    prior_awards DECIMAL(18,2) NOT NULL,
    payable DECIMAL(18,2) NOT NULL,
    owner_payable_total DECIMAL(18,2) NOT NULL,
    owner_cap DECIMAL(18,2),
    capped BOOLEAN NOT NULL,
    target DECIMAL(18,2) NOT NULL
);
COMMENT ON TABLE run_dataset_results IS 'Clause 6 per dataset and run: every dataset with an eligible sale or a prior award in the year (P10).';
COMMENT ON COLUMN run_dataset_results.run_id IS 'settlement_runs.run_id.';
COMMENT ON COLUMN run_dataset_results.year IS 'Settlement year.';
COMMENT ON COLUMN run_dataset_results.dataset_id IS 'Dataset.';
COMMENT ON COLUMN run_dataset_results.owner_id IS 'Owner enterprise from the dataset registry (P10.1); the beneficiary.';
COMMENT ON COLUMN run_dataset_results.eligible_sales IS 'Number of eligible sales (P10.2).';
COMMENT ON COLUMN run_dataset_results.caller_groups IS 'Unrelated callers: distinct year-graph affiliate groups of eligible buyers with net sum > 0 (P10.3).';
COMMENT ON COLUMN run_dataset_results.caller_threshold IS 'The dataset qualifies when caller_groups is greater than this (P10.4, parameter clause6.caller_threshold).';
COMMENT ON COLUMN run_dataset_results.qualifies IS 'caller_groups > caller_threshold (P10.4).';
COMMENT ON COLUMN run_dataset_results.base IS 'Sum of the net amounts of the eligible sales (P10.5), also when not qualifying.';
COMMENT ON COLUMN run_dataset_results.rate IS 'Reward rate (parameter clause6.rate, P10.5).';
COMMENT ON COLUMN run_dataset_results.gross IS 'round(rate x base) half-up to 0.01 when qualifying, else 0 (P1, P10.5).';
COMMENT ON COLUMN run_dataset_results.prior_awards IS 'Sum of prior awards for the dataset and year (P10.6).';
COMMENT ON COLUMN run_dataset_results.payable IS 'max(0, gross - prior_awards) before the owner cap (P10.6).';
COMMENT ON COLUMN run_dataset_results.owner_payable_total IS 'Sum of payable over the owner''s datasets in the year (P10.7).';
COMMENT ON COLUMN run_dataset_results.owner_cap IS 'Cap per owner and year (parameter clause6.cap, P10.7).';
COMMENT ON COLUMN run_dataset_results.capped IS 'True when owner_payable_total exceeds owner_cap and the cap split applied (P10.7).';
COMMENT ON COLUMN run_dataset_results.target IS 'Target payable for the ledger key (year, 6, owner, dataset): payable, or its cap share (P10.7).';

CREATE TABLE run_caller_buyers (
    run_id BIGINT NOT NULL,
    year INTEGER NOT NULL,
    dataset_id VARCHAR NOT NULL,
    group_id VARCHAR NOT NULL,
    buyer_id VARCHAR NOT NULL,
    eligible_sales BIGINT NOT NULL,
    net_amount DECIMAL(18,2) NOT NULL,
    group_counted BOOLEAN NOT NULL
);
COMMENT ON TABLE run_caller_buyers IS 'Clause 6 callers per run: each buyer of an eligible sale with its year-graph affiliate group (P8, P10.3).';
COMMENT ON COLUMN run_caller_buyers.run_id IS 'settlement_runs.run_id.';
COMMENT ON COLUMN run_caller_buyers.year IS 'Settlement year.';
COMMENT ON COLUMN run_caller_buyers.dataset_id IS 'Dataset bought.';
COMMENT ON COLUMN run_caller_buyers.group_id IS 'Year-graph affiliate group (affiliate_groups.group_id), or own:<buyer> for a buyer with no record.';
COMMENT ON COLUMN run_caller_buyers.buyer_id IS 'Buyer enterprise.';
COMMENT ON COLUMN run_caller_buyers.eligible_sales IS 'Eligible sales of this buyer for the dataset (P10.2).';
COMMENT ON COLUMN run_caller_buyers.net_amount IS 'Sum of their net amounts (P9).';
COMMENT ON COLUMN run_caller_buyers.group_counted IS 'True when the group''s eligible net sum is > 0, so it counts as one caller (P10.3).';

CREATE TABLE run_platform_results (
    run_id BIGINT NOT NULL,
    year INTEGER NOT NULL,
    platform_id VARCHAR NOT NULL,
    eligible_sales BIGINT NOT NULL,
    volume DECIMAL(18,2) NOT NULL,
    rate DECIMAL(9,6),
    subsidy_uncapped DECIMAL(18,2) NOT NULL,
    cap DECIMAL(18,2),
    target DECIMAL(18,2) NOT NULL
);
COMMENT ON TABLE run_platform_results IS 'Clause 7 per platform and run: every platform with an eligible sale in the year (P11).';
COMMENT ON COLUMN run_platform_results.run_id IS 'settlement_runs.run_id.';
COMMENT ON COLUMN run_platform_results.year IS 'Settlement year.';
COMMENT ON COLUMN run_platform_results.platform_id IS 'Platform enterprise; the beneficiary.';
COMMENT ON COLUMN run_platform_results.eligible_sales IS 'Number of eligible sales (P11.2).';
COMMENT ON COLUMN run_platform_results.volume IS 'Sum of the net amounts of eligible sales (P11.3).';
COMMENT ON COLUMN run_platform_results.rate IS 'Subsidy rate (parameter clause7.rate).';
COMMENT ON COLUMN run_platform_results.subsidy_uncapped IS 'round(rate x volume) half-up to 0.01 (P1, P11.3).';
COMMENT ON COLUMN run_platform_results.cap IS 'Cap per platform and year (parameter clause7.cap).';
COMMENT ON COLUMN run_platform_results.target IS 'min(subsidy_uncapped, cap): target for the ledger key (year, 7, platform, '''') (P11.3).';
