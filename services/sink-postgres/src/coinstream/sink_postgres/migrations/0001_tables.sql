-- sink-postgres schema v1: canonical events, one table per kind of fact.
-- Every table has a natural unique key that includes its time column (current-state tables are
-- keyed by entity and guarded by event time), so replays and duplicates are absorbed.
-- Timestamps are timestamptz; prices and amounts are unconstrained numeric (no truncation of
-- micro-priced tokens).

CREATE TABLE IF NOT EXISTS prices (
    event_time       timestamptz NOT NULL,
    event_id         text        NOT NULL,
    source           text        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('trade', 'quote', 'ticker', 'aggregate')),
    symbol           text        NOT NULL,
    base             text        NOT NULL,
    quote            text        NOT NULL,
    asset_id         text,
    native_symbol    text,
    price            numeric     CHECK (price >= 0),
    size             numeric     CHECK (size >= 0),
    side             text        CHECK (side IN ('buy', 'sell')),
    trade_id         text,
    bid              numeric     CHECK (bid >= 0),
    bid_size         numeric     CHECK (bid_size >= 0),
    ask              numeric     CHECK (ask >= 0),
    ask_size         numeric     CHECK (ask_size >= 0),
    volume_24h       numeric,
    quote_volume_24h numeric,
    market_cap       numeric,
    change_24h_pct   numeric,
    revision         integer     NOT NULL DEFAULT 0,
    received_at      timestamptz NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_time, event_id)
);
CREATE INDEX IF NOT EXISTS prices_venue_symbol_time ON prices (source, symbol, event_time DESC);

CREATE TABLE IF NOT EXISTS consolidated_prices (
    event_time       timestamptz NOT NULL,
    event_id         text        NOT NULL,
    source           text        NOT NULL,
    symbol           text        NOT NULL,
    base             text        NOT NULL,
    quote            text        NOT NULL,
    asset_id         text,
    price            numeric     CHECK (price >= 0),
    bid              numeric     CHECK (bid >= 0),
    ask              numeric     CHECK (ask >= 0),
    volume_24h       numeric,
    contributors     text[]      NOT NULL DEFAULT '{}',
    revision         integer     NOT NULL DEFAULT 0,
    received_at      timestamptz NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_time, event_id)
);
CREATE INDEX IF NOT EXISTS consolidated_symbol_time ON consolidated_prices (symbol, event_time DESC);

CREATE TABLE IF NOT EXISTS candles (
    venue            text        NOT NULL,
    symbol           text        NOT NULL,
    timeframe        text        NOT NULL,
    open_time        timestamptz NOT NULL,
    close_time       timestamptz NOT NULL,
    open             numeric     NOT NULL CHECK (open >= 0),
    high             numeric     NOT NULL CHECK (high >= 0),
    low              numeric     NOT NULL CHECK (low >= 0),
    close            numeric     NOT NULL CHECK (close >= 0),
    volume           numeric     NOT NULL CHECK (volume >= 0),
    quote_volume     numeric     NOT NULL,
    vwap             numeric     NOT NULL,
    trade_count      integer     NOT NULL CHECK (trade_count >= 0),
    final            boolean     NOT NULL DEFAULT false,
    revision         integer     NOT NULL DEFAULT 0,
    event_id         text        NOT NULL,
    source           text        NOT NULL,
    received_at      timestamptz NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (low <= high),
    CHECK (close_time > open_time),
    PRIMARY KEY (venue, symbol, timeframe, open_time)
);

CREATE TABLE IF NOT EXISTS sentiment (
    source           text        NOT NULL,
    subject          text        NOT NULL,
    metric           text        NOT NULL,
    event_time       timestamptz NOT NULL,
    value            numeric     NOT NULL,
    classification   text,
    unit             text,
    revision         integer     NOT NULL DEFAULT 0,
    event_id         text        NOT NULL,
    received_at      timestamptz NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, subject, metric, event_time)
);

-- Current-state entity tables share their leading columns so one trigger keeps their history.
CREATE TABLE IF NOT EXISTS assets (
    entity_id          text        PRIMARY KEY,
    name               text,
    symbol             text,
    slug               text,
    description        text,
    source             text        NOT NULL,
    event_id           text        NOT NULL,
    event_time         timestamptz NOT NULL,
    revision           integer     NOT NULL DEFAULT 0,
    received_at        timestamptz NOT NULL,
    data               jsonb       NOT NULL,
    categories         text[]      NOT NULL DEFAULT '{}',
    source_ids         jsonb       NOT NULL DEFAULT '{}',
    platforms          jsonb       NOT NULL DEFAULT '{}',
    links              jsonb       NOT NULL DEFAULT '{}',
    circulating_supply numeric,
    total_supply       numeric,
    max_supply         numeric,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS exchanges (
    entity_id          text        PRIMARY KEY,
    name               text,
    symbol             text,
    slug               text,
    description        text,
    source             text        NOT NULL,
    event_id           text        NOT NULL,
    event_time         timestamptz NOT NULL,
    revision           integer     NOT NULL DEFAULT 0,
    received_at        timestamptz NOT NULL,
    data               jsonb       NOT NULL,
    country            text,
    year_established   integer,
    trust_score        numeric,
    volume_24h         numeric,
    links              jsonb       NOT NULL DEFAULT '{}',
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS dex_pairs (
    entity_id          text        PRIMARY KEY,
    name               text,
    symbol             text,
    slug               text,
    description        text,
    source             text        NOT NULL,
    event_id           text        NOT NULL,
    event_time         timestamptz NOT NULL,
    revision           integer     NOT NULL DEFAULT 0,
    received_at        timestamptz NOT NULL,
    data               jsonb       NOT NULL,
    network            text,
    dex                text,
    contract_address   text,
    base_asset_id      text,
    quote_asset_id     text,
    volume_24h         numeric,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Each venue's trading pairs mapped to canonical assets. Filled from price events (first/last
-- seen) and from instrument metadata events.
CREATE TABLE IF NOT EXISTS instruments (
    venue              text        NOT NULL,
    symbol             text        NOT NULL,
    native_symbol      text,
    base               text,
    quote              text,
    base_asset_id      text,
    quote_asset_id     text,
    entity_id          text,
    name               text,
    data               jsonb,
    first_seen         timestamptz NOT NULL,
    last_seen          timestamptz NOT NULL,
    PRIMARY KEY (venue, symbol)
);

CREATE TABLE IF NOT EXISTS metadata_history (
    entity_id          text        NOT NULL,
    valid_from         timestamptz NOT NULL,
    valid_to           timestamptz NOT NULL,
    entity             text        NOT NULL,
    name               text,
    symbol             text,
    slug               text,
    description        text,
    data               jsonb       NOT NULL,
    PRIMARY KEY (entity_id, valid_from)
);

CREATE OR REPLACE FUNCTION sink_keep_metadata_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.name, OLD.symbol, OLD.slug, OLD.description)
       IS DISTINCT FROM (NEW.name, NEW.symbol, NEW.slug, NEW.description) THEN
        INSERT INTO metadata_history
            (entity_id, valid_from, valid_to, entity, name, symbol, slug, description, data)
        VALUES
            (OLD.entity_id, OLD.event_time, NEW.event_time, TG_ARGV[0],
             OLD.name, OLD.symbol, OLD.slug, OLD.description, OLD.data)
        ON CONFLICT (entity_id, valid_from) DO NOTHING;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS assets_history ON assets;
CREATE TRIGGER assets_history BEFORE UPDATE ON assets
    FOR EACH ROW EXECUTE FUNCTION sink_keep_metadata_history('asset');
DROP TRIGGER IF EXISTS exchanges_history ON exchanges;
CREATE TRIGGER exchanges_history BEFORE UPDATE ON exchanges
    FOR EACH ROW EXECUTE FUNCTION sink_keep_metadata_history('exchange');
DROP TRIGGER IF EXISTS dex_pairs_history ON dex_pairs;
CREATE TRIGGER dex_pairs_history BEFORE UPDATE ON dex_pairs
    FOR EACH ROW EXECUTE FUNCTION sink_keep_metadata_history('dex_pair');

CREATE TABLE IF NOT EXISTS feed_status (
    event_time       timestamptz NOT NULL,
    event_id         text        NOT NULL,
    source           text        NOT NULL,
    status           text        NOT NULL,
    symbol           text,
    channel          text,
    window_start     timestamptz,
    window_end       timestamptz,
    cause            text        NOT NULL DEFAULT '',
    details          jsonb       NOT NULL DEFAULT '{}',
    revision         integer     NOT NULL DEFAULT 0,
    received_at      timestamptz NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_time, event_id)
);
CREATE INDEX IF NOT EXISTS feed_status_source_time ON feed_status (source, event_time DESC);

CREATE TABLE IF NOT EXISTS service_health (
    event_time       timestamptz NOT NULL,
    event_id         text        NOT NULL,
    service          text        NOT NULL,
    instance         text        NOT NULL,
    status           text        NOT NULL,
    checks           jsonb       NOT NULL DEFAULT '{}',
    counters         jsonb       NOT NULL DEFAULT '{}',
    revision         integer     NOT NULL DEFAULT 0,
    received_at      timestamptz NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_time, event_id)
);
CREATE INDEX IF NOT EXISTS service_health_service_time ON service_health (service, event_time DESC);

-- Alert state changes as published on the alerts topic (pending, firing, resolved, notified...).
CREATE TABLE IF NOT EXISTS alert_events (
    event_time       timestamptz NOT NULL,
    event_id         text        NOT NULL,
    source           text        NOT NULL,
    fingerprint      text        NOT NULL,
    rule_id          text        NOT NULL,
    rule_type        text        NOT NULL,
    status           text        NOT NULL,
    severity         text        NOT NULL,
    subject          text,
    summary          text        NOT NULL,
    labels           jsonb       NOT NULL DEFAULT '{}',
    value            numeric,
    threshold        numeric,
    starts_at        timestamptz,
    ends_at          timestamptz,
    receivers        text[]      NOT NULL DEFAULT '{}',
    revision         integer     NOT NULL DEFAULT 0,
    received_at      timestamptz NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_time, event_id)
);
CREATE INDEX IF NOT EXISTS alert_events_fingerprint_time ON alert_events (fingerprint, event_time DESC);
