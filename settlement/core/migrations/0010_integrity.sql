-- Integrity flags (issue 13, CONTRACT "Integrity flags"): signals for the reviewer who approves a run.
-- Owned by settlement/integrity/. Flags never change an amount: nothing in the clauses or the ledger reads
-- these tables. integrity_flags is written once per computing run (inside the run's transaction);
-- integrity_reviews is append-only (who, when, outcome, comment).

CREATE TABLE integrity_flags (
    flag_id BIGINT NOT NULL,
    year INTEGER NOT NULL,
    run_id BIGINT NOT NULL,
    code VARCHAR NOT NULL,
    flag_key VARCHAR NOT NULL,
    dataset_id VARCHAR,
    platform_id VARCHAR,
    parties VARCHAR[] NOT NULL,
    evidence_trade_ids VARCHAR[] NOT NULL,
    figures VARCHAR NOT NULL,
    detail VARCHAR NOT NULL,
    thresholds_sha256 VARCHAR NOT NULL
);
COMMENT ON TABLE integrity_flags IS 'Integrity signals per settlement run (issue 13, docs/integrity.md): patterns that may be manufactured trades (subsidy farming). Flags never change an amount; a reviewer clears or confirms them (integrity_reviews). Read the flags of a run WHERE run_id = run_explanation_source.source_run_id.';
COMMENT ON COLUMN integrity_flags.flag_id IS 'Flag id, increasing over all runs; named by settle flags review.';
COMMENT ON COLUMN integrity_flags.year IS 'Settlement year the flag is about (P3).';
COMMENT ON COLUMN integrity_flags.run_id IS 'settlement_runs.run_id of the run that computed the flag.';
COMMENT ON COLUMN integrity_flags.code IS 'THIN_THRESHOLD, RECIPROCAL_CALLERS, CALLER_RING, SHARED_CALLER_SET, LATE_CALLERS, ROUND_TRIP, PRICE_OUTLIER, CAP_SPLITTING or REFUND_AFTER_APPROVAL (docs/integrity.md).';
COMMENT ON COLUMN integrity_flags.flag_key IS 'Stable identity of the flag across runs: year|code|dataset_id|platform_id|parties. A review applies to every flag with the same key.';
COMMENT ON COLUMN integrity_flags.dataset_id IS 'Dataset the flag is about, NULL when it is about parties or several datasets (then named in figures).';
COMMENT ON COLUMN integrity_flags.platform_id IS 'Platform the flag is about, NULL when it does not apply.';
COMMENT ON COLUMN integrity_flags.parties IS 'Enterprises (or year-graph affiliate group ids, own:<id> for a party without records) involved, sorted.';
COMMENT ON COLUMN integrity_flags.evidence_trade_ids IS 'Trade ids that show the pattern (at most evidence_limit of integrity thresholds; platform_id:trade_id when trades of several platforms are named).';
COMMENT ON COLUMN integrity_flags.figures IS 'JSON object: the numbers behind the flag (counts, amounts as exact decimal strings, the thresholds used).';
COMMENT ON COLUMN integrity_flags.detail IS 'What was found, in one sentence a reviewer can check.';
COMMENT ON COLUMN integrity_flags.thresholds_sha256 IS 'SHA-256 of settlement/integrity/thresholds.toml as used.';

CREATE TABLE integrity_reviews (
    review_id BIGINT NOT NULL,
    flag_id BIGINT NOT NULL,
    flag_key VARCHAR NOT NULL,
    year INTEGER NOT NULL,
    outcome VARCHAR NOT NULL,
    reviewed_by VARCHAR NOT NULL,
    reviewed_at TIMESTAMPTZ NOT NULL,
    comment VARCHAR NOT NULL
);
COMMENT ON TABLE integrity_reviews IS 'Reviewer decisions on integrity flags, append-only: a later review of the same flag key supersedes an earlier one, nothing is updated or deleted.';
COMMENT ON COLUMN integrity_reviews.review_id IS 'Review id, increasing.';
COMMENT ON COLUMN integrity_reviews.flag_id IS 'integrity_flags.flag_id the reviewer named.';
COMMENT ON COLUMN integrity_reviews.flag_key IS 'integrity_flags.flag_key of that flag: the review covers the same flag in later runs.';
COMMENT ON COLUMN integrity_reviews.year IS 'Settlement year of the flag.';
COMMENT ON COLUMN integrity_reviews.outcome IS 'cleared (looked at, not a problem) or confirmed (the pattern is real and matters).';
COMMENT ON COLUMN integrity_reviews.reviewed_by IS 'Who reviewed (name given with --by).';
COMMENT ON COLUMN integrity_reviews.reviewed_at IS 'When the review was recorded (UTC instant).';
COMMENT ON COLUMN integrity_reviews.comment IS 'The reviewer''s reason, in words.';
