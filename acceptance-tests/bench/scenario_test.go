package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBurstFloor(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	cases := []struct {
		n, burst, perMinute int
		want                time.Duration
	}{
		{300, 75, 750, 3*time.Second + 300*ms},                      // 30,000 profiles: four bursts, 0 s to 3 s
		{200, 350, 3500, 300 * ms},                                  // 200,000 events: one burst
		{75, 75, 750, 300 * ms},                                     // one whole burst
		{76, 75, 750, time.Second + 300*ms},                         // one more waits for the next second
		{750, 75, 750, 9*time.Second + 300*ms},                      // the whole minute
		{751, 75, 750, time.Minute + 300*ms},                        // one more waits for the next minute
		{16, 1, 15, time.Minute + 300*ms},                           // XS: 15 seconds, then the next minute
		{0, 75, 750, 0},                                             // nothing to read
		{1501, 75, 750, 2*time.Minute + 300*ms},                     // two whole minutes, then one more
		{3600, 350, 3500, time.Minute + 300*ms},                     // XL: the second minute's first burst
		{3500 + 351, 350, 3500, time.Minute + time.Second + 300*ms}, // and its second
	}
	for _, c := range cases {
		assert.Equal(t, c.want, burstFloor(c.n, c.burst, c.perMinute, 300*ms), "%d requests at %d/s %d/min", c.n, c.burst, c.perMinute)
	}
}
