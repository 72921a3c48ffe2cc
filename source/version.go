// Package source is the connector: the commands (spec, check, discover, read), config, the sync engine and state.
package source

// Version is the connector's single version number. The image label, metadata.yaml's dockerImageTag, the
// SPEC and --version all carry it; acceptance-tests/packaging_test.go fails when they disagree.
const Version = "0.1.0"
