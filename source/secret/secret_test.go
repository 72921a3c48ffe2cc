package secret

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMaskerHidesEverySecret(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secrets []string
		in, out string
	}{
		{"nothing to mask", nil, "pk_abc here", "pk_abc here"},
		{"empty secrets are ignored", []string{"", ""}, "text", "text"},
		{"one secret, twice", []string{"pk_abc"}, "pk_abc and pk_abc", "**** and ****"},
		{"a secret inside a longer one is masked whole", []string{"abc", "xabcx"}, "1 xabcx 2 abc", "1 **** 2 ****"},
		{"clean text is returned as is", []string{"pk_abc"}, "nothing here", "nothing here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.out, New(tc.secrets...).Text(tc.in))
		})
	}
}

func TestMaskerErr(t *testing.T) {
	m := New("pk_abc")
	clean := errors.New("clean")
	require.Same(t, clean, m.Err(clean), "a clean error is kept, so errors.Is still works on it")
	require.NoError(t, m.Err(nil))
	dirty := fmt.Errorf("GET https://x/?key=%s: %w", "pk_abc", clean)
	masked := m.Err(dirty)
	require.EqualError(t, masked, "GET https://x/?key=****: clean")
	require.NotErrorIs(t, masked, clean, "the original, which holds the key, is not reachable")
	require.Same(t, dirty, Masker{}.Err(dirty), "the zero Masker masks nothing")
}
