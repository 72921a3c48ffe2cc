// Command klaviyo-sandbox serves a local fake of Klaviyo's REST API for tests, benchmarks and
// demos. It prints its base URL on the first line of stdout, then serves until SIGINT/SIGTERM.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
)

// keyFlags collects repeatable --api-key KEY[:scope,scope...] values.
type keyFlags map[string][]string

func (k keyFlags) String() string { return fmt.Sprintf("%d key(s)", len(k)) }

func (k keyFlags) Set(v string) error {
	key, scopes, hasScopes := strings.Cut(v, ":")
	if key == "" {
		return fmt.Errorf("--api-key needs a key")
	}
	if !hasScopes {
		k[key] = nil
		return nil
	}
	list := []string{}
	for _, s := range strings.Split(scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			list = append(list, s)
		}
	}
	k[key] = list
	return nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "klaviyo-sandbox:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("klaviyo-sandbox", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (host:port; port 0 picks a free one)")
	keys := keyFlags{}
	fs.Var(keys, "api-key", "accepted private key, KEY or KEY:scope,scope (repeatable; no scopes = every read scope; default sandbox-key)")
	seed := fs.Int64("seed", 1, "seed of the generated data")
	now := fs.String("now", "", "sandbox clock start, RFC 3339 or YYYY-MM-DD (default: 30 days ago, at midnight UTC)")
	rates := fs.String("rate-limits", "off", "klaviyo (published tiers), off, or a factor applied to the tiers (e.g. 0.1)")
	latency := fs.String("latency", "", "added latency per request: 50ms or 20ms-80ms")
	reportPage := fs.Int("report-page-size", 0, "results per page of campaign and flow reports before links.next (default 500)")
	late := fs.String("late-events", "", "events each advance creates in the past: N or N:WINDOW, dated up to WINDOW (default 45m) before the clock it started from")
	skew := fs.String("event-skew", "", "a growing account's events: GROWTH[:BURST[:AGO]], the last day GROWTH times as dense as the first, a week BURST times as dense beginning AGO (default 42d) before the clock start (e.g. 20:8)")
	removals := fs.Int("removals", 0, "list memberships, and as many segment memberships, each advance removes")
	useTLS := fs.Bool("tls", false, "serve HTTPS with a self-signed certificate made at start (HTTP/2 offered)")
	certOut := fs.String("tls-cert", "", "serve HTTPS (implies --tls) and write the certificate's PEM to this file before printing the URL, for clients to trust (SSL_CERT_FILE)")
	http1 := fs.Bool("tls-http1", false, "with --tls, offer only HTTP/1.1")
	faults := fs.String("faults", "", "fault probabilities, e.g. 5xx=0.05,503=0.01,reset=0.02,truncate=0.01,malformed=0.01,slow=0.01,429=0.02,retry_after=1,only=/api/events")
	d := sandbox.DefaultScale()
	sc := sandbox.Scale{}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"profiles", &sc.Profiles, d.Profiles}, {"events", &sc.Events, d.Events}, {"metrics", &sc.Metrics, d.Metrics},
		{"lists", &sc.Lists, d.Lists}, {"segments", &sc.Segments, d.Segments}, {"flows", &sc.Flows, d.Flows},
		{"campaigns", &sc.Campaigns, d.Campaigns}, {"templates", &sc.Templates, d.Templates}, {"tags", &sc.Tags, d.Tags},
		{"tag-groups", &sc.TagGroups, d.TagGroups}, {"coupons", &sc.Coupons, d.Coupons}, {"coupon-codes", &sc.CouponCodes, d.CouponCodes},
		{"catalog-items", &sc.CatalogItems, d.CatalogItems}, {"catalog-variants", &sc.CatalogVariants, d.CatalogVariants},
		{"catalog-categories", &sc.CatalogCategories, d.CatalogCategories}, {"images", &sc.Images, d.Images},
		{"forms", &sc.Forms, d.Forms}, {"reviews", &sc.Reviews, d.Reviews}, {"webhooks", &sc.Webhooks, d.Webhooks},
		{"push-tokens", &sc.PushTokens, d.PushTokens}, {"universal-content", &sc.UniversalContent, d.UniversalContent},
		{"web-feeds", &sc.WebFeeds, d.WebFeeds}, {"custom-metrics", &sc.CustomMetrics, d.CustomMetrics},
	} {
		fs.IntVar(f.v, f.name, f.def, "number of "+strings.ReplaceAll(f.name, "-", " ")+" when the clock starts")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *reportPage < 0 {
		return fmt.Errorf("--report-page-size %d: want a positive number, or 0 for the default", *reportPage)
	}
	if *removals < 0 {
		return fmt.Errorf("--removals %d: want a non-negative number", *removals)
	}
	opts := sandbox.Options{Seed: *seed, Scale: sc, APIKeys: keys, ReportPageSize: *reportPage, Removals: *removals,
		TLS: sandbox.TLS{On: *useTLS || *certOut != "", HTTP1: *http1}}
	if *http1 && !opts.TLS.On {
		return fmt.Errorf("--tls-http1 needs --tls or --tls-cert: plain HTTP is HTTP/1.1 already")
	}
	var err error
	if *now != "" {
		if opts.Now, err = parseNow(*now); err != nil {
			return err
		}
	}
	if opts.RateLimits, err = sandbox.ParseRateLimits(*rates); err != nil {
		return err
	}
	if opts.Latency, err = sandbox.ParseLatency(*latency); err != nil {
		return err
	}
	if opts.Faults, err = sandbox.ParseFaults(*faults); err != nil {
		return err
	}
	if opts.LateEvents, err = sandbox.ParseLateEvents(*late); err != nil {
		return err
	}
	if opts.EventSkew, err = sandbox.ParseEventSkew(*skew); err != nil {
		return err
	}
	srv, err := sandbox.StartAddr(*addr, opts)
	if err != nil {
		return err
	}
	if *certOut != "" {
		// Written before the URL is printed: a client that waits for the URL finds the certificate in place.
		if err := os.WriteFile(*certOut, srv.CertificatePEM(), 0o644); err != nil {
			_ = srv.Close()
			return fmt.Errorf("--tls-cert: %w", err)
		}
	}
	fmt.Println(srv.URL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return srv.Close()
}

func parseNow(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--now %q: want RFC 3339 or YYYY-MM-DD", s)
}
