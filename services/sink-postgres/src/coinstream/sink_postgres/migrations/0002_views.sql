-- Views for the common historical questions.

-- The last traded (or reported) price per venue and instrument, with the asset it belongs to.
CREATE OR REPLACE VIEW latest_prices AS
SELECT DISTINCT ON (source, symbol)
    source AS venue, symbol, base, quote, asset_id, kind, price, size, event_time, received_at
FROM prices
WHERE price IS NOT NULL
ORDER BY source, symbol, event_time DESC;

-- The last best bid/ask per venue and instrument.
CREATE OR REPLACE VIEW latest_quotes AS
SELECT DISTINCT ON (source, symbol)
    source AS venue, symbol, base, quote, asset_id, bid, bid_size, ask, ask_size, event_time
FROM prices
WHERE bid IS NOT NULL OR ask IS NOT NULL
ORDER BY source, symbol, event_time DESC;

-- Daily OHLCV (UTC days) rolled up from the 1-minute candles built from real trades.
CREATE OR REPLACE VIEW daily_ohlcv AS
SELECT
    venue,
    symbol,
    date_trunc('day', open_time, 'UTC') AS day,
    (array_agg(open ORDER BY open_time))[1] AS open,
    max(high) AS high,
    min(low) AS low,
    (array_agg(close ORDER BY open_time DESC))[1] AS close,
    sum(volume) AS volume,
    sum(quote_volume) AS quote_volume,
    sum(trade_count) AS trade_count,
    count(*) AS candles
FROM candles
WHERE timeframe = '1m'
GROUP BY venue, symbol, date_trunc('day', open_time, 'UTC');

-- Sentiment readings over time with the change from the previous reading of the same series.
CREATE OR REPLACE VIEW sentiment_history AS
SELECT
    source, subject, metric, event_time, value, classification, unit,
    value - lag(value) OVER series AS change
FROM sentiment
WINDOW series AS (PARTITION BY source, subject, metric ORDER BY event_time);

-- Every known version of an asset: the current row plus the superseded ones.
CREATE OR REPLACE VIEW asset_versions AS
SELECT entity_id, name, symbol, slug, description, event_time AS valid_from,
       NULL::timestamptz AS valid_to, true AS current
FROM assets
UNION ALL
SELECT entity_id, name, symbol, slug, description, valid_from, valid_to, false
FROM metadata_history
WHERE entity = 'asset';
