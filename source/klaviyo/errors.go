package klaviyo

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	"github.com/source-klaviyo/source-klaviyo/source/secret"
)

// Kind classifies a failed request by what the caller should do about it. A Kind is also an error value, so
// errors.Is(err, klaviyo.KindScope) asks "is this a missing-scope failure?" without errors.As.
type Kind int

const (
	// KindAuth: Klaviyo refused the API key (401, or a 400 whose body says the key is missing or invalid).
	KindAuth Kind = iota + 1
	// KindScope: the key is valid but lacks a scope the endpoint needs (403).
	KindScope
	// KindNotFound: the resource does not exist (404).
	KindNotFound
	// KindBadRequest: Klaviyo rejected the request itself (other 4xx, 501), or its answer broke the protocol in a
	// way retrying cannot fix (a links.next on another host). Retrying the same request will not help.
	KindBadRequest
	// KindRateLimited: Klaviyo asked us to wait longer than Config.MaxRetryAfter (a daily quota); RetryAt says
	// until when.
	KindRateLimited
	// KindTransient: 5xx, 429, network failures, timeouts, truncated or malformed bodies, still failing after
	// Config.MaxAttempts attempts. The same request may well succeed later.
	KindTransient
)

// String names the kind in logs.
func (k Kind) String() string {
	switch k {
	case KindAuth:
		return "auth"
	case KindScope:
		return "scope"
	case KindNotFound:
		return "not found"
	case KindBadRequest:
		return "bad request"
	case KindRateLimited:
		return "rate limited"
	case KindTransient:
		return "transient"
	default:
		return fmt.Sprintf("kind(%d)", int(k))
	}
}

// Error makes a Kind usable as an errors.Is target.
func (k Kind) Error() string { return "klaviyo: " + k.String() }

// Error is a failed request to Klaviyo. Its message is one sentence naming the endpoint and what to do; Detail is
// Klaviyo's own explanation with the API key masked.
type Error struct {
	Kind     Kind
	Status   int    // HTTP status of the last attempt; 0 when none arrived
	Endpoint string // the endpoint template, e.g. /api/lists/{id}/profiles
	Detail   string // Klaviyo's error title/detail, or what went wrong in transit; never the API key
	// RetryAt is, for KindRateLimited, when Klaviyo said the endpoint can be called again.
	RetryAt time.Time
	// Scopes are the scopes the endpoint needs, named in KindScope messages.
	Scopes []string
	// Err is the underlying error (network, decode), with the API key masked out of its message.
	Err error
}

// Error renders one sentence that says what failed and what to do.
func (e *Error) Error() string {
	var b strings.Builder
	switch e.Kind {
	case KindAuth:
		fmt.Fprintf(&b, "Klaviyo refused the API key (%d) on %s: check api_key in the config", e.Status, e.Endpoint)
		if e.Detail != "" {
			fmt.Fprintf(&b, " (Klaviyo said: %s)", e.Detail)
		}
	case KindScope:
		switch len(e.Scopes) {
		case 0:
			fmt.Fprintf(&b, "the API key may not read %s (403): give the key read access to it in Klaviyo", e.Endpoint)
		case 1:
			fmt.Fprintf(&b, "the API key lacks scope %s needed for %s: add it to the key in Klaviyo", e.Scopes[0], e.Endpoint)
		default:
			fmt.Fprintf(&b, "the API key lacks one of the scopes %s needed for %s: add them to the key in Klaviyo",
				strings.Join(e.Scopes, ", "), e.Endpoint)
		}
	case KindNotFound:
		fmt.Fprintf(&b, "Klaviyo found nothing at %s (404): the resource may have been deleted", e.Endpoint)
		e.appendDetail(&b)
	case KindBadRequest:
		if e.Status == 0 {
			// Nothing was refused: the answer itself cannot be used (a links.next elsewhere, a cursor loop).
			fmt.Fprintf(&b, "Klaviyo's answer on %s cannot be followed", e.Endpoint)
			e.appendDetail(&b)
			b.WriteString(": check base_url in the config, and report it if base_url is right")
			break
		}
		fmt.Fprintf(&b, "Klaviyo rejected the request to %s (%d)", e.Endpoint, e.Status)
		e.appendDetail(&b)
		b.WriteString(": check the config values the request uses (start_date, filters), and report it if they look right")
	case KindRateLimited:
		fmt.Fprintf(&b, "Klaviyo's rate limit for %s is used up until %s: retry the sync after then",
			e.Endpoint, e.RetryAt.UTC().Format(time.RFC3339))
		e.appendDetail(&b)
	case KindTransient:
		fmt.Fprintf(&b, "Klaviyo did not answer %s successfully", e.Endpoint)
		e.appendDetail(&b)
		b.WriteString(": try again later")
	default:
		fmt.Fprintf(&b, "request to %s failed", e.Endpoint)
		e.appendDetail(&b)
	}
	return b.String()
}

func (e *Error) appendDetail(b *strings.Builder) {
	switch {
	case e.Detail != "":
		fmt.Fprintf(b, " (%s)", e.Detail)
	case e.Err != nil:
		fmt.Fprintf(b, " (%s)", e.Err.Error())
	}
}

// Unwrap exposes the underlying error (for errors.Is on net and io errors).
func (e *Error) Unwrap() error { return e.Err }

// Is matches a Kind target: errors.Is(err, KindAuth).
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// errorBody is Klaviyo's error document: {"errors":[{"code","title","detail","source":{...}}]}.
type errorBody struct {
	Errors []struct {
		Code   string `json:"code"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Source struct {
			Parameter string `json:"parameter"`
			Pointer   string `json:"pointer"`
		} `json:"source"`
	} `json:"errors"`
}

// maxDetail bounds Detail so a huge error page cannot flood a log line.
const maxDetail = 300

// errorDetail extracts a short, printable explanation from an error response body: Klaviyo's first error's title
// and detail when the body is an error document, else the start of the body as text. It also reports whether the
// body says the API key is missing or invalid, which Klaviyo signals with a 400 as well as with a 401.
func errorDetail(body []byte, m secret.Masker) (detail string, authProblem bool) {
	var doc errorBody
	if err := json.Unmarshal(body, &doc); err == nil && len(doc.Errors) > 0 {
		var parts []string
		for i, e := range doc.Errors {
			if looksLikeAuth(e.Code, e.Title, e.Detail) {
				authProblem = true
			}
			if i > 0 {
				continue
			}
			text := e.Detail
			if e.Title != "" && e.Title != e.Detail {
				if text != "" {
					text = e.Title + " " + text
				} else {
					text = e.Title
				}
			}
			if e.Source.Parameter != "" {
				text += " [parameter " + e.Source.Parameter + "]"
			}
			parts = append(parts, text)
		}
		if len(doc.Errors) > 1 {
			parts = append(parts, fmt.Sprintf("and %d more", len(doc.Errors)-1))
		}
		detail = strings.Join(parts, "; ")
	} else {
		detail = string(bytes.TrimSpace(body))
		authProblem = looksLikeAuth("", "", detail)
	}
	// Masked before and after cleaning: neither printable nor clip can be allowed to reassemble the key.
	return m.Text(clip(printable(m.Text(detail)), maxDetail)), authProblem
}

// looksLikeAuth recognises Klaviyo's "key missing or invalid" errors by code or by wording.
func looksLikeAuth(code, title, detail string) bool {
	switch code {
	case "not_authenticated", "authentication_failed", "invalid_api_key":
		return true
	}
	text := strings.ToLower(title + " " + detail)
	return strings.Contains(text, "api key") || strings.Contains(text, "api_key") ||
		strings.Contains(text, "authentication credentials") || strings.Contains(text, "not authenticated")
}

// printable replaces control characters and invalid UTF-8 so a hostile body cannot break a log line.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || (unicode.IsControl(r) && r != ' ') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteRune('?')
		case unicode.IsControl(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// clip shortens s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
