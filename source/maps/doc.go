// Package maps applies Singer SDK stream maps and flattening to a sync's schemas and records.
//
// The Meltano Singer SDK lets the user of any SDK tap reshape its output from the config alone: `stream_maps`
// adds, replaces or removes properties by expression, filters records, aliases streams and derives new streams
// from existing ones; `stream_map_config` holds values the expressions may read (a hash seed); `flattening_enabled`
// and `flattening_max_depth` turn nested objects into `parent__child` columns. This package gives the connector the
// same settings with the same meaning, so a Meltano project can move between an SDK tap and this one without
// rewriting its maps.
//
// The work is split in three steps that mirror when the connector can do them:
//
//   - Parse reads the four settings and compiles every expression once, before the first request, so that a typo
//     fails the run at once with one sentence naming the setting's key path (never its value: config values may
//     hold secrets).
//   - Config.Plan resolves the settings against the connector's streams: which output streams exist, where each
//     one comes from, and their schemas, keys and replication keys. Discover prints the plan's outputs.
//   - Plan.Map (and the Writer decorator built on it) maps each record. Records arrive as the JSON bytes the
//     engine shaped; a stream no map touches passes through untouched, and a mapped stream costs one scan of the
//     record's top level plus the expressions it runs.
//
// Expressions are evaluated by github.com/expr-lang/expr, not by Python's simpleeval as in the SDK, so their syntax
// differs where the languages differ; docs/stream-maps.md lists every difference and the integration contract.
package maps
