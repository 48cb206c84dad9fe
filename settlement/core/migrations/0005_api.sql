-- HTTP API (issue 5): bearer tokens (stored only as hashes) and the regulator SQL log.
-- Every table and column carries a COMMENT: regulators read this schema directly (CONTRACT).

CREATE TABLE api_tokens (
    token_id VARCHAR NOT NULL,
    token_sha256 VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    scope_id VARCHAR,
    label VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    created_by VARCHAR NOT NULL,
    revoked_at TIMESTAMPTZ,
    revoked_by VARCHAR
);
COMMENT ON TABLE api_tokens IS 'API bearer tokens (CONTRACT "HTTP API"): only the SHA-256 of each token is stored; the token itself is shown once at creation.';
COMMENT ON COLUMN api_tokens.token_id IS 'Public token id (tok_...), used to list and revoke; not a secret.';
COMMENT ON COLUMN api_tokens.token_sha256 IS 'Hex SHA-256 of the bearer token; the token is never stored.';
COMMENT ON COLUMN api_tokens.role IS 'operator (acts for one platform) | owner (sees one enterprise) | regulator (reads everything).';
COMMENT ON COLUMN api_tokens.scope_id IS 'operator: platform_id; owner: enterprise credit code (P4); regulator: NULL.';
COMMENT ON COLUMN api_tokens.label IS 'Free note given at creation (who holds the token).';
COMMENT ON COLUMN api_tokens.created_at IS 'When the token was created (UTC instant).';
COMMENT ON COLUMN api_tokens.created_by IS 'Who created it: the OS user for the CLI.';
COMMENT ON COLUMN api_tokens.revoked_at IS 'When the token was revoked; a revoked token gets 401. NULL while live.';
COMMENT ON COLUMN api_tokens.revoked_by IS 'Who revoked it.';

CREATE SEQUENCE sql_log_id_seq START 1;

CREATE TABLE sql_log (
    log_id BIGINT NOT NULL,
    who VARCHAR NOT NULL,
    queried_at TIMESTAMPTZ NOT NULL,
    sql VARCHAR NOT NULL,
    row_count BIGINT,
    ms DOUBLE NOT NULL,
    outcome VARCHAR NOT NULL,
    message VARCHAR
);
COMMENT ON TABLE sql_log IS 'Every query sent to POST /v1/sql, answered or refused (issue 5). Readable by regulators.';
COMMENT ON COLUMN sql_log.log_id IS 'Log entry id, increasing.';
COMMENT ON COLUMN sql_log.who IS 'Token that sent the query, as token:<token_id>.';
COMMENT ON COLUMN sql_log.queried_at IS 'When the query arrived (UTC instant).';
COMMENT ON COLUMN sql_log.sql IS 'The SQL text exactly as sent.';
COMMENT ON COLUMN sql_log.row_count IS 'Rows returned (after the row cap); NULL when refused or failed.';
COMMENT ON COLUMN sql_log.ms IS 'Wall time spent on the query in milliseconds (parse, execute, fetch).';
COMMENT ON COLUMN sql_log.outcome IS 'ok | truncated (row cap hit) | refused (not a single read statement) | denied (sandbox refused file/config access) | timeout | busy (too many queries at once, 429) | error.';
COMMENT ON COLUMN sql_log.message IS 'Why it was refused or failed, NULL when ok.';
