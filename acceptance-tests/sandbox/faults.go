package sandbox

import (
	"math/rand"
	"strings"
	"sync"
	"time"
)

type faultKind int

const (
	faultNone faultKind = iota
	fault500
	fault503
	faultReset
	faultTruncate
	faultMalformed
	faultSlow
	faultSpurious429
)

// faultPicker draws faults and latencies from one seeded generator, so a run is reproducible for
// a given request order.
type faultPicker struct {
	mu  sync.Mutex
	rnd *rand.Rand
	f   Faults
}

func newFaultPicker(seed int64, f Faults) *faultPicker {
	return &faultPicker{rnd: rand.New(rand.NewSource(seed ^ 0x5eed)), f: f}
}

func (p *faultPicker) pick(path string) faultKind {
	if !p.f.any() || (p.f.Only != "" && !strings.HasPrefix(path, p.f.Only)) {
		return faultNone
	}
	p.mu.Lock()
	u := p.rnd.Float64()
	p.mu.Unlock()
	for _, c := range []struct {
		p float64
		k faultKind
	}{{p.f.Err500, fault500}, {p.f.Err503, fault503}, {p.f.Reset, faultReset}, {p.f.Truncate, faultTruncate},
		{p.f.Malformed, faultMalformed}, {p.f.Slow, faultSlow}, {p.f.Spurious429, faultSpurious429}} {
		if u < c.p {
			return c.k
		}
		u -= c.p
	}
	return faultNone
}

func (p *faultPicker) latency(l Latency) time.Duration {
	if l.Max <= 0 {
		return 0
	}
	if l.Max == l.Min {
		return l.Min
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return l.Min + time.Duration(p.rnd.Int63n(int64(l.Max-l.Min)+1))
}

func (p *faultPicker) slowDelay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return 2*time.Second + time.Duration(p.rnd.Int63n(int64(3*time.Second)))
}
