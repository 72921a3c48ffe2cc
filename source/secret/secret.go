// Package secret hides secret values (the API key) in every text the connector writes or passes on.
package secret

import (
	"errors"
	"sort"
	"strings"
)

// Mask is what a secret is replaced with.
const Mask = "****"

// Masker replaces every occurrence of a set of secrets with Mask. The zero Masker masks nothing. It is the one
// masker of the connector: the API client masks its errors and logs with it, the protocol writers every message,
// and the commands their last-resort error lines, so no path can forget a rule another path applies.
type Masker struct {
	r *strings.Replacer
	// secrets are kept for the fast Contains check: most text has no secret, and Replace would copy it anyway.
	secrets []string
}

// New builds a Masker for the given secrets; empty strings are ignored. Longer secrets go first, so a secret that
// contains another is masked whole instead of leaving its tail visible.
func New(secrets ...string) Masker {
	var s []string
	for _, v := range secrets {
		if v != "" {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return Masker{}
	}
	sort.SliceStable(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	pairs := make([]string, 0, 2*len(s))
	for _, v := range s {
		pairs = append(pairs, v, Mask)
	}
	return Masker{r: strings.NewReplacer(pairs...), secrets: s}
}

// Text returns s with every secret replaced by Mask.
func (m Masker) Text(s string) string {
	if m.r == nil || !m.contains(s) {
		return s
	}
	return m.r.Replace(s)
}

func (m Masker) contains(s string) bool {
	for _, v := range m.secrets {
		if strings.Contains(s, v) {
			return true
		}
	}
	return false
}

// Err returns err unchanged when its message holds no secret, and otherwise an error carrying only the masked
// message. The original is dropped on purpose: anything that unwrapped it could print the secret.
func (m Masker) Err(err error) error {
	if err == nil || m.r == nil {
		return err
	}
	msg := err.Error()
	if !m.contains(msg) {
		return err
	}
	return errors.New(m.Text(msg))
}
