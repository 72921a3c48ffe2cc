package acceptance_test

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// meltano.yml restates the connector's settings for Meltano, and source/spec.json is where they are defined. These
// tests make spec.json the one source: every setting's name, order, kind, default, label, description and
// sensitivity in meltano.yml must be spec.json's, and the tap's --about must carry the plugin's name. (The interop
// tests then prove the file works with a real Meltano.)

// meltanoSetting is one entry of the extractor's settings in meltano.yml.
type meltanoSetting struct {
	Name        string `yaml:"name"`
	Label       string `yaml:"label"`
	Kind        string `yaml:"kind"`
	Sensitive   bool   `yaml:"sensitive"`
	Value       any    `yaml:"value"`
	Description string `yaml:"description"`
}

// meltanoExtractor is the part of meltano.yml's extractor the tests compare.
type meltanoExtractor struct {
	Name                    string           `yaml:"name"`
	Settings                []meltanoSetting `yaml:"settings"`
	SettingsGroupValidation [][]string       `yaml:"settings_group_validation"`
}

// readMeltanoExtractor returns meltano.yml's one extractor, the tap.
func readMeltanoExtractor(t *testing.T) meltanoExtractor {
	t.Helper()
	raw, err := os.ReadFile("../meltano.yml")
	require.NoError(t, err)
	var project struct {
		Plugins struct {
			Extractors []meltanoExtractor `yaml:"extractors"`
		} `yaml:"plugins"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &project), "meltano.yml is not YAML")
	require.Len(t, project.Plugins.Extractors, 1, "meltano.yml should define exactly one extractor, the tap")
	return project.Plugins.Extractors[0]
}

// specProperty is the part of a spec.json property that meltano.yml restates.
type specProperty struct {
	Type   string `json:"type"`
	Format string `json:"format"`
	// ContentMediaType application/json marks a string that holds a JSON document.
	ContentMediaType string `json:"contentMediaType"`
	Title            string `json:"title"`
	Description      string `json:"description"`
	Default          any    `json:"default"`
	AirbyteSecret    bool   `json:"airbyte_secret"`
	Order            int    `json:"order"`
}

// configSpec is source/spec.json, the connector's settings.
type configSpec struct {
	Required   []string                `json:"required"`
	Properties map[string]specProperty `json:"properties"`
	Names      []string                `json:"-"` // the property names in spec.json's order
}

func readConfigSpec(t *testing.T) configSpec {
	t.Helper()
	raw, err := os.ReadFile("../source/spec.json")
	require.NoError(t, err)
	var spec configSpec
	require.NoError(t, json.Unmarshal(raw, &spec))
	for n := range spec.Properties {
		spec.Names = append(spec.Names, n)
	}
	sort.Slice(spec.Names, func(i, j int) bool {
		return spec.Properties[spec.Names[i]].Order < spec.Properties[spec.Names[j]].Order
	})
	return spec
}

// meltanoKind is the Meltano setting kind for a spec property: Meltano's date picker for date-times, an object for a
// string that holds JSON (Airbyte's form has no free-form object, Meltano users write the object itself, and the
// connector reads both), its decimal for JSON numbers (integer stays integer), and the JSON type's own name
// otherwise.
func meltanoKind(p specProperty) string {
	switch {
	case p.Type == "string" && p.ContentMediaType == "application/json":
		return "object"
	case p.Type == "string" && p.Format == "date-time":
		return "date_iso8601"
	case p.Type == "number":
		return "decimal"
	}
	return p.Type
}

// sameValue compares a YAML-decoded and a JSON-decoded scalar by their JSON encoding, so 32 (int) equals 32.0
// (float64) and nothing else is lost.
func sameValue(t *testing.T, yamlValue, jsonValue any) bool {
	t.Helper()
	a, err := json.Marshal(yamlValue)
	require.NoError(t, err)
	var normal any
	require.NoError(t, json.Unmarshal(a, &normal))
	return assert.ObjectsAreEqual(normal, jsonValue)
}

func TestMeltanoSettingsAreTheSpec(t *testing.T) {
	spec := readConfigSpec(t)
	tap := readMeltanoExtractor(t)
	var got []string
	for _, s := range tap.Settings {
		got = append(got, s.Name)
	}
	require.Equal(t, spec.Names, got, "meltano.yml's settings must be spec.json's properties, in spec.json's order")

	for _, s := range tap.Settings {
		p := spec.Properties[s.Name]
		assert.Equal(t, meltanoKind(p), s.Kind, "setting %s: kind for spec type %s", s.Name, p.Type)
		assert.True(t, sameValue(t, s.Value, p.Default), "setting %s: meltano.yml value %v, spec.json default %v", s.Name, s.Value, p.Default)
		assert.Equal(t, p.Title, s.Label, "setting %s: label is spec.json's title", s.Name)
		assert.Equal(t, p.Description, s.Description, "setting %s: description is spec.json's", s.Name)
		assert.Equal(t, p.AirbyteSecret, s.Sensitive, "setting %s: sensitive exactly when spec.json says airbyte_secret", s.Name)
	}
	assert.Equal(t, [][]string{spec.Required}, tap.SettingsGroupValidation, "settings_group_validation is spec.json's required")
}

// TestAboutNamesTheMeltanoPlugin requires --about to call the tap what meltano.yml calls the plugin: users look the
// tap up by that name, and a second name is one more thing to keep in step.
func TestAboutNamesTheMeltanoPlugin(t *testing.T) {
	tap := readMeltanoExtractor(t)
	r := runBin(t, "--about", "--format", "json")
	require.Equal(t, 0, r.code, "%s", r.stderr)
	var about struct {
		Name string `json:"name"`
	}
	require.NoError(t, json.Unmarshal(r.stdout, &about), "%s", r.stdout)
	assert.Equal(t, tap.Name, about.Name, "--about's name vs meltano.yml's plugin name")

	r = runBin(t, "--about", "--format", "markdown")
	require.Equal(t, 0, r.code, "%s", r.stderr)
	heading, _, _ := strings.Cut(string(r.stdout), "\n")
	assert.Equal(t, "# "+tap.Name, heading, "--about --format markdown's heading vs meltano.yml's plugin name")
}
