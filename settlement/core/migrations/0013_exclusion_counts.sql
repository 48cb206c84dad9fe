-- Exclusion counts (issues 12 and 14): the regulator view `exclusions` derives a run's exclusions on demand,
-- which costs a whole re-derivation of the run (35 s and 5.7 GB at 2M trades, out of memory at the store's
-- 2GB limit). The readers that only count (settlement.explain, the lifecycle statement, the console) read
-- this table instead: the run writes its counts in the transaction that stores its results
-- (settlement/run.py, one INSERT ... SELECT ... GROUP BY over the staged exclusions), and this migration
-- backfills every run stored before it from the view (a run without exclusions has no rows).
-- The backfill SELECT is settlement.clauses.exclusions.counts_view_sql() (tests/test_exclusion_counts.py
-- checks this file holds exactly that text). DuckDB's planner flips the view's LEFT JOINs to build hash
-- tables on the sales (it misjudges `year(local_date) = p.year` as selective): on a 2M-trade store with one
-- run that ran out of memory at the 2GB default; with the flip disabled for this one statement it took
-- 49 s and 1.7 GB (a larger store may need SETTLE_MEMORY_LIMIT raised for the one open that migrates).

CREATE TABLE run_exclusion_counts (
    run_id BIGINT NOT NULL,
    year INTEGER NOT NULL,
    clause INTEGER NOT NULL,
    dataset_id VARCHAR,
    owner_id VARCHAR,
    platform_id VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    trades BIGINT NOT NULL
);
COMMENT ON TABLE run_exclusion_counts IS 'The rows of the view exclusions counted per run, clause, dataset, owner, platform, reason and kind (P12): what count(*) ... GROUP BY on the view gives, without deriving it. Filter on run_id (run_explanation_source.source_run_id).';
COMMENT ON COLUMN run_exclusion_counts.run_id IS 'settlement_runs.run_id of the run that found the exclusions.';
COMMENT ON COLUMN run_exclusion_counts.year IS 'Settlement year (of the sale; a refund belongs to its sale''s year, P9).';
COMMENT ON COLUMN run_exclusion_counts.clause IS '6 (dataset reward, P10) or 7 (platform subsidy, P11).';
COMMENT ON COLUMN run_exclusion_counts.dataset_id IS 'Dataset of the trades (of the refunded sale for a refund).';
COMMENT ON COLUMN run_exclusion_counts.owner_id IS 'Clause 6 owner of the registration period of the sale''s date (P10.1; a refund: its live sale''s); NULL when no period covers it or the run left no registry record.';
COMMENT ON COLUMN run_exclusion_counts.platform_id IS 'Platform of the trades.';
COMMENT ON COLUMN run_exclusion_counts.reason IS 'P12 code (see exclusions.reason).';
COMMENT ON COLUMN run_exclusion_counts.kind IS 'sale or refund (P9).';
COMMENT ON COLUMN run_exclusion_counts.trades IS 'How many rows of the view exclusions (trades) have these values.';

SET disabled_optimizers = 'build_side_probe_side';
INSERT INTO run_exclusion_counts
SELECT x.run_id, x.year, x.clause, x.dataset_id, d.owner_id, x.platform_id, x.reason, x.kind,
       count(*) AS trades
FROM exclusions x
LEFT JOIN (SELECT u.run_id, t.trade_id, t.platform_id, t.dataset_id, t.seller_id, t.buyer_id, t.local_date, t.amount, t.kind, t.ref_trade_id, t.upload_id, u.retracted FROM trade_rows t JOIN exclusion_uploads u ON u.upload_id = t.upload_id) t ON t.run_id = x.run_id AND t.platform_id = x.platform_id AND t.trade_id = x.trade_id
      AND t.upload_id = x.upload_id
LEFT JOIN (SELECT u.run_id, t.trade_id, t.platform_id, t.dataset_id, t.seller_id, t.buyer_id, t.local_date, t.amount, t.kind, t.ref_trade_id, t.upload_id, u.retracted FROM trade_rows t JOIN exclusion_uploads u ON u.upload_id = t.upload_id) ls ON x.kind = 'refund' AND ls.run_id = x.run_id AND ls.kind = 'sale' AND NOT ls.retracted
      AND ls.platform_id = x.platform_id AND ls.trade_id = t.ref_trade_id
LEFT JOIN exclusion_datasets d ON d.run_id = x.run_id AND d.dataset_id = x.dataset_id
      AND (CASE WHEN x.kind = 'sale' THEN t.local_date ELSE ls.local_date END)
          BETWEEN coalesce(d.owner_from, DATE '0001-01-01') AND coalesce(d.owner_until, DATE '9999-12-31')
GROUP BY x.run_id, x.year, x.clause, x.dataset_id, d.owner_id, x.platform_id, x.reason, x.kind;
RESET disabled_optimizers;
