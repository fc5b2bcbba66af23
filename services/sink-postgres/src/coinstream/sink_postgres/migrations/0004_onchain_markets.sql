-- On-chain prices, trades and candles (the CoinGecko and CoinMarketCap streams).

ALTER TABLE prices ADD COLUMN IF NOT EXISTS network          text;
ALTER TABLE prices ADD COLUMN IF NOT EXISTS contract_address text;
ALTER TABLE prices ADD COLUMN IF NOT EXISTS pool_address     text;
ALTER TABLE prices ADD COLUMN IF NOT EXISTS tx_hash          text;
ALTER TABLE prices ADD COLUMN IF NOT EXISTS quote_size       numeric CHECK (quote_size >= 0);

-- An on-chain candle is stored with venue '<source>@<network>:<pool or contract>', so two
-- pools of one pair never share a row (the key stays (venue, symbol, timeframe, open_time)).
ALTER TABLE candles ADD COLUMN IF NOT EXISTS network          text;
ALTER TABLE candles ADD COLUMN IF NOT EXISTS pool_address     text;
ALTER TABLE candles ADD COLUMN IF NOT EXISTS contract_address text;
ALTER TABLE candles ADD COLUMN IF NOT EXISTS estimated        text[];

-- Latest prices and quotes per venue instrument: two pools of one pair are two rows.
DROP VIEW IF EXISTS latest_prices;
CREATE VIEW latest_prices AS
SELECT DISTINCT ON (source, symbol, market, asset_id, network, pool_address, contract_address)
    source AS venue, symbol, base, quote, asset_id, coalesce(market, 'spot') AS market,
    kind, price, size, event_time, received_at, network, pool_address, contract_address
FROM prices
WHERE price IS NOT NULL
ORDER BY source, symbol, market, asset_id, network, pool_address, contract_address,
    event_time DESC;

DROP VIEW IF EXISTS latest_quotes;
CREATE VIEW latest_quotes AS
SELECT DISTINCT ON (source, symbol, market, asset_id, network, pool_address, contract_address)
    source AS venue, symbol, base, quote, asset_id, coalesce(market, 'spot') AS market,
    bid, bid_size, ask, ask_size, event_time, network, pool_address, contract_address
FROM prices
WHERE bid IS NOT NULL OR ask IS NOT NULL
ORDER BY source, symbol, market, asset_id, network, pool_address, contract_address,
    event_time DESC;
