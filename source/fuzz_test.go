package source

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

// fuzzKey is the secret the fuzzer plants: every "$KEY" in an input becomes it, so mutations keep putting the key
// in every field (api_key, base_url, start_date, unknown members) and in broken JSON around it.
const fuzzKey = "pk_FUZZKEY_3b9e71c2d4"

// FuzzParseConfig proves ParseConfig never panics on any bytes, that every refusal is a config_error in one line,
// that no message ever quotes the API key, and that what it accepts is usable. Seeds: testdata/fuzz/FuzzParseConfig.
// Run longer with: go test ./source -run '^$' -fuzz FuzzParseConfig -fuzztime 60s
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"api_key":"$KEY"}`))
	f.Add([]byte(`{"api_key":"$KEY","base_url":"http:///$KEY"}`))
	f.Add([]byte(`{"api_key":"$KEY","start_date":"2024-02-30T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		raw = bytes.ReplaceAll(raw, []byte("$KEY"), []byte(fuzzKey))
		c, err := ParseConfig("config file c.json", raw)
		var probe struct {
			APIKey string `json:"api_key"`
		}
		// The standard library's view of the key decides whether the input holds the secret.
		secret := json.Unmarshal(raw, &probe) == nil && probe.APIKey == fuzzKey
		if err != nil {
			msg := err.Error()
			if ft := failureType(err); ft != emit.ConfigError {
				t.Fatalf("failure type %s, want config_error: %s", ft, msg)
			}
			if msg == "" || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("the error is not one line: %q", msg)
			}
			if !strings.HasPrefix(msg, "config file c.json") {
				t.Fatalf("the error does not name the file first: %q", msg)
			}
			if secret && strings.Contains(msg, fuzzKey) {
				t.Fatalf("the error quotes the API key: %q", msg)
			}
			return
		}
		if c.APIKey == "" {
			t.Fatal("accepted a config without an API key")
		}
		if !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
			t.Fatalf("accepted base_url %q", c.BaseURL)
		}
		if c.MaxConcurrency < 1 || c.RateLimitScale <= 0 || c.MaxRetryWaitSeconds < 1 || c.RequestTimeoutSeconds < 1 {
			t.Fatalf("accepted unusable limits: %+v", c)
		}
	})
}
