"""Coinstream alerts: a stream rule engine with Slack, Telegram, Discord, e-mail and webhook delivery."""
