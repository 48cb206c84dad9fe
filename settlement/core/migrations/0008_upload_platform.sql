-- uploads.platform_id (CONTRACT "Regulator views"; issue 16): the one platform of an upload's stored trades,
-- so scope checks (an operator sees and matches only its platform's uploads) read one column.
-- New uploads get it at store time (settlement.inputs.ingest); existing ones are backfilled here.

ALTER TABLE uploads ADD COLUMN platform_id VARCHAR;
COMMENT ON COLUMN uploads.platform_id IS 'The platform of the trades the upload stored when they all name one platform; NULL when they name several, or when it stored none (rejected, or every row a duplicate).';

UPDATE uploads SET platform_id = one.platform_id
FROM (SELECT upload_id, min(platform_id) AS platform_id FROM trade_rows
      GROUP BY upload_id HAVING count(DISTINCT platform_id) = 1) one
WHERE uploads.id = one.upload_id;
