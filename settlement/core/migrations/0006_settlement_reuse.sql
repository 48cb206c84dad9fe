-- Which run's explanations describe a run (issue 4). A run whose inputs fingerprint equals the previous
-- run's of the same year reuses that run's targets and stores no new exclusions / explanations (same
-- inputs, same results; at 10M trades that saves copying millions of exclusion rows per repeated run).
-- Owned by settlement/run.py.

CREATE VIEW run_explanation_source AS
WITH r AS (
    SELECT run_id, year, inputs_fingerprint,
           lag(inputs_fingerprint) OVER (PARTITION BY year ORDER BY run_id) AS prev_fingerprint
    FROM settlement_runs
), starts AS (
    SELECT run_id, year,
           CASE WHEN prev_fingerprint IS DISTINCT FROM inputs_fingerprint THEN run_id END AS start_run
    FROM r
)
SELECT run_id, year,
       max(start_run) OVER (PARTITION BY year ORDER BY run_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
           AS source_run_id
FROM starts;
COMMENT ON VIEW run_explanation_source IS 'For every settlement run: the run whose exclusions and run_* explanation rows describe it (itself, or the first of its streak of runs of the same year with the same inputs fingerprint).';
COMMENT ON COLUMN run_explanation_source.run_id IS 'settlement_runs.run_id.';
COMMENT ON COLUMN run_explanation_source.year IS 'Settlement year.';
COMMENT ON COLUMN run_explanation_source.source_run_id IS 'Read exclusions / run_dataset_results / run_caller_buyers / run_platform_results WHERE run_id = source_run_id.';
