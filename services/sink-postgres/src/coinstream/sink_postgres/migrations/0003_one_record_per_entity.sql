-- One coherent record per asset, exchange, DEX pair and instrument; unambiguous keys.

-- Current entity rows are merged field by field by the sink (coinstream.schemas.merge):
-- field_sources says which source set each field and when; changed_by and changed_fields
-- which source made the current version and what it changed; version_since when it began
-- (descriptive fields; supplies and volumes update a version in place).
ALTER TABLE assets    ADD COLUMN IF NOT EXISTS field_sources  jsonb       NOT NULL DEFAULT '{}';
ALTER TABLE assets    ADD COLUMN IF NOT EXISTS changed_by     text;
ALTER TABLE assets    ADD COLUMN IF NOT EXISTS changed_fields text[]      NOT NULL DEFAULT '{}';
ALTER TABLE assets    ADD COLUMN IF NOT EXISTS version_since  timestamptz;
ALTER TABLE exchanges ADD COLUMN IF NOT EXISTS field_sources  jsonb       NOT NULL DEFAULT '{}';
ALTER TABLE exchanges ADD COLUMN IF NOT EXISTS changed_by     text;
ALTER TABLE exchanges ADD COLUMN IF NOT EXISTS changed_fields text[]      NOT NULL DEFAULT '{}';
ALTER TABLE exchanges ADD COLUMN IF NOT EXISTS version_since  timestamptz;
ALTER TABLE exchanges ADD COLUMN IF NOT EXISTS volume_unit    text;
ALTER TABLE dex_pairs ADD COLUMN IF NOT EXISTS field_sources  jsonb       NOT NULL DEFAULT '{}';
ALTER TABLE dex_pairs ADD COLUMN IF NOT EXISTS changed_by     text;
ALTER TABLE dex_pairs ADD COLUMN IF NOT EXISTS changed_fields text[]      NOT NULL DEFAULT '{}';
ALTER TABLE dex_pairs ADD COLUMN IF NOT EXISTS version_since  timestamptz;
ALTER TABLE dex_pairs ADD COLUMN IF NOT EXISTS volume_unit    text;
UPDATE assets    SET version_since = event_time WHERE version_since IS NULL;
UPDATE exchanges SET version_since = event_time WHERE version_since IS NULL;
UPDATE dex_pairs SET version_since = event_time WHERE version_since IS NULL;

-- History: one row per superseded version, written by the sink only when a descriptive field
-- changed, with the source that made that version and the fields it changed. The triggers
-- that copied every replaced row (four versions for one rename) are gone.
DROP TRIGGER IF EXISTS assets_history ON assets;
DROP TRIGGER IF EXISTS exchanges_history ON exchanges;
DROP TRIGGER IF EXISTS dex_pairs_history ON dex_pairs;
DROP FUNCTION IF EXISTS sink_keep_metadata_history();
ALTER TABLE metadata_history ADD COLUMN IF NOT EXISTS changed_by     text;
ALTER TABLE metadata_history ADD COLUMN IF NOT EXISTS changed_fields text[] NOT NULL DEFAULT '{}';

-- Prices: the market type of a venue instrument (NULL: spot).
ALTER TABLE prices ADD COLUMN IF NOT EXISTS market text;

-- Instruments: keyed by venue and the price key (symbol, qualified by market for derivatives
-- and by asset id for assets the registry does not know), so two coins sharing a ticker or a
-- spot and a perpetual market never share a row.
ALTER TABLE instruments ADD COLUMN IF NOT EXISTS instrument_key text;
ALTER TABLE instruments ADD COLUMN IF NOT EXISTS market text;
UPDATE instruments SET instrument_key = symbol WHERE instrument_key IS NULL;
ALTER TABLE instruments ALTER COLUMN instrument_key SET NOT NULL;
ALTER TABLE instruments DROP CONSTRAINT IF EXISTS instruments_pkey;
ALTER TABLE instruments ADD PRIMARY KEY (venue, instrument_key);
CREATE INDEX IF NOT EXISTS instruments_venue_symbol ON instruments (venue, symbol);

-- Latest prices and quotes per venue instrument (market and asset id disambiguate).
DROP VIEW IF EXISTS latest_prices;
CREATE VIEW latest_prices AS
SELECT DISTINCT ON (source, symbol, market, asset_id)
    source AS venue, symbol, base, quote, asset_id, coalesce(market, 'spot') AS market,
    kind, price, size, event_time, received_at
FROM prices
WHERE price IS NOT NULL
ORDER BY source, symbol, market, asset_id, event_time DESC;

DROP VIEW IF EXISTS latest_quotes;
CREATE VIEW latest_quotes AS
SELECT DISTINCT ON (source, symbol, market, asset_id)
    source AS venue, symbol, base, quote, asset_id, coalesce(market, 'spot') AS market,
    bid, bid_size, ask, ask_size, event_time
FROM prices
WHERE bid IS NOT NULL OR ask IS NOT NULL
ORDER BY source, symbol, market, asset_id, event_time DESC;

-- Every version of an asset: the current row plus the superseded ones, with who changed what.
DROP VIEW IF EXISTS asset_versions;
CREATE VIEW asset_versions AS
SELECT entity_id, name, symbol, slug, description, version_since AS valid_from,
       NULL::timestamptz AS valid_to, changed_by, changed_fields, true AS current
FROM assets
UNION ALL
SELECT entity_id, name, symbol, slug, description, valid_from, valid_to, changed_by,
       changed_fields, false
FROM metadata_history
WHERE entity = 'asset';
