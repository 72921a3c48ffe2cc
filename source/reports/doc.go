// Package reports plans, requests and flattens Klaviyo's reporting API within its daily quota.
//
// It serves the report streams: the seven Reporting API endpoints (campaign, flow, form and segment values and
// series) and metric aggregates, as eight default streams and any number of user-defined ones (Definitions). A
// Definition knows its rows' JSON Schema and primary key; Plan turns it, the stream's State and the moment of
// the sync into the exact request bodies the stream needs, each carrying every statistic, every entity and the
// longest timeframe Klaviyo allows, cut in the account's timezone, and knows how many of them the day's quota
// (Ledger) leaves room for; Read sends them, flattens the answers into rows, writes only the rows that changed
// since the last sync in the days it reads again, and checkpoints a State a later sync carries on from.
//
// The package knows no protocol and no engine: the engine gives it a klaviyo.Client, a Sink for rows, states
// and log lines, and the states of the report streams (docs/reports.md is the integration contract).
package reports
