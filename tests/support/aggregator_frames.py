"""Verbatim frames of the CoinGecko and CoinMarketCap WebSocket APIs, copied byte for byte
(whitespace and line breaks included) from ``shared/reference/wire-formats-aggregator-ws.md``,
which cites the vendor page or client each one comes from. Shared by the ingest-ws, simulator
and normalizer tests, so every documented variant is exercised by all three.
"""

from __future__ import annotations

# -- CoinGecko: client commands (1.6, 1.7, 1.9) ----------------------------------------------
CG_SUBSCRIBE_C1 = '{"command":"subscribe","identifier":"{\\"channel\\":\\"CGSimplePrice\\"}"}'
CG_SUBSCRIBE_G1 = (
    '{"command":"subscribe","identifier":"{\\"channel\\":\\"OnchainSimpleTokenPrice\\"}"}'
)
CG_SET_C1 = (
    '{"command":"message","identifier":"{\\"channel\\":\\"CGSimplePrice\\"}","data":"{\\"coin_id'
    '\\":[\\"bitcoin\\"],\\"vs_currencies\\":[\\"usd\\"],\\"action\\":\\"set_tokens\\"}"}'
)
CG_SET_C1_OLD = (
    '{"command":"message","identifier":"{\\"channel\\":\\"CGSimplePrice\\"}","data":"{\\"coin_id'
    '\\":[\\"ethereum\\",\\"bitcoin\\"],\\"action\\":\\"set_tokens\\"}"}'
)
CG_SET_G1 = (
    '{"command":"message","identifier":"{\\"channel\\":\\"OnchainSimpleTokenPrice\\"}","data":"{'
    '\\"network_id:token_addresses\\":[\\"bsc:0x55d398326f99059ff775485246999027b3197955\\"],'
    '\\"action\\":\\"set_tokens\\"}"}'
)
CG_SET_G1_TWO = (
    '{"command":"message","identifier":"{\\"channel\\":\\"OnchainSimpleTokenPrice\\"}","data":"{'
    '\\"network_id:token_addresses\\":[\\"bsc:0x55d398326f99059ff775485246999027b3197955\\",\\"'
    'eth:0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2\\"],\\"action\\":\\"set_tokens\\"}"}'
)
CG_SET_G2 = (
    '{"command":"message","identifier":"{\\"channel\\":\\"OnchainTrade\\"}","data":"{\\"network_'
    'id:pool_addresses\\":[\\"bsc:0x172fcd41e0913e95784454622d1c3724f546f849\\"],\\"action\\":'
    '\\"set_pools\\"}"}'
)
CG_UNSET_G3 = (
    '{"command":"message","identifier":"{\\"channel\\":\\"OnchainOHLCV\\"}","data":"{\\"network_'
    'id:pool_addresses\\":[\\"eth:0xc7bbec68d12a0d1830360f8ec58fa599ba1b0e9b\\"],\\"interval\\"'
    ':\\"1m\\",\\"token\\":\\"base\\",\\"action\\":\\"unset_pools\\"}"}'
)
CG_UNSET_C1 = (
    '{"command":"message","identifier":"{\\"channel\\":\\"CGSimplePrice\\"}","data":"{\\"coin_id'
    '\\":[\\"ethereum\\"],\\"action\\":\\"unset_tokens\\"}"}'
)
CG_UNSUBSCRIBE_G1 = (
    '{"command":"unsubscribe","identifier":"{\\"channel\\":\\"OnchainSimpleTokenPrice\\"}"}'
)
CG_UNSUBSCRIBE_G3 = '{"command":"unsubscribe","identifier":"{\\"channel\\":\\"OnchainOHLCV\\"}"}'

# -- CoinGecko: server control frames (1.4, 1.6, 1.8, 1.9) ----------------------------------
CG_GREETING_CODE = """{
  "code": 3000,
  "message": "Connection established",
  "uuid": "YOUR_SESSION_ID"
}"""
CG_WELCOME = """{
  "type": "welcome",
  "sid": "YOUR_SESSION_ID"
}"""
CG_CONFIRM = """{
  "type": "confirm_subscription",
  "identifier": "{\\"channel\\":\\"CGSimplePrice\\"}"
}"""
CG_CONFIRM_COMPACT = (
    '{"type":"confirm_subscription","identifier":"{\\"channel\\":\\"OnchainSimpleTokenPrice\\"}"}'
)
CG_ACK_C1 = """{
  "code": 2000,
  "message": "Subscribed to bitcoin in usd"
}"""
CG_ACK_C1_OLD = """{
"code": 2000,
"message": "Subscription is successful for ethereum"
}"""
CG_ACK_G1 = """{
  "code": 2000,
  "message": "Subscription successful for bsc:0x55d398326f99059ff775485246999027b3197955"
}"""
CG_ACK_UNSET_G1 = """{
  "code":2000,
  "message":"Unsubscription is successful for bsc:0x55d398326f99059ff775485246999027b3197955"
}"""
CG_ACK_UNSET_G3 = """{
    "code":2000,
    "message":"Unsubscription is successful for eth:0xc7bbec68d12a0d1830360f8ec58fa599ba1b0e9b:1m:base"
  }"""
CG_ACK_UNSUBSCRIBE_TOKENS = """{
  "code":2000,
  "message":"Unsubscription is successful for all tokens"
}"""
CG_ACK_UNSUBSCRIBE_POOLS = """{
    "code":2000,
    "message":"Unsubscription is successful for all pools"
  }"""
CG_CONTROL = {
    "greeting_code": CG_GREETING_CODE,
    "welcome": CG_WELCOME,
    "confirm": CG_CONFIRM,
    "confirm_compact": CG_CONFIRM_COMPACT,
    "ack_c1": CG_ACK_C1,
    "ack_c1_old": CG_ACK_C1_OLD,
    "ack_g1": CG_ACK_G1,
    "ack_unset_g1": CG_ACK_UNSET_G1,
    "ack_unset_g3": CG_ACK_UNSET_G3,
    "ack_unsubscribe_tokens": CG_ACK_UNSUBSCRIBE_TOKENS,
    "ack_unsubscribe_pools": CG_ACK_UNSUBSCRIBE_POOLS,
}

# -- CoinGecko: data pushes (1.10) ------------------------------------------------------------
CG_C1 = """{
"c": "C1",
"i": "bitcoin",
"vs": "usd",
"p": 61696.68,
"pp": 1.42,
"m": 1236047139289.68,
"v": 30595921115.54,
"t": 1780839768
}"""
CG_C1_OLD = """{
"c": "C1",
"i": "ethereum",
"m": 312938652962.8005,
"p": 2591.080889351465,
"pp": 1.3763793110454519,
"t": 1747808150.269067,
"v": 20460612214.801384
}"""
CG_C1_CLI = '{"c":"C1","i":"bitcoin","p":69982.9,"pp":-0.11,"m":1.39e12,"v":4.68e10,"t":1773277871}'
CG_G1 = """{
"c": "G1",
"n": "bsc",
"ta": "0x55d398326f99059ff775485246999027b3197955",
"p": 1.0002630480973,
"pp": 0.04574653488,
"m": 9187408426.01,
"v": 1999727791.12,
"t": 1780840630
}"""
CG_G1_PILOT = """{
  "c": "G1",
  "n": "berachain-bartio",
  "ta": "0x7507c1dc16935b82698e4c63f2746a2fcf994df8",
  "p": 0.999457718373347,
  "pp": -0.009028866490825653,
  "m": 1317802988326.25,
  "v": 1476864199.38384,
  "t": 1737427063
}"""
CG_G2 = """{
"c": "G2",
"n": "bsc",
"pa": "0x172fcd41e0913e95784454622d1c3724f546f849",
"tx": "0x3aa702e87ebc87cc4f877ab494afa0ac59f46873c147ee406a546c1e12ab5f57",
"ty": "s",
"to": 0.0369078635593666,
"toq": 0.000062600168318069,
"vo": 0.036858979105679,
"pc": 0.0016961200752619,
"pu": 0.998675500314209,
"t": 1780840929000
}"""
CG_G2_FIXTURE = (
    '{"ch":"G2","n":"bsc","pa":"0xpool","tx":"0xtx","ty":"b","to":11.08,"toq":0.01,"vo":"2.75",'
    '"pc":"0.0002","pu":"3656.89","t":1724927796000}'
)
CG_G3 = """{
"ch": "G3",
"n": "bsc",
"pa": "0x172fcd41e0913e95784454622d1c3724f546f849",
"to": "base",
"i": "1m",
"o": 1.00052534269941,
"h": 1.00063525778742,
"l": 0.999952061655863,
"c": 0.999952061655863,
"v": 59672.13452671968,
"t": 1780841100
}"""
CG_G3_FIXTURE = (
    '{"ch":"G3","n":"eth","pa":"0xpool","to":"base","i":"1m","o":1.1,"h":2.2,"l":0.9,"c":1.8,'
    '"v":10.5,"t":1753803600}'
)

# -- CoinMarketCap (2.4, 2.5, 2.7) ----------------------------------------------------------------
CMC_SUBSCRIBE_MARKET = (
    '{ "id": 1, "method": "subscribe", "channel": "market@crypto_latest_price", "params": { '
    '"crypto_ids": [ 1, 1027, 1839 ] } }'
)
CMC_SUBSCRIBE_KLINE = """{
  "id": 2,
  "method": "subscribe",
  "channel": "onchain@kline",
  "params": {
    "platform_id": 14,
    "address": [
      "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d"
    ],
    "interval": "1m"
  }
}"""
CMC_UNSUBSCRIBE_ONE = """{
  "id": 2,
  "method": "unsubscribe",
  "channel": "onchain@kline",
  "params": { "platform_id": 14, "address": ["0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d"], "interval": "1m" }
}"""
CMC_UNSUBSCRIBE_CHANNEL = '{ "id": 3, "method": "unsubscribe", "channel": "onchain@kline" }'
CMC_UNSUBSCRIBE_ALL = '{ "id": 4, "method": "unsubscribe_all" }'
CMC_PING = '{ "id": 1, "method": "ping" }'
CMC_ACK = """{
  "type": "ack",
  "id": 1,
  "code": 0,
  "msg": "ok",
  "channel": "market@crypto_latest_price",
  "sub_count": 1,
  "sub_limit": 100
}"""
CMC_PONG = '{ "type": "pong", "id": 1, "code": 0, "ts": 1778659200000 }'
CMC_PONG_UNTYPED = '{"id":2,"code":0,"ts":1,"msg":"PONG"}'
CMC_ERROR = """{
  "type": "error",
  "id": 1,
  "status": {
    "timestamp": "2026-05-21T01:57:09.125Z",
    "error_code": "2401",
    "category": "PROTOCOL",
    "error_message": "Missing required param for channel.",
    "error_detail": "Param 'crypto_ids' is required for channel 'market@crypto_latest_price'."
  }
}"""
CMC_MARKET = """{
  "type": "data",
  "channel": "market@crypto_latest_price",
  "params": { "crypto_ids": 1 },
  "data": { "cid": 1, "p": 81187.93, "vu": 29932025976.79, "mc": 1626089237758.01, "cs": 20028706, "p24h": 0.534 },
  "ts": 1778663880111
}"""
CMC_AGG = """{
  "type": "data",
  "channel": "onchain@token_agg_event",
  "params": {
    "platform_id": 14,
    "address": "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d"
  },
  "data": {
    "pid": 14,
    "a": "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d",
    "ap": 0.9998026294970268,
    "p": 0.9997425990337028,
    "lu": 112769637.58815227,
    "ts": 1778659194000
  },
  "ts": 1778663880111
}"""
CMC_KLINE = """{
  "type": "data",
  "channel": "onchain@kline",
  "params": {
    "platform_id": 14,
    "address": "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d",
    "interval": "1m"
  },
  "data": {
    "o": 0.9995980459860556,
    "h": 0.999729701705,
    "l": 0.999529767125,
    "c": 0.999677480145,
    "vu": 3237.47055005272,
    "ot": 1778649420000
  },
  "ts": 1778663880111
}"""
CMC_TRANSACTION = """{
  "type": "data",
  "channel": "onchain@transaction",
  "params": {
    "platform_id": 14,
    "address": "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d"
  },
  "data": {
    "pid": 14,
    "f": "0xdb1d10011ad0ff90774d0c6bb92e5c5c8b4461f7",
    "bh": 98011237,
    "tp": "sell",
    "pa": "0x2f4a644cd20eb9f45fa166dbb87068697fe8e6e3",
    "t0a": "0x5feccd17c393caf1001d18164236a37e731fcb9d",
    "t1a": "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d",
    "t0s": "USDC",
    "t1s": "WBNB",
    "vu": 167.11650988683866,
    "q": 0.2876839934391258,
    "t0pu": 0.28760994330122636,
    "t1pu": 0.9997425990337028,
    "tx": "0xade908a367c85915a89719ddce9e95a864bd2c9691bb28c6d6b86d907181f7aa",
    "ts": 1778659192000,
    "ma": "0x28e2ea090877bf75740558f6bfb36a5ffee9e9df",
    "ba": "0x55d398326f99059ff775485246999027b3197955",
    "a0": 8.581676894301156,
    "a1": 0.9999663716704877,
    "qi": 0,
    "tii": 0,
    "lgid": 59,
    "ex": false,
    "txtp": 0
  },
  "ts": 1778663880111
}"""
CMC_UNIQUE_TRADER = """{
  "type": "data",
  "channel": "onchain@unique_trader",
  "params": {
    "platform_id": 14,
    "address": "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d",
    "interval": "1m"
  },
  "data": {
    "ut": 6,
    "ot": 1778659140000
  },
  "ts": 1778663880111
}"""
